//! lm-evaluation-harness `loglikelihood` semantics over token ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{Int, Tensor, TensorData};

use super::token_logprobs;
use crate::error::{ModelError, Result};
use crate::model::{CausalLm, KvCache, TokenBatch};

/// A (context, continuation) pair of token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoglikelihoodRequest {
    /// Context tokens (at least one; lm-eval uses the EOS/BOS id when the context is empty).
    pub context: Vec<u32>,
    /// Continuation tokens to score (at least one).
    pub continuation: Vec<u32>,
}

/// The score of one continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoglikelihoodResult {
    /// `log p(continuation[j] | context, continuation[..j])` for every j, in f32.
    pub token_logprobs: Vec<f32>,
    /// Their sum (accumulated in f64).
    pub logprob: f64,
    /// Whether every continuation token is the argmax (lm-eval's `is_greedy`).
    pub is_greedy: bool,
    /// Whether the context was cut on the left to fit the context window.
    pub truncated: bool,
}

/// Batching and truncation settings.
#[derive(Debug, Clone)]
pub struct ScorerOptions {
    /// Context window: inputs are left-truncated to this many tokens (lm-eval's `max_length`).
    pub max_length: usize,
    /// Most sequences per forward pass.
    pub batch_size: usize,
    /// Most tokens (sequences × padded length) per forward pass.
    pub max_batch_tokens: usize,
    /// Compute a context shared by several requests once, with the KV cache.
    pub share_contexts: bool,
    /// Id written at padded positions (never scored).
    pub pad_id: u32,
}

impl ScorerOptions {
    /// Defaults for a model: its context window, batches of 8 sequences / 16k tokens.
    pub fn for_model(model: &CausalLm) -> Self {
        ScorerOptions {
            max_length: model.config().max_position_embeddings,
            batch_size: 8,
            max_batch_tokens: 16_384,
            share_contexts: true,
            pad_id: 0,
        }
    }
}

/// Scores continuations with a model.
pub struct Scorer<'a> {
    model: &'a CausalLm,
    options: ScorerOptions,
    /// Input tokens run through the model so far (padding excluded).
    forward_tokens: AtomicU64,
}

/// One row to score: input ids, and which positions predict which targets.
struct Row {
    request: usize,
    input: Vec<u32>,
    /// (position in `input`, target id) pairs, in continuation order.
    targets: Vec<(usize, u32)>,
}

impl<'a> Scorer<'a> {
    /// A scorer over `model`.
    pub fn new(model: &'a CausalLm, options: ScorerOptions) -> Self {
        Scorer {
            model,
            options,
            forward_tokens: AtomicU64::new(0),
        }
    }

    /// Input tokens this scorer has run through the model so far, padding excluded: a shared
    /// context counts once, then each continuation row on top of its cache.
    pub fn forward_tokens(&self) -> u64 {
        self.forward_tokens.load(Ordering::Relaxed)
    }

    /// Input tokens scoring `requests` one by one would run, as lm-eval's HF backend does
    /// without context sharing: `min(context + continuation, max_length + 1) - 1` each.
    pub fn unshared_forward_tokens(&self, requests: &[LoglikelihoodRequest]) -> u64 {
        requests
            .iter()
            .map(|r| {
                let whole = r.context.len() + r.continuation.len();
                (whole.min(self.options.max_length + 1) - 1) as u64
            })
            .sum()
    }

    /// Scores every request; results are in request order.
    pub fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<LoglikelihoodResult>> {
        let vocab = self.model.config().vocab_size as u32;
        let max_len = self.options.max_length;
        for (i, r) in requests.iter().enumerate() {
            if r.context.is_empty() || r.continuation.is_empty() {
                return Err(ModelError::InvalidRequest(format!(
                    "request {i}: context and continuation must each have at least one token"
                )));
            }
            if r.continuation.len() > max_len {
                return Err(ModelError::InvalidRequest(format!(
                    "request {i}: continuation of {} tokens exceeds the context window of {max_len}",
                    r.continuation.len()
                )));
            }
            if let Some(bad) = r
                .context
                .iter()
                .chain(&r.continuation)
                .find(|&&t| t >= vocab)
            {
                return Err(ModelError::InvalidRequest(format!(
                    "request {i}: token id {bad} is outside the vocabulary of {vocab}"
                )));
            }
        }
        let mut results: Vec<Option<LoglikelihoodResult>> = vec![None; requests.len()];
        let mut plain = Vec::new();
        let mut groups: HashMap<&[u32], Vec<usize>> = HashMap::new();
        for (i, r) in requests.iter().enumerate() {
            let fits = r.context.len() + r.continuation.len() <= max_len;
            if self.options.share_contexts && fits {
                groups.entry(r.context.as_slice()).or_default().push(i);
            } else {
                plain.push(i);
            }
        }
        let mut shared: Vec<(&[u32], Vec<usize>)> = Vec::new();
        for (ctx, members) in groups {
            if members.len() >= 2 {
                shared.push((ctx, members));
            } else {
                plain.extend(members);
            }
        }
        shared.sort_by_key(|(_, m)| m[0]);
        for (ctx, members) in shared {
            self.score_shared(ctx, &members, requests, &mut results)?;
        }
        let rows: Vec<Row> = plain
            .into_iter()
            .map(|i| self.plain_row(i, &requests[i]))
            .collect();
        self.score_rows(rows, None, &mut results, requests)?;
        Ok(results
            .into_iter()
            .map(|r| r.expect("every request scored"))
            .collect())
    }

    /// lm-eval: `inp = (context + continuation)[-(max_length + 1):][:-1]`.
    fn plain_row(&self, request: usize, r: &LoglikelihoodRequest) -> Row {
        let mut whole: Vec<u32> = r.context.iter().chain(&r.continuation).copied().collect();
        let keep = self.options.max_length + 1;
        if whole.len() > keep {
            whole.drain(..whole.len() - keep);
        }
        let input = whole[..whole.len() - 1].to_vec();
        let n = r.continuation.len();
        let first = input.len() + 1 - n;
        let targets = (0..n).map(|j| (first - 1 + j, r.continuation[j])).collect();
        Row {
            request,
            input,
            targets,
        }
    }

    /// Scores rows sorted by length (longest first), in batches, optionally continuing from a
    /// batch-1 cache at position `cache.len()`.
    fn score_rows(
        &self,
        mut rows: Vec<Row>,
        cache: Option<&KvCache>,
        results: &mut [Option<LoglikelihoodResult>],
        requests: &[LoglikelihoodRequest],
    ) -> Result<()> {
        rows.sort_by_key(|r| std::cmp::Reverse(r.input.len()));
        let mut start = 0;
        while start < rows.len() {
            let longest = rows[start].input.len().max(1);
            let by_tokens = (self.options.max_batch_tokens / longest).max(1);
            let end = (start + self.options.batch_size.min(by_tokens).max(1)).min(rows.len());
            self.score_batch(&rows[start..end], cache, results, requests)?;
            start = end;
        }
        Ok(())
    }

    fn score_batch(
        &self,
        rows: &[Row],
        cache: Option<&KvCache>,
        results: &mut [Option<LoglikelihoodResult>],
        requests: &[LoglikelihoodRequest],
    ) -> Result<()> {
        let device = self.model.device();
        let seqs: Vec<Vec<u32>> = rows.iter().map(|r| r.input.clone()).collect();
        let real: usize = seqs.iter().map(Vec::len).sum();
        self.forward_tokens
            .fetch_add(real as u64, Ordering::Relaxed);
        let (hidden, width) = match cache {
            Some(cache) => {
                let start = vec![cache.len(); rows.len()];
                let batch = TokenBatch::right_padded_at(&seqs, self.options.pad_id, &start);
                let mut rep = cache.repeat(rows.len());
                (
                    self.model.forward_hidden(&batch, Some(&mut rep)),
                    batch.seq_len(),
                )
            }
            None => {
                let batch = TokenBatch::right_padded(&seqs, self.options.pad_id);
                (self.model.forward_hidden(&batch, None), batch.seq_len())
            }
        };
        let mut flat_index = Vec::new();
        let mut target_ids = Vec::new();
        for (b, row) in rows.iter().enumerate() {
            for &(pos, tok) in &row.targets {
                flat_index.push((b * width + pos) as i64);
                target_ids.push(tok as i64);
            }
        }
        let n = flat_index.len();
        let [batch, seq, h] = hidden.dims();
        let index = Tensor::<1, Int>::from_data(TensorData::new(flat_index, [n]), &device);
        let picked = hidden
            .reshape([batch * seq, h])
            .select(0, index)
            .reshape([1, n, h]);
        let logits = self.model.lm_head_forward(picked);
        let targets = Tensor::<2, Int>::from_data(TensorData::new(target_ids, [1, n]), &device);
        let argmax = logits.clone().argmax(2).reshape([n]);
        let lps = token_logprobs(logits, targets).reshape([n]);
        let lps: Vec<f32> = lps.into_data().try_into_vec_as::<f32>().map_err(data_err)?;
        let argmax: Vec<i64> = argmax
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(data_err)?;
        let mut k = 0;
        for row in rows {
            let slot = &mut results[row.request];
            let entry = slot.get_or_insert_with(|| LoglikelihoodResult {
                token_logprobs: Vec::new(),
                logprob: 0.0,
                is_greedy: true,
                truncated: false,
            });
            for &(_, tok) in &row.targets {
                entry.token_logprobs.push(lps[k]);
                entry.logprob += f64::from(lps[k]);
                entry.is_greedy &= argmax[k] == i64::from(tok);
                k += 1;
            }
            let r = &requests[row.request];
            entry.truncated = r.context.len() + r.continuation.len() > self.options.max_length + 1;
        }
        Ok(())
    }

    /// Scores the continuations of `members`, which share `context`: the context runs once,
    /// then the continuations run in batches on copies of its KV cache.
    fn score_shared(
        &self,
        context: &[u32],
        members: &[usize],
        requests: &[LoglikelihoodRequest],
        results: &mut [Option<LoglikelihoodResult>],
    ) -> Result<()> {
        // The context minus its last token runs once into a KV cache; each continuation row is
        // that last token followed by the continuation minus its last token, so position j of
        // the row predicts continuation token j.
        let prefix_len = context.len() - 1;
        let mut prefix_cache = KvCache::default();
        if prefix_len > 0 {
            let prefix =
                TokenBatch::right_padded(&[context[..prefix_len].to_vec()], self.options.pad_id);
            self.model.forward_hidden(&prefix, Some(&mut prefix_cache));
            self.forward_tokens
                .fetch_add(prefix_len as u64, Ordering::Relaxed);
        }
        let rows: Vec<Row> = members
            .iter()
            .map(|&i| {
                let cont = &requests[i].continuation;
                let mut input = vec![context[prefix_len]];
                input.extend_from_slice(&cont[..cont.len() - 1]);
                Row {
                    request: i,
                    input,
                    targets: cont.iter().enumerate().map(|(j, &t)| (j, t)).collect(),
                }
            })
            .collect();
        if prefix_len > 0 {
            self.score_rows(rows, Some(&prefix_cache), results, requests)
        } else {
            self.score_rows(rows, None, results, requests)
        }
    }
}

fn data_err(e: burn::tensor::DataError) -> ModelError {
    ModelError::InvalidRequest(format!("reading scores back from the device failed: {e:?}"))
}
