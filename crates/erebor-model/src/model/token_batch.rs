//! [`TokenBatch`]: the token ids of several sequences, padded to one length, with their padding
//! masks and positions.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Token ids of several sequences with their padding masks and positions.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[batch][seq]` ids, padded to one length.
    pub ids: Vec<Vec<u32>>,
    /// `[batch][seq]`: `false` at padding.
    pub valid: Vec<Vec<bool>>,
    /// `[batch][seq]` `RoPE` positions.
    pub positions: Vec<Vec<usize>>,
}

impl TokenBatch {
    /// Sequences padded on the right with `pad_id`; positions `0..len`.
    pub fn right_padded(seqs: &[Vec<u32>], pad_id: u32) -> Self {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut batch = TokenBatch {
            ids: Vec::new(),
            valid: Vec::new(),
            positions: Vec::new(),
        };
        for s in seqs {
            let mut ids = s.clone();
            ids.resize(len, pad_id);
            batch.ids.push(ids);
            batch.valid.push((0..len).map(|i| i < s.len()).collect());
            batch.positions.push((0..len).collect());
        }
        batch
    }

    /// Sequences padded on the right that continue cached sequences: row `i`'s positions start
    /// at `start[i]`.
    pub(crate) fn right_padded_at(seqs: &[Vec<u32>], pad_id: u32, start: &[usize]) -> Self {
        let mut batch = Self::right_padded(seqs, pad_id);
        for (row, s) in batch.positions.iter_mut().zip(start) {
            for p in row.iter_mut() {
                *p += s;
            }
        }
        batch
    }

    /// Sequences padded on the left with `pad_id`; each sequence's positions start at 0 at its
    /// first real token, as transformers' `generate` computes them from the attention mask.
    pub(crate) fn left_padded(seqs: &[Vec<u32>], pad_id: u32) -> Self {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut batch = TokenBatch {
            ids: Vec::new(),
            valid: Vec::new(),
            positions: Vec::new(),
        };
        for s in seqs {
            let pad = len - s.len();
            let mut ids = vec![pad_id; pad];
            ids.extend_from_slice(s);
            batch.ids.push(ids);
            batch.valid.push((0..len).map(|i| i >= pad).collect());
            batch
                .positions
                .push((0..len).map(|i| i.saturating_sub(pad)).collect());
        }
        batch
    }

    /// Number of sequences.
    pub fn batch_size(&self) -> usize {
        self.ids.len()
    }

    /// Padded length.
    pub fn seq_len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }

    /// The ids as an Int tensor `[batch, seq]`.
    pub(crate) fn ids_tensor(&self, device: &Device) -> Tensor<2, Int> {
        let flat: Vec<i64> = self.ids.iter().flatten().map(|&i| i64::from(i)).collect();
        Tensor::from_data(
            TensorData::new(flat, [self.batch_size(), self.seq_len()]),
            device,
        )
    }
}
