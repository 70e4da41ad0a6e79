//! [`ModelConfig`], what the Burn model is built from, and the sizes it implies.

use serde::{Deserialize, Serialize};

use super::Architecture;

/// How `RoPE` frequencies are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Plain `RoPE`.
    None,
    /// Positions divided by `factor`.
    Linear {
        /// Scaling factor.
        factor: f64,
    },
    /// Llama 3.1 frequency-dependent scaling.
    Llama3 {
        /// Scaling factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context length of pretraining.
        original_max_position_embeddings: usize,
    },
}

/// Everything needed to build the model.
// The bias and tying flags are the independent switches of the Hugging Face config.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture family.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Context window.
    pub max_position_embeddings: usize,
    /// `RMSNorm` epsilon.
    pub rms_norm_eps: f64,
    /// `RoPE` base.
    pub rope_theta: f64,
    /// `RoPE` scaling.
    pub rope_scaling: RopeScaling,
    /// `lm_head` shares the embedding.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v.
    pub qkv_bias: bool,
    /// Bias on `o_proj`.
    pub o_bias: bool,
    /// Bias on gate/up/down.
    pub mlp_bias: bool,
    /// Sliding-window width, for the layers `sliding_window_layers` selects.
    pub sliding_window: Option<usize>,
    /// Which layers use the sliding window, one flag per layer; `None`: every layer (Mistral).
    pub sliding_window_layers: Option<Vec<bool>>,
    /// BOS id from config.json.
    pub bos_token_id: Option<u32>,
    /// EOS ids from config.json.
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// The sliding window of layer `layer`, if it has one.
    pub fn window_of_layer(&self, layer: usize) -> Option<usize> {
        let uses_window = match &self.sliding_window_layers {
            None => true,
            Some(layers) => layers.get(layer).copied().unwrap_or(false),
        };
        self.sliding_window.filter(|_| uses_window)
    }

    /// Parameter count implied by the config.
    pub fn num_parameters(&self) -> usize {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let attn = h * q
            + 2 * h * kv
            + q * h
            + if self.qkv_bias { q + 2 * kv } else { 0 }
            + if self.o_bias { h } else { 0 };
        let mlp = 3 * h * self.intermediate_size
            + if self.mlp_bias {
                2 * self.intermediate_size + h
            } else {
                0
            };
        let layer = attn + mlp + 2 * h;
        let embed = self.vocab_size * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + self.num_layers * layer + h
    }

    /// The linear layers by Hugging Face module path with their `(in, out)` widths, in the
    /// order [`crate::CausalLm::linear_layers`] lists them (`lm_head` only when untied).
    pub fn linear_shapes(&self) -> Vec<(String, usize, usize)> {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let i = self.intermediate_size;
        let mut out = Vec::with_capacity(7 * self.num_layers + 1);
        for layer in 0..self.num_layers {
            let p = format!("model.layers.{layer}");
            for (name, d_in, d_out) in [
                ("self_attn.q_proj", h, q),
                ("self_attn.k_proj", h, kv),
                ("self_attn.v_proj", h, kv),
                ("self_attn.o_proj", q, h),
                ("mlp.gate_proj", h, i),
                ("mlp.up_proj", h, i),
                ("mlp.down_proj", i, h),
            ] {
                out.push((format!("{p}.{name}"), d_in, d_out));
            }
        }
        if !self.tie_word_embeddings {
            out.push(("lm_head".to_string(), h, self.vocab_size));
        }
        out
    }
}
