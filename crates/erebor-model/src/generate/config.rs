//! What a generation request asks for ([`GenerationConfig`]), its check before any compute, and
//! what it returns ([`Generation`], [`FinishReason`]).

use crate::error::{ModelError, Result};

/// Generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Most tokens to generate per prompt.
    pub max_new_tokens: usize,
    /// 0 = greedy; otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f32,
    /// Keep only the `k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Token ids that end a sequence (included in `token_ids`, not in `text`).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sequence; the text is cut before the first one.
    pub stop_strings: Vec<String>,
    /// Seed of the sampling stream.
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            seed: 0,
        }
    }
}

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token was generated.
    StopToken,
    /// A stop string appeared in the text.
    StopString,
    /// `max_new_tokens` was reached.
    Length,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The new token ids (a final stop token included).
    pub token_ids: Vec<u32>,
    /// Their text without special tokens, cut before a stop string.
    pub text: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
}

/// Checks a request before any compute: a non-empty prompt that fits the context window with
/// its new tokens, temperature >= 0, `top_p` in (0, 1], a tokenizer when stop strings are given.
pub(crate) fn validate(
    prompt_len: usize,
    window: usize,
    config: &GenerationConfig,
    has_tokenizer: bool,
) -> Result<()> {
    if prompt_len == 0 {
        return Err(ModelError::InvalidRequest(
            "every prompt needs at least one token".into(),
        ));
    }
    if prompt_len + config.max_new_tokens > window {
        return Err(ModelError::InvalidRequest(format!(
            "prompt of {prompt_len} tokens + {} new tokens exceeds the context window of {window}",
            config.max_new_tokens
        )));
    }
    if config.temperature < 0.0 || !(0.0..=1.0).contains(&config.top_p) || config.top_p == 0.0 {
        return Err(ModelError::InvalidRequest(
            "temperature must be >= 0 and top_p in (0, 1]".into(),
        ));
    }
    if !has_tokenizer && !config.stop_strings.is_empty() {
        return Err(ModelError::InvalidRequest(
            "stop strings need a tokenizer".into(),
        ));
    }
    Ok(())
}
