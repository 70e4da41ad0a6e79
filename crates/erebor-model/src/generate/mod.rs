//! Text generation with a KV cache: greedy or sampled (temperature, top-p, top-k), max new
//! tokens, stop token ids and stop strings, batched with left padding.
//!
//! [`generate`] takes prompts as token ids (render chat prompts with [`crate::ChatTemplate`]
//! and encode them with `add_special_tokens = false`), and returns the new tokens and their text.
//! Sampling draws from a ChaCha stream seeded with [`GenerationConfig::seed`], so a seed gives
//! the same text on every run.

mod sampling;
mod sequence;

use burn::tensor::activation::softmax;
use burn::tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub(crate) use sampling::{pick, sample};
pub(crate) use sequence::SequenceState;

use crate::error::{ModelError, Result};
use crate::model::{CausalLm, KvCache, TokenBatch};
use crate::tokenizer::Tokenizer;

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
/// its new tokens, temperature >= 0, top_p in (0, 1], a tokenizer when stop strings are given.
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

/// Generates a continuation of every prompt, in one batch. Without a tokenizer the texts are
/// empty (stop strings then need one) and padding uses id 0.
pub fn generate(
    model: &CausalLm,
    tokenizer: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Generation>> {
    let window = model.config().max_position_embeddings;
    if prompts.iter().any(Vec::is_empty) {
        validate(0, window, config, tokenizer.is_some())?;
    }
    for p in prompts {
        validate(p.len(), window, config, tokenizer.is_some())?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let pad = tokenizer.map_or(0, Tokenizer::pad_id_or_fallback);
    let mut rows: Vec<SequenceState> = vec![SequenceState::default(); prompts.len()];
    if config.max_new_tokens == 0 {
        return finish(rows, config, tokenizer);
    }
    // Prefill: left-padded prompts, positions counted from each prompt's first token.
    let mut cache = KvCache::default();
    let batch = TokenBatch::left_padded(prompts, pad);
    let mut next_pos: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    let hidden = model.forward_hidden(&batch, Some(&mut cache));
    let mut last = last_logits(model, hidden);
    let greedy = config.temperature == 0.0;
    loop {
        let next = pick(last, &vec![greedy; active.len()], |_, row| {
            sample(row, config, &mut rng)
        })?;
        let mut still = Vec::new();
        for (slot, &row_idx) in active.iter().enumerate() {
            if rows[row_idx]
                .push(next[slot], config, tokenizer, false)?
                .is_none()
            {
                still.push(slot);
            }
        }
        if still.is_empty() {
            break;
        }
        if still.len() < active.len() {
            cache = cache.select_rows(&still, &model.device());
        }
        active = still.iter().map(|&s| active[s]).collect();
        let step: Vec<Vec<u32>> = active
            .iter()
            .map(|&r| vec![*rows[r].tokens.last().expect("one token")])
            .collect();
        let starts: Vec<usize> = active.iter().map(|&r| next_pos[r]).collect();
        for &r in &active {
            next_pos[r] += 1;
        }
        let batch = TokenBatch::right_padded_at(&step, pad, &starts);
        let hidden = model.forward_hidden(&batch, Some(&mut cache));
        last = last_logits(model, hidden);
    }
    finish(rows, config, tokenizer)
}

fn finish(
    rows: Vec<SequenceState>,
    config: &GenerationConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Generation>> {
    rows.into_iter()
        .map(|r| r.finish(config, tokenizer))
        .collect()
}

/// Logits of the last position of each row, `[batch, vocab]`, in f32.
pub(crate) fn last_logits(model: &CausalLm, hidden: Tensor<3>) -> Tensor<2> {
    let [b, s, h] = hidden.dims();
    let last = hidden.slice([0..b, s - 1..s, 0..h]);
    let logits = model.lm_head_forward(last);
    let v = logits.dims()[2];
    let logits = logits.reshape([b, v]);
    if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(DType::F32)
    }
}

/// Softmax probabilities of the last position (used by tests and callers that need them).
pub fn next_token_probs(model: &CausalLm, prompt: &[u32]) -> Tensor<1> {
    let batch = TokenBatch::right_padded(&[prompt.to_vec()], 0);
    let logits = last_logits(model, model.forward_hidden(&batch, None));
    let v = logits.dims()[1];
    softmax(logits, 1).reshape([v])
}
