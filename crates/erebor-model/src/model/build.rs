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
pub(crate) fn hf_tensor_names(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
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

    /// Decoder layer `layer` (`model.layers.{layer}.*`).
    fn decoder_layer(&mut self, config: &ModelConfig, layer: usize) -> Result<DecoderLayer> {
        let (h, q, kv, i) = (
            config.hidden_size,
            config.num_heads * config.head_dim,
            config.num_kv_heads * config.head_dim,
            config.intermediate_size,
        );
        let p = format!("model.layers.{layer}");
        let input_layernorm = self.norm(
            &format!("{p}.input_layernorm.weight"),
            h,
            config.rms_norm_eps,
        )?;
        let self_attn = Attention {
            q_proj: self.linear(&format!("{p}.self_attn.q_proj"), q, h, config.qkv_bias)?,
            k_proj: self.linear(&format!("{p}.self_attn.k_proj"), kv, h, config.qkv_bias)?,
            v_proj: self.linear(&format!("{p}.self_attn.v_proj"), kv, h, config.qkv_bias)?,
            o_proj: self.linear(&format!("{p}.self_attn.o_proj"), h, q, config.o_bias)?,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            window: config.window_of_layer(layer).unwrap_or(0),
        };
        let post_attention_layernorm = self.norm(
            &format!("{p}.post_attention_layernorm.weight"),
            h,
            config.rms_norm_eps,
        )?;
        let mlp = Mlp {
            gate_proj: self.linear(&format!("{p}.mlp.gate_proj"), i, h, config.mlp_bias)?,
            up_proj: self.linear(&format!("{p}.mlp.up_proj"), i, h, config.mlp_bias)?,
            down_proj: self.linear(&format!("{p}.mlp.down_proj"), h, i, config.mlp_bias)?,
        };
        Ok(DecoderLayer {
            input_layernorm,
            self_attn,
            post_attention_layernorm,
            mlp,
        })
    }
}

impl CausalLm {
    /// Builds the model from named tensors, converting them to `dtype` on `device`. Every
    /// tensor the config implies must be present with its shape, and no other may be.
    pub(crate) fn from_source(
        config: &ModelConfig,
        src: &mut dyn WeightSource,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let h = config.hidden_size;
        let mut builder = Builder { src, device, dtype };
        let embed = builder.tensor("model.embed_tokens.weight", [config.vocab_size, h])?;
        let layers = (0..config.num_layers)
            .map(|layer| builder.decoder_layer(config, layer))
            .collect::<Result<Vec<_>>>()?;
        let norm = builder.norm("model.norm.weight", h, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(builder.linear("lm_head", config.vocab_size, h, false)?)
        };
        if config.tie_word_embeddings && builder.src.contains("lm_head.weight") {
            // Some tied checkpoints store the head anyway; transformers ignores it.
            builder
                .src
                .take("lm_head.weight", &[config.vocab_size, h])?;
        }
        let mut unexpected: Vec<String> = src_remaining(builder.src)
            .into_iter()
            .filter(|n| !n.ends_with("rotary_emb.inv_freq"))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            unexpected.truncate(10);
            return Err(ModelError::UnexpectedTensors {
                path: builder.src.origin().to_path_buf(),
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
    /// linear and embedding weights, zero biases, unit norms), from a seeded `ChaCha` generator,
    /// so the same seed gives the same weights on every device.
    ///
    /// # Panics
    /// Never in practice: the random source holds exactly the config's names and shapes.
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
