//! The batched decode loop: prefill the left-padded prompts, then one token per step from the KV
//! cache until every row stops.

use burn::tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Generation, GenerationConfig, SequenceState, pick, sample, validate};
use crate::error::Result;
use crate::model::{CausalLm, KvCache, TokenBatch};
use crate::tokenizer::Tokenizer;

/// Generates a continuation of every prompt, in one batch. Without a tokenizer the texts are
/// empty (stop strings then need one) and padding uses id 0.
///
/// # Panics
/// Never in practice: every running row holds at least its last generated token.
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
