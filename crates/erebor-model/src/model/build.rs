//! Building a [`CausalLm`] from named Hugging Face tensors (safetensors, GGUF, random init), and
//! the list of tensor names and shapes a config implies.

use std::path::Path;

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::attention::Attention;
use super::layers::{Linear, Mlp, RmsNorm};
use super::rope::Rope;
use super::{CausalLm, DecoderLayer};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// A provider of named tensors in Hugging Face layout (`[out, in]` for linear weights).
pub trait WeightSource {
    /// The tensor `name`, which must have shape `shape`; a missing tensor or another shape is an
    /// error naming it. Each tensor is taken once.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<TensorData>;
    /// Whether the source has a tensor of that name.
    fn contains(&self, name: &str) -> bool;
    /// Names that were never taken (reported as unexpected after the model is built).
    fn remaining(&self) -> Vec<String>;
    /// The file or folder the tensors come from, for error messages.
    fn origin(&self) -> &Path;
}

/// Every tensor of the HF checkpoint a config implies, with its HF shape, in a stable order.
pub fn hf_tensor_names(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let q = config.num_heads * config.head_dim;
    let kv = config.num_kv_heads * config.head_dim;
    let i = config.intermediate_size;
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![config.vocab_size, h],
    )];
    for l in 0..config.num_layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), vec![h]));
        for (name, rows) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
            out.push((format!("{p}.self_attn.{name}.weight"), vec![rows, h]));
            if config.qkv_bias {
                out.push((format!("{p}.self_attn.{name}.bias"), vec![rows]));
            }
        }
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
        if config.o_bias {
            out.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
        }
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        for (name, shape) in [
            ("gate_proj", [i, h]),
            ("up_proj", [i, h]),
            ("down_proj", [h, i]),
        ] {
            out.push((format!("{p}.mlp.{name}.weight"), shape.to_vec()));
            if config.mlp_bias {
                out.push((format!("{p}.mlp.{name}.bias"), vec![shape[0]]));
            }
        }
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !config.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![config.vocab_size, h]));
    }
    out
}

struct Builder<'a> {
    src: &'a mut dyn WeightSource,
    device: &'a Device,
    dtype: DType,
}

impl Builder<'_> {
    fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let data = self.src.take(name, &shape)?;
        if data.shape().as_slice() != shape.as_slice() {
            return Err(ModelError::ShapeMismatch {
                path: self.src.origin().to_path_buf(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: data.shape().as_slice().to_vec(),
            });
        }
        Ok(Tensor::from_data(data, (self.device, self.dtype)))
    }

    /// A linear layer from HF `[out, in]` weight (+ bias when `bias`).
    fn linear(&mut self, prefix: &str, d_out: usize, d_in: usize, bias: bool) -> Result<Linear> {
        let w = self.tensor(&format!("{prefix}.weight"), [d_out, d_in])?;
        let b = if bias {
            Some(self.tensor(&format!("{prefix}.bias"), [d_out])?)
        } else {
            None
        };
        Ok(Linear::new(w.transpose(), b))
    }

    fn norm(&mut self, name: &str, h: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm::new(self.tensor(name, [h])?, eps))
    }
}

impl CausalLm {
    /// Builds the model from named tensors, converting them to `dtype` on `device`. Every
    /// tensor the config implies must be present with its shape, and no other may be.
    pub fn from_source(
        config: &ModelConfig,
        src: &mut dyn WeightSource,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let c = config;
        let (h, q, kv, i) = (
            c.hidden_size,
            c.num_heads * c.head_dim,
            c.num_kv_heads * c.head_dim,
            c.intermediate_size,
        );
        let mut b = Builder { src, device, dtype };
        let embed = b.tensor("model.embed_tokens.weight", [c.vocab_size, h])?;
        let mut layers = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let p = format!("model.layers.{l}");
            let input_layernorm =
                b.norm(&format!("{p}.input_layernorm.weight"), h, c.rms_norm_eps)?;
            let self_attn = Attention {
                q_proj: b.linear(&format!("{p}.self_attn.q_proj"), q, h, c.qkv_bias)?,
                k_proj: b.linear(&format!("{p}.self_attn.k_proj"), kv, h, c.qkv_bias)?,
                v_proj: b.linear(&format!("{p}.self_attn.v_proj"), kv, h, c.qkv_bias)?,
                o_proj: b.linear(&format!("{p}.self_attn.o_proj"), h, q, c.o_bias)?,
                num_heads: c.num_heads,
                num_kv_heads: c.num_kv_heads,
                head_dim: c.head_dim,
                window: c.window_of_layer(l).unwrap_or(0),
            };
            let post_attention_layernorm = b.norm(
                &format!("{p}.post_attention_layernorm.weight"),
                h,
                c.rms_norm_eps,
            )?;
            let mlp = Mlp {
                gate_proj: b.linear(&format!("{p}.mlp.gate_proj"), i, h, c.mlp_bias)?,
                up_proj: b.linear(&format!("{p}.mlp.up_proj"), i, h, c.mlp_bias)?,
                down_proj: b.linear(&format!("{p}.mlp.down_proj"), h, i, c.mlp_bias)?,
            };
            layers.push(DecoderLayer {
                input_layernorm,
                self_attn,
                post_attention_layernorm,
                mlp,
            });
        }
        let norm = b.norm("model.norm.weight", h, c.rms_norm_eps)?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(b.linear("lm_head", c.vocab_size, h, false)?)
        };
        if c.tie_word_embeddings && b.src.contains("lm_head.weight") {
            // Some tied checkpoints store the head anyway; transformers ignores it.
            b.src.take("lm_head.weight", &[c.vocab_size, h])?;
        }
        let mut unexpected: Vec<String> = src_remaining(b.src)
            .into_iter()
            .filter(|n| !n.ends_with("rotary_emb.inv_freq"))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            unexpected.truncate(10);
            return Err(ModelError::UnexpectedTensors {
                path: b.src.origin().to_path_buf(),
                names: unexpected,
            });
        }
        Ok(CausalLm {
            embed_tokens: Param::from_tensor(embed),
            layers,
            norm,
            lm_head,
            config: config.clone(),
            rope: Rope::new(config),
        })
    }

    /// A freshly initialised model as transformers initialises one (`normal(0, std)` for
    /// linear and embedding weights, zero biases, unit norms), from a seeded ChaCha generator,
    /// so the same seed gives the same weights on every device.
    pub fn random(
        config: &ModelConfig,
        seed: u64,
        init_std: f64,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let mut src = super::super::weights::RandomSource::new(config, seed, init_std);
        Self::from_source(config, &mut src, device, dtype)
            .expect("random weights have exactly the config's names and shapes")
    }
}

fn src_remaining(src: &dyn WeightSource) -> Vec<String> {
    src.remaining()
}
