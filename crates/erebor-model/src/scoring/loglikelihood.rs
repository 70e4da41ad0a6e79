//! lm-evaluation-harness `loglikelihood` semantics over token ids.
//!
//! How requests are planned (with `share_contexts`):
//! - requests that do not fit the window run alone, cut on the left as lm-eval does;
//! - requests with the same context form a group; when every member's row would be the same
//!   input (one-token continuations, as MMLU's `" A"` … `" D"`), the group is one row: the
//!   context (after the shared prefix, if any) and the continuation minus its last token,
//!   batched with other such rows;
//! - otherwise the context runs once into a KV cache and the continuations run on copies of it;
//! - a [`SharedPrefix`] (the tokens every context of a task starts with, as MMLU's description
//!   and five examples) is computed once and every row or context above starts from its cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::rows::{Row, Target};
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

/// The KV cache of a token prefix that many requests' contexts start with (MMLU's description
/// and five dev examples, the same for every question of a subject), made by
/// [`Scorer::prefill`] and reused by [`Scorer::loglikelihood_with_prefix`] across calls.
#[derive(Debug, Clone)]
pub struct SharedPrefix {
    tokens: Vec<u32>,
    cache: KvCache,
}

impl SharedPrefix {
    /// The prefix's tokens.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Whether a request can start from this prefix: its context starts with the prefix and
    /// has at least one token more (the token whose logits predict the continuation).
    fn covers(&self, context: &[u32]) -> bool {
        context.len() > self.tokens.len() && context.starts_with(&self.tokens)
    }
}

/// Length of the longest common prefix of token sequences (0 for none).
pub fn common_prefix_len<'s>(mut seqs: impl Iterator<Item = &'s [u32]>) -> usize {
    let Some(first) = seqs.next() else {
        return 0;
    };
    let mut len = first.len();
    for s in seqs {
        len = first[..len]
            .iter()
            .zip(s)
            .take_while(|(a, b)| a == b)
            .count();
        if len == 0 {
            break;
        }
    }
    len
}

/// Scores continuations with a model.
pub struct Scorer<'a> {
    pub(super) model: &'a CausalLm,
    pub(super) options: ScorerOptions,
    /// Input tokens run through the model so far (padding excluded).
    pub(super) forward_tokens: AtomicU64,
}

/// How one group of requests with the same context is scored.
enum Plan {
    /// One row per group, batched with others (from the prefix cache when `on_prefix`).
    Flat { row: Row, on_prefix: bool },
    /// The context once, then its continuation rows on copies of its cache.
    Shared {
        context: Vec<u32>,
        members: Vec<usize>,
        on_prefix: bool,
    },
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
    /// prefix or context counts once, then each row on top of its cache.
    pub fn forward_tokens(&self) -> u64 {
        self.forward_tokens.load(Ordering::Relaxed)
    }

    pub(super) fn count(&self, tokens: usize) {
        self.forward_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
    }

    /// Input tokens scoring `requests` one by one would run, as lm-eval's HF backend does
    /// without context sharing: `min(context + continuation, max_length + 1) - 1` each.
    pub fn unshared_forward_tokens(&self, requests: &[LoglikelihoodRequest]) -> u64 {
        requests.iter().map(|r| self.lm_eval_input_len(r)).sum()
    }

    /// Input tokens lm-eval's HF backend runs with its one-token logits cache (the default):
    /// requests with the same `context + continuation[:-1]` run once (one forward per MMLU
    /// question), each `min(context + continuation, max_length + 1) - 1` tokens, padding
    /// excluded.
    pub fn lm_eval_hf_forward_tokens(&self, requests: &[LoglikelihoodRequest]) -> u64 {
        let mut seen = std::collections::HashSet::new();
        requests
            .iter()
            .filter(|r| {
                let cont = &r.continuation[..r.continuation.len().saturating_sub(1)];
                seen.insert((r.context.as_slice(), cont))
            })
            .map(|r| self.lm_eval_input_len(r))
            .sum()
    }

    fn lm_eval_input_len(&self, r: &LoglikelihoodRequest) -> u64 {
        let whole = r.context.len() + r.continuation.len();
        (whole.min(self.options.max_length + 1) - 1) as u64
    }

    /// Runs `tokens` (at most the window less one) into a KV cache for
    /// [`Self::loglikelihood_with_prefix`]; they count as forward tokens once, here.
    pub fn prefill(&self, tokens: &[u32]) -> Result<SharedPrefix> {
        if tokens.is_empty() || tokens.len() >= self.options.max_length {
            return Err(ModelError::InvalidRequest(format!(
                "a shared prefix needs 1 to {} tokens, got {}",
                self.options.max_length - 1,
                tokens.len()
            )));
        }
        self.check_vocab("the shared prefix", tokens)?;
        let mut cache = KvCache::default();
        let batch = TokenBatch::right_padded(&[tokens.to_vec()], self.options.pad_id);
        self.model.forward_hidden(&batch, Some(&mut cache));
        self.count(tokens.len());
        Ok(SharedPrefix {
            tokens: tokens.to_vec(),
            cache,
        })
    }

    /// Scores every request; results are in request order.
    pub fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<LoglikelihoodResult>> {
        self.loglikelihood_with_prefix(requests, None)
    }

    /// Scores every request, those whose context extends `prefix` from its cache (with
    /// `share_contexts` only); results are in request order and equal scoring without the
    /// prefix within float rounding.
    ///
    /// # Panics
    /// Never in practice: the plan scores every request exactly once.
    pub fn loglikelihood_with_prefix(
        &self,
        requests: &[LoglikelihoodRequest],
        prefix: Option<&SharedPrefix>,
    ) -> Result<Vec<LoglikelihoodResult>> {
        self.validate(requests)?;
        let prefix = prefix.filter(|_| self.options.share_contexts);
        let mut results: Vec<Option<LoglikelihoodResult>> = vec![None; requests.len()];
        let (plain, plans) = self.plan(requests, prefix);
        let mut flat_plain = plain;
        let mut flat_prefix = Vec::new();
        for plan in plans {
            match plan {
                Plan::Flat { row, on_prefix } if on_prefix => flat_prefix.push(row),
                Plan::Flat { row, .. } => flat_plain.push(row),
                Plan::Shared {
                    context,
                    members,
                    on_prefix,
                } => {
                    let base = prefix.filter(|_| on_prefix);
                    self.score_shared(&context, &members, base, requests, &mut results)?;
                }
            }
        }
        self.score_rows(flat_plain, None, &mut results, requests)?;
        if let Some(prefix) = prefix {
            self.score_rows(flat_prefix, Some(&prefix.cache), &mut results, requests)?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every request scored"))
            .collect())
    }

    fn check_vocab(&self, what: &str, tokens: &[u32]) -> Result<()> {
        let vocab = self.model.config().vocab_size;
        match tokens.iter().find(|&&t| t as usize >= vocab) {
            Some(bad) => Err(ModelError::InvalidRequest(format!(
                "{what}: token id {bad} is outside the vocabulary of {vocab}"
            ))),
            None => Ok(()),
        }
    }

    fn validate(&self, requests: &[LoglikelihoodRequest]) -> Result<()> {
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
            self.check_vocab(&format!("request {i}"), &r.context)?;
            self.check_vocab(&format!("request {i}"), &r.continuation)?;
        }
        Ok(())
    }

    /// Rows that run alone (too long, or sharing off) and a plan per group of requests with
    /// the same context, in order of first appearance.
    fn plan(
        &self,
        requests: &[LoglikelihoodRequest],
        prefix: Option<&SharedPrefix>,
    ) -> (Vec<Row>, Vec<Plan>) {
        let mut plain = Vec::new();
        let mut groups: HashMap<&[u32], Vec<usize>> = HashMap::new();
        let mut order = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let fits = r.context.len() + r.continuation.len() <= self.options.max_length;
            if self.options.share_contexts && fits {
                let members = groups.entry(r.context.as_slice()).or_default();
                if members.is_empty() {
                    order.push(r.context.as_slice());
                }
                members.push(i);
            } else {
                plain.push(self.plain_row(i, r));
            }
        }
        let plans = order
            .into_iter()
            .map(|context| {
                let members = groups.remove(context).expect("grouped");
                let on_prefix = prefix.is_some_and(|p| p.covers(context));
                let skip = if on_prefix {
                    prefix.map_or(0, |p| p.tokens.len())
                } else {
                    0
                };
                group_plan(context, members, requests, skip, on_prefix)
            })
            .collect();
        (plain, plans)
    }

    /// lm-eval: `inp = (context + continuation)[-(max_length + 1):][:-1]`.
    fn plain_row(&self, request: usize, r: &LoglikelihoodRequest) -> Row {
        let mut whole: Vec<u32> = r.context.iter().chain(&r.continuation).copied().collect();
        let keep = self.options.max_length + 1;
        if whole.len() > keep {
            whole.drain(..whole.len() - keep);
        }
        let input = whole[..whole.len() - 1].to_vec();
        Row::for_continuation(input, request, &r.continuation)
    }

    /// Scores the continuations of `members`, which share `context`: the context (after
    /// `base`'s tokens, from its cache) runs once, then the continuations run in batches on
    /// copies of its KV cache.
    fn score_shared(
        &self,
        context: &[u32],
        members: &[usize],
        base: Option<&SharedPrefix>,
        requests: &[LoglikelihoodRequest],
        results: &mut [Option<LoglikelihoodResult>],
    ) -> Result<()> {
        // The context minus its last token runs once into a KV cache; each continuation row is
        // that last token followed by the continuation minus its last token, so position j of
        // the row predicts continuation token j.
        let done = base.map_or(0, |p| p.tokens.len());
        let last = context.len() - 1;
        let mut cache = base.map(|p| p.cache.clone()).unwrap_or_default();
        if last > done {
            let rest = context[done..last].to_vec();
            let batch = TokenBatch::right_padded_at(&[rest], self.options.pad_id, &[done]);
            self.model.forward_hidden(&batch, Some(&mut cache));
            self.count(last - done);
        }
        let rows: Vec<Row> = members
            .iter()
            .map(|&i| {
                let cont = &requests[i].continuation;
                let mut input = vec![context[last]];
                input.extend_from_slice(&cont[..cont.len() - 1]);
                Row::for_continuation(input, i, cont)
            })
            .collect();
        let rows = super::rows::merge_identical(rows);
        let cache = (!cache.is_empty()).then_some(&cache);
        self.score_rows(rows, cache, results, requests)
    }
}

/// The plan of one group of requests sharing `context`, of which the first `skip` tokens come
/// from the shared prefix's cache.
fn group_plan(
    context: &[u32],
    members: Vec<usize>,
    requests: &[LoglikelihoodRequest],
    skip: usize,
    on_prefix: bool,
) -> Plan {
    let first = &requests[members[0]].continuation;
    let one_row = members.iter().all(|&i| {
        let cont = &requests[i].continuation;
        cont.len() == first.len() && cont[..cont.len() - 1] == first[..first.len() - 1]
    });
    if !one_row {
        return Plan::Shared {
            context: context.to_vec(),
            members,
            on_prefix,
        };
    }
    // Every member's input is `context + continuation[:-1]`: one row, one target set each.
    let mut input = context[skip..].to_vec();
    input.extend_from_slice(&first[..first.len() - 1]);
    let n = first.len();
    let start = input.len() - n;
    let targets = members
        .iter()
        .flat_map(|&i| {
            requests[i]
                .continuation
                .iter()
                .enumerate()
                .map(move |(j, &token)| Target {
                    position: start + j,
                    token,
                    request: i,
                })
        })
        .collect();
    Plan::Flat {
        row: Row { input, targets },
        on_prefix,
    }
}
