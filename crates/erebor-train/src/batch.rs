//! Turning tokenised rows into fixed-shape batches: truncation, padding and packing.
//!
//! A [`TokenBatch`] holds `rows × seq_len` inputs and, for each position `t`, the token the model
//! should predict there (`targets[t] = input[t + 1]`) and whether that prediction counts
//! (`loss_mask`). Padding goes on the right and is never a target, so a causal mask alone keeps
//! real tokens from seeing it.
//!
//! Truncation policy (stated in docs/steps.md):
//! - SFT rows longer than `max_seq_len` keep their first `max_seq_len` tokens; rows left without
//!   any target token are dropped and counted.
//! - Preference pairs longer than `max_seq_len` first lose prompt tokens from the left (keeping the
//!   last `max_prompt_len`), then completion tokens from the right, the same cut for chosen and
//!   rejected (TRL's `keep_end` prompt truncation).
//!
//! Packing puts several SFT examples in one row, restarting position ids at each example and
//! giving each example its own segment id so attention stays within it; the last token of one
//! example never predicts the first token of the next.

use erebor_core::dataset::{TokenisedPreference, TokenisedSft};

/// Inputs and targets of one forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    /// Number of rows.
    pub rows: usize,
    /// Length of every row.
    pub seq_len: usize,
    /// Input token ids, row-major `[rows, seq_len]`.
    pub input_ids: Vec<u32>,
    /// The token each position predicts (`input[t + 1]`, 0 where there is none).
    pub targets: Vec<u32>,
    /// 1.0 where the prediction is part of the loss.
    pub loss_mask: Vec<f32>,
    /// Position ids when rows are packed (restarting at 0 per example); `None` means `0..len`.
    pub position_ids: Option<Vec<u32>>,
    /// Example index within the row when packed; attention must not cross segments.
    pub segment_ids: Option<Vec<u32>>,
    /// Number of real (non-padding) tokens, for throughput.
    pub real_tokens: usize,
}

impl TokenBatch {
    /// Number of positions whose prediction is in the loss.
    pub(crate) fn target_count(&self) -> usize {
        self.loss_mask.iter().filter(|m| **m > 0.0).count()
    }

    fn from_sequences(sequences: &[(Vec<u32>, Vec<bool>)], pad_to_multiple: usize) -> Self {
        let longest = sequences
            .iter()
            .map(|(ids, _)| ids.len())
            .max()
            .unwrap_or(1);
        let multiple = pad_to_multiple.max(1);
        let seq_len = longest.div_ceil(multiple) * multiple;
        let rows = sequences.len();
        let mut batch = TokenBatch {
            rows,
            seq_len,
            input_ids: vec![0; rows * seq_len],
            targets: vec![0; rows * seq_len],
            loss_mask: vec![0.0; rows * seq_len],
            position_ids: None,
            segment_ids: None,
            real_tokens: 0,
        };
        for (row, (ids, is_target)) in sequences.iter().enumerate() {
            let base = row * seq_len;
            batch.input_ids[base..base + ids.len()].copy_from_slice(ids);
            batch.real_tokens += ids.len();
            for t in 0..ids.len().saturating_sub(1) {
                batch.targets[base + t] = ids[t + 1];
                if is_target[t + 1] {
                    batch.loss_mask[base + t] = 1.0;
                }
            }
        }
        batch
    }
}

/// An SFT example after truncation: tokens and which of them are targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftExample {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// Whether each token is a training target.
    pub is_target: Vec<bool>,
}

impl SftExample {
    /// Target tokens that can be predicted (the first token never is).
    pub(crate) fn target_count(&self) -> usize {
        self.is_target.iter().skip(1).filter(|t| **t).count()
    }
}

/// Why a row cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("row {row} (id `{id}`): {message}")]
pub(crate) struct RowError {
    /// 0-based row index in the split.
    pub row: usize,
    /// The row's id.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

/// Truncates SFT rows to `max_seq_len`. Returns the examples and the number of rows dropped
/// because no target token was left; malformed spans are an error naming the row.
pub(crate) fn prepare_sft(
    rows: &[TokenisedSft],
    max_seq_len: usize,
) -> Result<(Vec<SftExample>, usize), RowError> {
    let mut examples = Vec::with_capacity(rows.len());
    let mut dropped = 0;
    for (index, row) in rows.iter().enumerate() {
        let len = row.input_ids.len();
        let mut is_target = vec![false; len];
        for [start, end] in &row.target_spans {
            let (start, end) = (*start as usize, *end as usize);
            if start > end || end > len {
                return Err(RowError {
                    row: index,
                    id: row.id.clone(),
                    message: format!("target span [{start}, {end}) is outside its {len} tokens"),
                });
            }
            is_target[start..end].iter_mut().for_each(|t| *t = true);
        }
        let keep = len.min(max_seq_len);
        let example = SftExample {
            input_ids: row.input_ids[..keep].to_vec(),
            is_target: is_target[..keep].to_vec(),
        };
        if example.target_count() == 0 {
            dropped += 1;
        } else {
            examples.push(example);
        }
    }
    Ok((examples, dropped))
}

/// One padded SFT batch of the given examples.
pub fn sft_batch(examples: &[&SftExample], pad_to_multiple: usize) -> TokenBatch {
    let sequences: Vec<(Vec<u32>, Vec<bool>)> = examples
        .iter()
        .map(|e| (e.input_ids.clone(), e.is_target.clone()))
        .collect();
    TokenBatch::from_sequences(&sequences, pad_to_multiple)
}

/// Examples packed into rows of at most `max_seq_len` tokens, greedily in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRow {
    /// The examples in the row, in order.
    pub examples: Vec<SftExample>,
}

impl PackedRow {
    /// Tokens in the row.
    pub fn len(&self) -> usize {
        self.examples.iter().map(|e| e.input_ids.len()).sum()
    }

    /// Whether the row holds no example.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Target tokens in the row.
    pub(crate) fn target_count(&self) -> usize {
        self.examples.iter().map(SftExample::target_count).sum()
    }
}

/// Packs examples (each already at most `max_seq_len` long) into rows, starting a new row when
/// the next example does not fit.
pub fn pack(examples: &[SftExample], max_seq_len: usize) -> Vec<PackedRow> {
    let mut rows: Vec<PackedRow> = Vec::new();
    let mut current = PackedRow {
        examples: Vec::new(),
    };
    for example in examples {
        if !current.is_empty() && current.len() + example.input_ids.len() > max_seq_len {
            rows.push(std::mem::replace(
                &mut current,
                PackedRow {
                    examples: Vec::new(),
                },
            ));
        }
        current.examples.push(example.clone());
    }
    if !current.is_empty() {
        rows.push(current);
    }
    rows
}

/// One batch of packed rows, padded to the longest row.
pub fn packed_batch(rows: &[&PackedRow], pad_to_multiple: usize) -> TokenBatch {
    let sequences: Vec<(Vec<u32>, Vec<bool>)> = rows
        .iter()
        .map(|row| {
            let ids = row
                .examples
                .iter()
                .flat_map(|e| e.input_ids.iter().copied())
                .collect();
            // A position predicts the next token only within its example: the first token of
            // each example is never a target.
            let targets = row
                .examples
                .iter()
                .flat_map(|e| e.is_target.iter().enumerate().map(|(i, t)| *t && i > 0))
                .collect();
            (ids, targets)
        })
        .collect();
    let mut batch = TokenBatch::from_sequences(&sequences, pad_to_multiple);
    let mut positions = vec![0u32; batch.rows * batch.seq_len];
    let mut segments = vec![u32::MAX; batch.rows * batch.seq_len];
    for (r, row) in rows.iter().enumerate() {
        let mut t = r * batch.seq_len;
        for (s, example) in (0u32..).zip(&row.examples) {
            for p in (0u32..).take(example.input_ids.len()) {
                positions[t] = p;
                segments[t] = s;
                t += 1;
            }
        }
    }
    batch.position_ids = Some(positions);
    batch.segment_ids = Some(segments);
    batch
}

/// A preference pair after truncation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairExample {
    /// Prompt tokens (chat template applied, generation prompt included).
    pub prompt_ids: Vec<u32>,
    /// Chosen completion tokens.
    pub chosen_ids: Vec<u32>,
    /// Rejected completion tokens.
    pub rejected_ids: Vec<u32>,
}

/// Truncates preference rows (see the module docs for the policy). A row with an empty prompt
/// or an empty completion is an error naming it.
pub(crate) fn prepare_pairs(
    rows: &[TokenisedPreference],
    max_seq_len: usize,
    max_prompt_len: usize,
) -> Result<Vec<PairExample>, RowError> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let error = |message: &str| RowError {
                row: index,
                id: row.id.clone(),
                message: message.to_owned(),
            };
            if row.prompt_ids.is_empty() {
                return Err(error("the prompt has no tokens"));
            }
            if row.chosen_ids.is_empty() || row.rejected_ids.is_empty() {
                return Err(error("the chosen or the rejected completion has no tokens"));
            }
            let longest = row.chosen_ids.len().max(row.rejected_ids.len());
            let mut prompt = row.prompt_ids.clone();
            if prompt.len() + longest > max_seq_len && prompt.len() > max_prompt_len {
                prompt.drain(..prompt.len() - max_prompt_len);
            }
            let room = max_seq_len.saturating_sub(prompt.len());
            if room == 0 {
                return Err(error(&format!(
                    "the prompt alone fills max_seq_len ({max_seq_len}); raise max_seq_len or \
                     lower max_prompt_len"
                )));
            }
            let cut = |ids: &[u32]| ids[..ids.len().min(room)].to_vec();
            Ok(PairExample {
                chosen_ids: cut(&row.chosen_ids),
                rejected_ids: cut(&row.rejected_ids),
                prompt_ids: prompt,
            })
        })
        .collect()
}

/// One batch of `2 × pairs` rows: the chosen sequences first, then the rejected ones, with the
/// completion tokens as targets. Row `i` and row `i + pairs` belong to pair `i`.
pub fn pair_batch(pairs: &[&PairExample], pad_to_multiple: usize) -> TokenBatch {
    let sequence = |prompt: &[u32], completion: &[u32]| {
        let ids: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let targets = (0..ids.len()).map(|i| i >= prompt.len()).collect();
        (ids, targets)
    };
    let mut sequences: Vec<(Vec<u32>, Vec<bool>)> = pairs
        .iter()
        .map(|p| sequence(&p.prompt_ids, &p.chosen_ids))
        .collect();
    sequences.extend(
        pairs
            .iter()
            .map(|p| sequence(&p.prompt_ids, &p.rejected_ids)),
    );
    TokenBatch::from_sequences(&sequences, pad_to_multiple)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
