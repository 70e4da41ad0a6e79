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

mod loglikelihood;
mod rows;

use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Int, Tensor};

use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;

pub use loglikelihood::{
    LoglikelihoodRequest, LoglikelihoodResult, Scorer, ScorerOptions, SharedPrefix,
    common_prefix_len,
};

/// `log_softmax(logits)` gathered at `targets`, in f32: `[b, s, V] × [b, s] → [b, s]`.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let logits = if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(DType::F32)
    };
    let lp = log_softmax(logits, 2);
    lp.gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
}

/// Per-sequence sum of the log-probs of the tokens marked in `target_mask` (f32, `[b]`), each
/// token predicted from the logits one position earlier. `target_mask[:, 0]` is ignored (the
/// first token has no prediction).
pub fn sequence_logprobs(
    logits: Tensor<3>,
    input_ids: Tensor<2, Int>,
    target_mask: Tensor<2>,
) -> Tensor<1> {
    let [b, s, v] = logits.dims();
    assert!(
        s >= 2,
        "sequence_logprobs needs at least two positions, got {s}"
    );
    let pred = logits.slice([0..b, 0..s - 1, 0..v]);
    let targets = input_ids.slice([0..b, 1..s]);
    let mask = target_mask.slice([0..b, 1..s]);
    let mask = if mask.dtype() == DType::F32 {
        mask
    } else {
        mask.cast(DType::F32)
    };
    (token_logprobs(pred, targets) * mask)
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}

/// lm-evaluation-harness `_encode_pair`: trailing whitespace of the context moves to the
/// continuation, `context + continuation` is encoded once, and the continuation is what follows
/// the context's tokens. An empty context becomes the prefix token (BOS, else EOS), as lm-eval's
/// `loglikelihood` does. `add_special_tokens` is lm-eval's `add_bos_token` (off by default).
pub fn encode_pair(
    tokenizer: &Tokenizer,
    context: &str,
    continuation: &str,
    add_special_tokens: bool,
) -> Result<(Vec<u32>, Vec<u32>)> {
    if context.is_empty() {
        let prefix = tokenizer.bos().or(tokenizer.eos()).ok_or_else(|| {
            ModelError::InvalidRequest(
                "empty context and the tokenizer has neither BOS nor EOS".into(),
            )
        })?;
        return Ok((
            vec![prefix.id],
            tokenizer.encode_ids(continuation, add_special_tokens)?,
        ));
    }
    let trimmed = context.trim_end();
    let (context, continuation) = if trimmed.len() < context.len() {
        (
            trimmed.to_string(),
            format!("{}{continuation}", &context[trimmed.len()..]),
        )
    } else {
        (context.to_string(), continuation.to_string())
    };
    let whole = tokenizer.encode_ids(&format!("{context}{continuation}"), add_special_tokens)?;
    let context_ids = tokenizer.encode_ids(&context, add_special_tokens)?;
    let split = context_ids.len().min(whole.len());
    Ok((context_ids, whole[split..].to_vec()))
}
