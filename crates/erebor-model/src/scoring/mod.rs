//! Log-probabilities of tokens under the model, always in f32 whatever the compute dtype.
//!
//! # For training (tensors, differentiable on an autodiff device)
//! - [`token_logprobs`]`(logits [b, s, V], targets [b, s]) → [b, s]`: `log_softmax(logits)[target]`.
//! - [`sequence_logprobs`]`(logits [b, s, V], input_ids [b, s], target_mask [b, s]) → [b]`: the
//!   sum over `t ≥ 1` of `log p(input_ids[t] | input_ids[..t])` where `target_mask[t] = 1`
//!   (the mask is in input coordinates: mark the completion tokens; padding and prompt are 0).
//!   This is exactly TRL's/`make_fixtures.py`'s `(log_softmax(logits[:, :-1]).gather(ids[:, 1:]) * mask[:, 1:]).sum(-1)`.
//!
//! # For evaluation (lm-evaluation-harness semantics)
//! - [`Scorer::loglikelihood`]: per-token log-probs, their sum and `is_greedy` for
//!   (context, continuation) token pairs; requests sorted by length, batched with right padding,
//!   left-truncated to the context window; requests sharing a context compute it once with the
//!   KV cache; [`Scorer::prefill`] computes a prefix every context of a task starts with (MMLU's
//!   five-shot prefix) once and [`Scorer::loglikelihood_with_prefix`] starts from its cache.
//! - [`encode_pair`]: lm-eval's `_encode_pair` (context and continuation tokenised together,
//!   trailing context spaces moved to the continuation; empty context → BOS/EOS prefix).

mod encode;
mod loglikelihood;
mod logprobs;
mod rows;

pub use encode::encode_pair;
pub use loglikelihood::{
    LoglikelihoodRequest, LoglikelihoodResult, Scorer, ScorerOptions, SharedPrefix,
    common_prefix_len,
};
pub use logprobs::{sequence_logprobs, token_logprobs};
