//! [`CausalLm`]: embeddings, decoder layers, final norm and LM head, and its forward passes.

use burn::module::{Module, Param};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor};

use super::attention::{Attention, AttentionLayout, LayerCache};
use super::layers::{Linear, Mlp, RmsNorm};
use super::rope::Rope;
use super::{KvCache, TokenBatch};
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
    pub(super) rope: Rope,
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
