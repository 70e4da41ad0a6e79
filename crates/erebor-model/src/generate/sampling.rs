//! Choosing the next token from logits: argmax (greedy) or a draw after temperature, top-k
//! and top-p. One implementation for [`crate::generate()`] and the continuous [`crate::batcher`].

use burn::tensor::Tensor;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::GenerationConfig;
use crate::error::{ModelError, Result};

/// Draws the next token from one row of f32 logits with the config's temperature (> 0),
/// top-k and top-p.
pub(crate) fn sample(logits: &[f32], config: &GenerationConfig, rng: &mut ChaCha8Rng) -> u32 {
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
            return token_id(*id);
        }
    }
    probs.last().map_or(0, |(id, _)| token_id(*id))
}

/// A vocabulary index as a token id (token ids are `u32` throughout, so every index fits).
fn token_id(index: usize) -> u32 {
    u32::try_from(index).expect("vocabulary indices fit in u32")
}

/// The index of the largest logit (the first one on ties, as the device argmax).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    token_id(best)
}

/// The next token of every row of `logits` `[batch, vocab]`. When every row is greedy the
/// argmax runs on the device; otherwise the logits come back to the host and `choose(row,
/// logits)` picks each sampled row's token (greedy rows take the host argmax).
pub(crate) fn pick(
    logits: Tensor<2>,
    greedy: &[bool],
    mut choose: impl FnMut(usize, &[f32]) -> u32,
) -> Result<Vec<u32>> {
    let read = |e| ModelError::InvalidRequest(format!("reading logits back failed: {e:?}"));
    if greedy.iter().all(|g| *g) {
        let ids: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(read)?;
        return Ok(ids
            .into_iter()
            .map(|i| u32::try_from(i).expect("an argmax is a vocabulary index"))
            .collect());
    }
    let [b, v] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().map_err(read)?;
    Ok((0..b)
        .map(|i| {
            let row = &values[i * v..(i + 1) * v];
            if greedy[i] {
                argmax(row)
            } else {
                choose(i, row)
            }
        })
        .collect())
}
