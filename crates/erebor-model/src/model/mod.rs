//! The decoder-only transformer shared by Llama, Mistral and Qwen2, as a Burn [`Module`].
//!
//! Forward entry points (all return logits `[batch, seq, vocab]` in the compute dtype):
//! - [`CausalLm::forward`]: token ids `[batch, seq]`, causal attention, positions `0..seq`. Right
//!   padding is harmless (real tokens never attend to later positions), so training batches
//!   padded on the right can use it directly. Works on autodiff devices.
//! - [`CausalLm::forward_batch`]: a [`TokenBatch`] with per-row padding masks and positions
//!   (left padding for generation), optionally extending a [`KvCache`].

mod attention;
mod build;
mod export;
mod layers;
mod rope;

use burn::module::{Module, Param};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

pub use attention::Attention;
use attention::{AttentionLayout, LayerCache};
pub use build::WeightSource;
pub(crate) use build::hf_tensor_names;
pub use layers::{Linear, LoraAdapter, Mlp, RmsNorm};
use rope::Rope;

use crate::config::ModelConfig;

/// One decoder layer: pre-norm attention and pre-norm MLP, both residual.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// `input_layernorm`.
    pub input_layernorm: RmsNorm,
    /// `self_attn`.
    pub self_attn: Attention,
    /// `post_attention_layernorm`.
    pub post_attention_layernorm: RmsNorm,
    /// `mlp`.
    pub mlp: Mlp,
}

impl DecoderLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        layout: &AttentionLayout,
        cache: Option<&mut Option<LayerCache>>,
    ) -> Tensor<3> {
        let h =
            self.self_attn
                .forward(self.input_layernorm.forward(x.clone()), rope, layout, cache);
        let x = x + h;
        let h = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + h
    }
}

/// The causal language model: embeddings, decoder layers, final norm, LM head.
#[derive(Module, Debug)]
pub struct CausalLm {
    /// `model.embed_tokens.weight`, `[vocab, hidden]`.
    pub embed_tokens: Param<Tensor<2>>,
    /// `model.layers`.
    pub layers: Vec<DecoderLayer>,
    /// `model.norm`.
    pub norm: RmsNorm,
    /// `lm_head` (`None` when tied to the embeddings).
    pub lm_head: Option<Linear>,
    /// The configuration the model was built from.
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    rope: Rope,
}

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

/// Keys and values of every layer for the tokens seen so far, plus their padding masks.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    key_valid: Vec<Vec<bool>>,
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

impl CausalLm {
    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the parameters are on.
    pub fn device(&self) -> Device {
        self.embed_tokens.val().device()
    }

    /// Logits `[batch, seq, vocab]` for ids `[batch, seq]`, causal, positions `0..seq`.
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        self.lm_head_forward(self.causal_hidden(input_ids))
    }

    /// Final hidden states `[batch, seq, hidden]` of [`Self::forward`], before the LM head.
    pub fn causal_hidden(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let layout = AttentionLayout {
            key_valid: vec![vec![true; seq]; batch],
            past_len: 0,
            new_len: seq,
            key_segments: None,
        };
        let positions = vec![(0..seq).collect(); batch];
        self.hidden_states(input_ids, &positions, &layout, None)
    }

    /// Final hidden states `[batch, seq, hidden]` for rows packing several examples, before the
    /// LM head: `positions` restart at 0 for each example and `segments` (one id per token) keep
    /// attention within each example (block-diagonal causal mask), as SFT packing needs.
    pub fn packed_hidden(
        &self,
        input_ids: Tensor<2, Int>,
        positions: &[Vec<usize>],
        segments: Vec<Vec<u32>>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let layout = AttentionLayout {
            key_valid: vec![vec![true; seq]; batch],
            past_len: 0,
            new_len: seq,
            key_segments: Some(segments),
        };
        self.hidden_states(input_ids, positions, &layout, None)
    }

    /// Logits for a padded batch; with `cache`, the batch continues the cached sequences
    /// (the cache must have the same batch size) and the cache is extended.
    pub fn forward_batch(&self, batch: &TokenBatch, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.lm_head_forward(self.forward_hidden(batch, cache))
    }

    /// Final hidden states `[batch, seq, hidden]` for a padded batch (see [`Self::forward_batch`]).
    ///
    /// # Panics
    /// When `cache` holds a different number of sequences than `batch`.
    pub fn forward_hidden(&self, batch: &TokenBatch, cache: Option<&mut KvCache>) -> Tensor<3> {
        let device = self.device();
        let ids = batch.ids_tensor(&device);
        match cache {
            None => {
                let layout = AttentionLayout {
                    key_valid: batch.valid.clone(),
                    past_len: 0,
                    new_len: batch.seq_len(),
                    key_segments: None,
                };
                self.hidden_states(ids, &batch.positions, &layout, None)
            }
            Some(cache) => {
                if cache.layers.is_empty() {
                    cache.layers = vec![None; self.layers.len()];
                    cache.key_valid = vec![Vec::new(); batch.batch_size()];
                }
                assert_eq!(
                    cache.batch_size(),
                    batch.batch_size(),
                    "cache batch size differs from the batch"
                );
                for (row, valid) in cache.key_valid.iter_mut().zip(&batch.valid) {
                    row.extend_from_slice(valid);
                }
                let layout = AttentionLayout {
                    key_valid: cache.key_valid.clone(),
                    past_len: cache.len() - batch.seq_len(),
                    new_len: batch.seq_len(),
                    key_segments: None,
                };
                self.hidden_states(ids, &batch.positions, &layout, Some(&mut cache.layers))
            }
        }
    }

    /// Final hidden states `[batch, seq, hidden]` (after the last norm).
    pub(crate) fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        positions: &[Vec<usize>],
        layout: &AttentionLayout,
        mut cache: Option<&mut Vec<Option<LayerCache>>>,
    ) -> Tensor<3> {
        let mut x = embedding(self.embed_tokens.val(), input_ids);
        let rope = self.rope.tables(positions, x.dtype(), &x.device());
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c[i]);
            x = layer.forward(x, &rope, layout, slot);
        }
        self.norm.forward(x)
    }

    /// The LM head as one `[hidden, vocab]` matrix (the tied embedding transposed), so that the
    /// logits are `hidden · W`; `None` when the head is more than a matrix (a bias or a LoRA
    /// adapter), where only [`Self::lm_head_forward`] computes it.
    pub fn lm_head_matrix(&self) -> Option<Tensor<2>> {
        match &self.lm_head {
            Some(head) if head.bias.is_none() && head.lora.is_none() => Some(head.weight.val()),
            Some(_) => None,
            None => Some(self.embed_tokens.val().transpose()),
        }
    }

    /// Applies the LM head (or the tied embedding) to hidden states.
    pub fn lm_head_forward(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => burn::tensor::module::linear(hidden, self.embed_tokens.val().transpose(), None),
        }
    }
}
