//! Continuous batching: one decode loop over a changing set of sequences, as an inference
//! server needs. A request joins the running batch at the next step (its prompt prefilled,
//! its KV-cache rows appended to the batch's) and leaves it when it finishes or its receiver
//! goes away; at most `max_batch` sequences decode together, the rest wait in the channel.
//!
//! Sampling and stopping are [`crate::generate()`]'s own (one implementation): a greedy
//! request gets the same tokens as `generate` on its prompt alone. Each sequence samples from
//! its own `ChaCha` stream seeded with its request's [`GenerationConfig::seed`].
//!
//! Burn tensors stay on the thread that calls [`Batcher::run`]; requests and events cross
//! threads through channels and [`EventSink`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::generate::{
    Generation, GenerationConfig, SequenceState, last_logits, pick, sample, validate,
};
use crate::model::{CausalLm, KvCache, TokenBatch};
use crate::tokenizer::Tokenizer;

/// What the batcher tells a request's owner.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchEvent {
    /// New text that is final (streaming); `tokens` is the count of tokens generated so far.
    Delta {
        /// The new text.
        text: String,
        /// Tokens generated so far.
        tokens: usize,
    },
    /// The sequence finished; always the last event of a request that ran.
    Finished(Generation),
    /// The request was refused or the model failed; always the last event.
    Failed(String),
}

/// Where a request's events go (a channel to an HTTP handler, a test's vector).
pub trait EventSink: Send {
    /// Delivers an event; `false` when the receiver is gone (the sequence then leaves the batch).
    fn send(&mut self, event: BatchEvent) -> bool;
    /// True when the receiver is gone (a client that disconnected), checked before every step.
    fn is_closed(&self) -> bool;
}

/// One generation request for the batcher.
pub struct BatchRequest {
    /// Prompt token ids (a rendered chat template, encoded without special tokens added).
    pub prompt: Vec<u32>,
    /// Sampling and stopping settings; `seed` seeds this request's own stream.
    pub config: GenerationConfig,
    /// Where its events go.
    pub sink: Box<dyn EventSink>,
}

/// A sequence in the running batch.
struct Active {
    config: GenerationConfig,
    sink: Box<dyn EventSink>,
    state: SequenceState,
    rng: ChaCha8Rng,
    /// `RoPE` position of the next token fed to the model (its pending last token).
    next_pos: usize,
}

/// The decode loop's state: the model, the running sequences and their KV cache (row `i` of
/// the cache belongs to `active[i]`).
pub struct Batcher {
    model: CausalLm,
    tokenizer: Option<Tokenizer>,
    max_batch: usize,
    active: Vec<Active>,
    cache: KvCache,
    running: Option<Arc<AtomicUsize>>,
}

impl Batcher {
    /// A batcher that decodes at most `max_batch` (>= 1) sequences at once. Without a
    /// tokenizer texts are empty (as in `generate`), stop strings are refused and padding is 0.
    pub fn new(model: CausalLm, tokenizer: Option<Tokenizer>, max_batch: usize) -> Self {
        Batcher {
            model,
            tokenizer,
            max_batch: max_batch.max(1),
            active: Vec::new(),
            cache: KvCache::default(),
            running: None,
        }
    }

    /// Publishes the number of running sequences to `gauge` after every change (a server's
    /// health endpoint reads it from another thread).
    #[must_use]
    pub fn with_running_gauge(mut self, gauge: Arc<AtomicUsize>) -> Self {
        self.running = Some(gauge);
        self
    }

    fn publish(&self) {
        if let Some(g) = &self.running {
            g.store(self.active.len(), Ordering::SeqCst);
        }
    }

    fn pad_id(&self) -> u32 {
        self.tokenizer
            .as_ref()
            .map_or(0, Tokenizer::pad_id_or_fallback)
    }

    /// Number of sequences decoding now.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Serves requests until the channel closes and the last sequence finishes: waits when
    /// idle, admits waiting requests into free slots before each step, then decodes one token
    /// for every running sequence.
    // The batcher takes the request channel over for the rest of its life, as its one consumer.
    #[allow(clippy::needless_pass_by_value)]
    pub fn run(mut self, requests: Receiver<BatchRequest>) {
        let mut open = true;
        loop {
            let mut admitted = Vec::new();
            if self.active.is_empty() && open {
                match requests.recv() {
                    Ok(r) => admitted.push(r),
                    Err(_) => open = false,
                }
            }
            while open && self.active.len() + admitted.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(r) => admitted.push(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            if !admitted.is_empty() {
                self.admit(admitted);
                self.publish();
            }
            if !self.active.is_empty() {
                self.step();
                self.publish();
            } else if !open {
                return;
            }
        }
    }

    /// Prefills `requests` together (left padded, as `generate` does), picks their first
    /// tokens and appends the unfinished ones to the running batch. Invalid requests and
    /// those whose receiver is already gone are answered or dropped without compute.
    pub fn admit(&mut self, requests: Vec<BatchRequest>) {
        let window = self.model.config().max_position_embeddings;
        let mut joining = Vec::new();
        let mut prompts = Vec::new();
        for mut r in requests {
            if r.sink.is_closed() {
                continue;
            }
            if let Err(e) = validate(r.prompt.len(), window, &r.config, self.tokenizer.is_some()) {
                r.sink.send(BatchEvent::Failed(e.to_string()));
                continue;
            }
            joining.push(Active {
                rng: ChaCha8Rng::seed_from_u64(r.config.seed),
                next_pos: r.prompt.len(),
                config: r.config,
                sink: r.sink,
                state: SequenceState::default(),
            });
            prompts.push(r.prompt);
        }
        if joining.is_empty() {
            return;
        }
        let mut cache = KvCache::default();
        let batch = TokenBatch::left_padded(&prompts, self.pad_id());
        let hidden = self.model.forward_hidden(&batch, Some(&mut cache));
        let logits = last_logits(&self.model, hidden);
        match self.advance(&mut joining, logits) {
            Ok(keep) if keep.is_empty() => {}
            Ok(keep) => {
                let cache = cache.select_rows(&keep, &self.model.device());
                let mut keep_iter = keep.iter().peekable();
                let mut kept = Vec::with_capacity(keep.len());
                for (i, a) in joining.into_iter().enumerate() {
                    if keep_iter.peek() == Some(&&i) {
                        keep_iter.next();
                        kept.push(a);
                    }
                }
                self.active.extend(kept);
                self.cache = std::mem::take(&mut self.cache).concat_rows(cache);
            }
            Err(e) => fail_all(joining, &e),
        }
    }

    /// One decode step: drops sequences whose receiver is gone, feeds every running
    /// sequence's last token, picks the next ones and lets finished sequences leave.
    ///
    /// # Panics
    /// Never in practice: every running sequence holds at least the token it was admitted with.
    pub fn step(&mut self) {
        let open: Vec<usize> = (0..self.active.len())
            .filter(|&i| !self.active[i].sink.is_closed())
            .collect();
        if open.len() < self.active.len() {
            self.retain(&open);
        }
        if self.active.is_empty() {
            return;
        }
        let step: Vec<Vec<u32>> = self
            .active
            .iter()
            .map(|a| vec![*a.state.tokens.last().expect("admitted with one token")])
            .collect();
        let starts: Vec<usize> = self.active.iter().map(|a| a.next_pos).collect();
        for a in &mut self.active {
            a.next_pos += 1;
        }
        let batch = TokenBatch::right_padded_at(&step, self.pad_id(), &starts);
        let hidden = self.model.forward_hidden(&batch, Some(&mut self.cache));
        let logits = last_logits(&self.model, hidden);
        let mut active = std::mem::take(&mut self.active);
        match self.advance(&mut active, logits) {
            Ok(keep) => {
                self.active = active;
                if keep.len() < self.active.len() {
                    self.retain(&keep);
                }
            }
            Err(e) => {
                fail_all(active, &e);
                self.cache = KvCache::default();
            }
        }
    }

    /// Picks each sequence's next token from `logits` (row `i` is `seqs[i]`), sends its
    /// events and returns the rows that go on. Finished sequences get their final event here.
    fn advance(&self, seqs: &mut [Active], logits: burn::tensor::Tensor<2>) -> Result<Vec<usize>> {
        let greedy: Vec<bool> = seqs.iter().map(|a| a.config.temperature == 0.0).collect();
        let next = pick(logits, &greedy, |i, row| {
            let a = &mut seqs[i];
            sample(row, &a.config, &mut a.rng)
        })?;
        let mut keep = Vec::new();
        for (i, a) in seqs.iter_mut().enumerate() {
            let done = a
                .state
                .push(next[i], &a.config, self.tokenizer.as_ref(), true)?;
            let text = a.state.take_delta(&a.config, self.tokenizer.as_ref())?;
            let delivered = text.is_empty()
                || a.sink.send(BatchEvent::Delta {
                    text,
                    tokens: a.state.tokens.len(),
                });
            if done.is_some() {
                let finished =
                    std::mem::take(&mut a.state).finish(&a.config, self.tokenizer.as_ref())?;
                a.sink.send(BatchEvent::Finished(finished));
            } else if delivered {
                keep.push(i);
            }
        }
        Ok(keep)
    }

    /// Keeps only the running sequences at `rows` (and their cache rows), then drops cache
    /// positions that no remaining sequence uses.
    fn retain(&mut self, rows: &[usize]) {
        self.cache = if rows.is_empty() {
            KvCache::default()
        } else {
            self.cache
                .select_rows(rows, &self.model.device())
                .trim_left_padding()
        };
        let mut old: Vec<Option<Active>> = std::mem::take(&mut self.active)
            .into_iter()
            .map(Some)
            .collect();
        self.active = rows.iter().filter_map(|&r| old[r].take()).collect();
    }
}

/// Ends every sequence in `seqs` with the model error.
fn fail_all(seqs: Vec<Active>, error: &ModelError) {
    for mut a in seqs {
        a.sink.send(BatchEvent::Failed(error.to_string()));
    }
}
