//! [`KvCache`]: the keys and values of every layer for the tokens a batch has seen, and the row
//! operations continuous batching and generation need (repeat, select, concatenate, trim).

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::LayerCache;

/// Keys and values of every layer for the tokens seen so far, plus their padding masks.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub(super) layers: Vec<Option<LayerCache>>,
    pub(super) key_valid: Vec<Vec<bool>>,
}

impl KvCache {
    /// Cached length (in positions).
    pub fn len(&self) -> usize {
        self.key_valid.first().map_or(0, Vec::len)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch size of the cache.
    pub fn batch_size(&self) -> usize {
        self.key_valid.len()
    }

    /// A cache with every sequence of a batch-1 cache repeated `n` times (shared prefixes).
    ///
    /// # Panics
    /// When the cache holds more than one sequence.
    #[must_use]
    pub fn repeat(&self, n: usize) -> Self {
        assert_eq!(self.batch_size(), 1, "only a batch-1 cache can be repeated");
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.as_ref().map(|c| LayerCache {
                    keys: c.keys.clone().repeat_dim(0, n),
                    values: c.values.clone().repeat_dim(0, n),
                })
            })
            .collect();
        KvCache {
            layers,
            key_valid: vec![self.key_valid[0].clone(); n],
        }
    }

    /// Keeps only the sequences at `rows` (generation drops finished sequences).
    ///
    /// # Panics
    /// When a row is not one of the cache's sequences.
    #[must_use]
    pub(crate) fn select_rows(&self, rows: &[usize], device: &Device) -> Self {
        let idx: Vec<i64> = rows
            .iter()
            .map(|&r| i64::try_from(r).expect("a row of a batch fits in i64"))
            .collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), device);
        KvCache {
            layers: self
                .layers
                .iter()
                .map(|l| {
                    l.as_ref().map(|c| LayerCache {
                        keys: c.keys.clone().select(0, idx.clone()),
                        values: c.values.clone().select(0, idx.clone()),
                    })
                })
                .collect(),
            key_valid: rows.iter().map(|&r| self.key_valid[r].clone()).collect(),
        }
    }

    /// The rows of `self` then those of `other` in one cache (continuous batching admits newly
    /// prefilled sequences this way). The shorter cache is padded on the left with masked
    /// positions, so each row keeps its real tokens contiguous and last, as left padding does.
    #[must_use]
    pub(crate) fn concat_rows(self, other: KvCache) -> Self {
        if self.layers.is_empty() || self.batch_size() == 0 {
            return other;
        }
        if other.layers.is_empty() || other.batch_size() == 0 {
            return self;
        }
        let len = self.len().max(other.len());
        let (a, b) = (self.left_pad_to(len), other.left_pad_to(len));
        KvCache {
            layers: a
                .layers
                .into_iter()
                .zip(b.layers)
                .map(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => Some(LayerCache {
                        keys: Tensor::cat(vec![x.keys, y.keys], 0),
                        values: Tensor::cat(vec![x.values, y.values], 0),
                    }),
                    _ => None,
                })
                .collect(),
            key_valid: a.key_valid.into_iter().chain(b.key_valid).collect(),
        }
    }

    /// Drops the leading positions that are padding in every row (after long sequences leave
    /// a continuous batch), so attention does not keep scanning them.
    #[must_use]
    pub(crate) fn trim_left_padding(self) -> Self {
        let drop = self
            .key_valid
            .iter()
            .map(|row| row.iter().take_while(|v| !**v).count())
            .min()
            .unwrap_or(0);
        if drop == 0 {
            return self;
        }
        let len = self.len();
        let cut = |t: Tensor<4>| t.narrow(2, drop, len - drop);
        KvCache {
            layers: self
                .layers
                .into_iter()
                .map(|l| {
                    l.map(|c| LayerCache {
                        keys: cut(c.keys),
                        values: cut(c.values),
                    })
                })
                .collect(),
            key_valid: self
                .key_valid
                .into_iter()
                .map(|row| row[drop..].to_vec())
                .collect(),
        }
    }

    /// The cache padded on the left with masked zero keys/values to `len` positions.
    fn left_pad_to(self, len: usize) -> Self {
        let pad = len - self.len();
        if pad == 0 {
            return self;
        }
        let grow = |t: Tensor<4>| {
            let [b, h, _, d] = t.dims();
            let zeros = Tensor::<4>::zeros([b, h, pad, d], (&t.device(), t.dtype()));
            Tensor::cat(vec![zeros, t], 2)
        };
        KvCache {
            layers: self
                .layers
                .into_iter()
                .map(|l| {
                    l.map(|c| LayerCache {
                        keys: grow(c.keys),
                        values: grow(c.values),
                    })
                })
                .collect(),
            key_valid: self
                .key_valid
                .into_iter()
                .map(|row| {
                    let mut padded = vec![false; pad];
                    padded.extend(row);
                    padded
                })
                .collect(),
        }
    }
}
