//! What an evaluation runs with: its batching and tokenisation settings ([`EvalSettings`]), the
//! model ([`EvalModel`]) and the progress and cancellation hooks ([`Hooks`]).

use erebor_core::{CancelToken, ProgressReporter};
use erebor_model::{CausalLm, Tokenizer};
use serde::{Deserialize, Serialize};

/// What decides how requests are tokenised and batched. Only `add_bos` and `max_length` change
/// the numbers; batching changes speed (and padding, within float rounding).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// Most sequences per forward pass.
    pub batch_size: usize,
    /// Most tokens (sequences × padded length) per forward pass.
    pub max_batch_tokens: usize,
    /// Compute a context shared by several continuations once (same results, fewer tokens).
    pub share_contexts: bool,
    /// Prepend BOS when tokenising (lm-eval's `add_bos_token`; off for Hugging Face models).
    pub add_bos: bool,
    /// Context window in tokens; longer inputs are cut on the left (default: the model's).
    pub max_length: Option<usize>,
    /// Evaluate at most this many documents per task (after the harness's shuffle).
    pub limit: Option<usize>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            batch_size: 8,
            max_batch_tokens: 16_384,
            share_contexts: true,
            add_bos: false,
            max_length: None,
            limit: None,
        }
    }
}

/// The model being evaluated: weights and the tokenizer that goes with them.
#[derive(Clone, Copy)]
pub struct EvalModel<'a> {
    /// The network.
    pub model: &'a CausalLm,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
}

/// Where progress goes and what stops a run.
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    /// Documents done per task, as phase `eval <task>`.
    pub progress: &'a dyn ProgressReporter,
    /// Checked between chunks of documents.
    pub cancel: Option<&'a CancelToken>,
}
