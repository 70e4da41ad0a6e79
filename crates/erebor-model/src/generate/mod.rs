//! Text generation with a KV cache: greedy or sampled (temperature, top-p, top-k), max new
//! tokens, stop token ids and stop strings, batched with left padding.
//!
//! [`generate`] takes prompts as token ids (render chat prompts with [`crate::ChatTemplate`]
//! and encode them with `add_special_tokens = false`), and returns the new tokens and their text.
//! Sampling draws from a ChaCha stream seeded with [`GenerationConfig::seed`], so a seed gives
//! the same text on every run.

use burn::tensor::activation::softmax;
use burn::tensor::{DType, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// Picks the next token from one row of f32 logits.
fn sample(logits: &[f32], config: &GenerationConfig, rng: &mut ChaCha8Rng) -> u32 {
    let t = config.temperature;
    let mut probs: Vec<(usize, f32)> = {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits.iter().map(|&l| ((l - max) / t).exp()).collect();
        let sum: f32 = exps.iter().sum();
        exps.into_iter().map(|e| e / sum).enumerate().collect()
    };
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    if config.top_k > 0 {
        probs.truncate(config.top_k);
    }
    if config.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = 0;
        for (_, p) in &probs {
            cumulative += p;
            keep += 1;
            if cumulative >= config.top_p {
                break;
            }
        }
        probs.truncate(keep.max(1));
    }
    let total: f32 = probs.iter().map(|(_, p)| p).sum();
    let mut draw = rng.random::<f32>() * total;
    for (id, p) in &probs {
        draw -= p;
        if draw <= 0.0 {
            return *id as u32;
        }
    }
    probs.last().map_or(0, |(id, _)| *id as u32)
}

struct Row {
    tokens: Vec<u32>,
    done: Option<FinishReason>,
    text: String,
}

/// Generates a continuation of every prompt, in one batch. Without a tokenizer the texts are
/// empty (stop strings then need one) and padding uses id 0.
pub fn generate(
    model: &CausalLm,
    tokenizer: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Generation>> {
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::InvalidRequest(
            "every prompt needs at least one token".into(),
        ));
    }
    let window = model.config().max_position_embeddings;
    if let Some(p) = prompts
        .iter()
        .find(|p| p.len() + config.max_new_tokens > window)
    {
        return Err(ModelError::InvalidRequest(format!(
            "prompt of {} tokens + {} new tokens exceeds the context window of {window}",
            p.len(),
            config.max_new_tokens
        )));
    }
    if config.temperature < 0.0 || !(0.0..=1.0).contains(&config.top_p) || config.top_p == 0.0 {
        return Err(ModelError::InvalidRequest(
            "temperature must be >= 0 and top_p in (0, 1]".into(),
        ));
    }
    if tokenizer.is_none() && !config.stop_strings.is_empty() {
        return Err(ModelError::InvalidRequest(
            "stop strings need a tokenizer".into(),
        ));
    }
    let decode = |ids: &[u32]| tokenizer.map_or(Ok(String::new()), |t| t.decode(ids, true));
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let pad = tokenizer.map_or(0, Tokenizer::pad_id_or_fallback);
    let mut rows: Vec<Row> = prompts
        .iter()
        .map(|_| Row {
            tokens: Vec::new(),
            done: None,
            text: String::new(),
        })
        .collect();
    if config.max_new_tokens == 0 {
        return Ok(finish(rows));
    }
    // Prefill: left-padded prompts, positions counted from each prompt's first token.
    let mut cache = KvCache::default();
    let batch = TokenBatch::left_padded(prompts, pad);
    let mut next_pos: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    let hidden = model.forward_hidden(&batch, Some(&mut cache));
    let mut last = last_logits(model, hidden);
    loop {
        let next = pick(last, config, &mut rng)?;
        let mut still = Vec::new();
        for (slot, &row_idx) in active.iter().enumerate() {
            let tok = next[slot];
            let row = &mut rows[row_idx];
            row.tokens.push(tok);
            if config.stop_token_ids.contains(&tok) {
                row.done = Some(FinishReason::StopToken);
            } else if !config.stop_strings.is_empty() {
                row.text = decode(&row.tokens)?;
                if config
                    .stop_strings
                    .iter()
                    .any(|s| row.text.contains(s.as_str()))
                {
                    row.done = Some(FinishReason::StopString);
                }
            }
            if row.done.is_none() && row.tokens.len() >= config.max_new_tokens {
                row.done = Some(FinishReason::Length);
            }
            if row.done.is_none() {
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
    for row in &mut rows {
        let text = decode(&row.tokens)?;
        row.text = match config
            .stop_strings
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            Some(cut) => text[..cut].to_string(),
            None => text,
        };
    }
    Ok(finish(rows))
}

fn finish(rows: Vec<Row>) -> Vec<Generation> {
    rows.into_iter()
        .map(|r| Generation {
            token_ids: r.tokens,
            text: r.text,
            finish_reason: r.done.unwrap_or(FinishReason::Length),
        })
        .collect()
}

/// Logits of the last position of each row, `[batch, vocab]`, in f32.
fn last_logits(model: &CausalLm, hidden: Tensor<3>) -> Tensor<2> {
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

/// The next token of every row: argmax on the device when greedy, otherwise sampled on the host.
fn pick(logits: Tensor<2>, config: &GenerationConfig, rng: &mut ChaCha8Rng) -> Result<Vec<u32>> {
    let read = |e| ModelError::InvalidRequest(format!("reading logits back failed: {e:?}"));
    if config.temperature == 0.0 {
        let ids: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(read)?;
        return Ok(ids.into_iter().map(|i| i as u32).collect());
    }
    let [b, v] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().map_err(read)?;
    Ok((0..b)
        .map(|i| sample(&values[i * v..(i + 1) * v], config, rng))
        .collect())
}

/// Softmax probabilities of the last position (used by tests and callers that need them).
pub fn next_token_probs(model: &CausalLm, prompt: &[u32]) -> Tensor<1> {
    let batch = TokenBatch::right_padded(&[prompt.to_vec()], 0);
    let logits = last_logits(model, model.forward_hidden(&batch, None));
    let v = logits.dims()[1];
    softmax(logits, 1).reshape([v])
}
