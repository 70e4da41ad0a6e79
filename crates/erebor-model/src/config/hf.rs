//! A serde mirror of the Hugging Face `config.json` fields that Llama, Mistral and Qwen2 use.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `config.json` as transformers writes it for `LlamaForCausalLM`, `MistralForCausalLM` and
/// `Qwen2ForCausalLM`. Unknown fields are ignored here and kept in the raw JSON for saving.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HfConfig {
    /// e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// `llama`, `mistral` or `qwen2`.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Model width.
    pub hidden_size: Option<usize>,
    /// MLP width.
    pub intermediate_size: Option<usize>,
    /// Number of decoder layers.
    pub num_hidden_layers: Option<usize>,
    /// Query heads.
    pub num_attention_heads: Option<usize>,
    /// Key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: Option<usize>,
    /// Context window.
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
    /// `RMSNorm` epsilon.
    #[serde(default)]
    pub rms_norm_eps: Option<f64>,
    /// `RoPE` base (older spelling).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// `RoPE` scaling (older spelling).
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// `RoPE` settings as transformers 5 writes them (theta and scaling together).
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Whether `lm_head` shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Llama: bias on q/k/v/o projections.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    /// Llama: bias on the MLP projections.
    #[serde(default)]
    pub mlp_bias: Option<bool>,
    /// Activation; only `silu` is supported.
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// Mistral / Qwen2 sliding-window attention width.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Qwen2: whether the sliding window is used at all.
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
    /// Qwen2: without `layer_types`, layers at and above this index use the sliding window when
    /// enabled (transformers' default: 28).
    #[serde(default)]
    pub max_window_layers: Option<usize>,
    /// transformers 5: each layer's attention, `full_attention` or `sliding_attention`.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// BOS id.
    #[serde(default)]
    pub bos_token_id: Option<Value>,
    /// EOS id or ids.
    #[serde(default)]
    pub eos_token_id: Option<Value>,
    /// Pad id.
    #[serde(default)]
    pub pad_token_id: Option<Value>,
    /// Weight dtype (transformers 4 spelling).
    #[serde(default)]
    pub torch_dtype: Option<String>,
    /// Weight dtype (transformers 5 spelling).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Tensor-parallel slicing used in pretraining; must be 1.
    #[serde(default)]
    pub pretraining_tp: Option<usize>,
}

/// `rope_scaling` / `rope_parameters`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct RopeParameters {
    /// `RoPE` base (in `rope_parameters`).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// `default`, `linear` or `llama3`.
    #[serde(default)]
    pub rope_type: Option<String>,
    /// The old spelling of `rope_type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub legacy_type: Option<String>,
    /// Scaling factor.
    #[serde(default)]
    pub factor: Option<f64>,
    /// llama3: low-frequency factor.
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    /// llama3: high-frequency factor.
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    /// llama3: the pretraining context length.
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
}
