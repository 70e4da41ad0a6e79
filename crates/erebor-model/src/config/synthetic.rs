//! Configs for models built without a checkpoint: benchmarks, tests and memory estimates.

use super::{Architecture, ModelConfig, RopeScaling};

/// The widths of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderDims {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads (`head_dim = hidden_size / num_heads`).
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
}

impl ModelConfig {
    /// A config of `architecture` with the widths `dims` and transformers' defaults elsewhere:
    /// `head_dim = hidden_size / num_heads`, 4096 positions, `RMSNorm` eps 1e-6, `RoPE` base 10000
    /// unscaled, q/k/v bias for Qwen2 only, no sliding window, no special token ids.
    pub fn synthetic(
        architecture: Architecture,
        dims: DecoderDims,
        tie_word_embeddings: bool,
    ) -> Self {
        ModelConfig {
            architecture,
            vocab_size: dims.vocab_size,
            hidden_size: dims.hidden_size,
            intermediate_size: dims.intermediate_size,
            num_layers: dims.num_layers,
            num_heads: dims.num_heads,
            num_kv_heads: dims.num_kv_heads,
            head_dim: dims.hidden_size / dims.num_heads,
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::None,
            tie_word_embeddings,
            qkv_bias: architecture == Architecture::Qwen2,
            o_bias: false,
            mlp_bias: false,
            sliding_window: None,
            sliding_window_layers: None,
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }

    /// The random models erebor's benchmarks build, by name, so that the model and training
    /// benchmarks measure the same shapes: `tiny10m` (a Llama of ~10.5M parameters) and
    /// `qwen2-0.5b` (Qwen2-0.5B's shape, 630M parameters with its 151,936-token vocabulary),
    /// both with tied embeddings.
    pub fn benchmark_shape(name: &str) -> Option<Self> {
        let (architecture, dims) = match name {
            "tiny10m" => (
                Architecture::Llama,
                DecoderDims {
                    vocab_size: 16_384,
                    hidden_size: 256,
                    intermediate_size: 768,
                    num_layers: 8,
                    num_heads: 8,
                    num_kv_heads: 4,
                },
            ),
            "qwen2-0.5b" => (
                Architecture::Qwen2,
                DecoderDims {
                    vocab_size: 151_936,
                    hidden_size: 896,
                    intermediate_size: 4864,
                    num_layers: 24,
                    num_heads: 14,
                    num_kv_heads: 2,
                },
            ),
            _ => return None,
        };
        Some(Self::synthetic(architecture, dims, true))
    }
}
