//! Model configuration: [`ModelConfig`] (what the Burn model is built from), read from a Hugging
//! Face `config.json` ([`HfConfig`]) in either RoPE spelling, and written back in HF form;
//! [`ModelConfig::synthetic`] for models built without a checkpoint.

mod hf;
mod synthetic;
mod write;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use hf::{HfConfig, RopeParameters};
pub use synthetic::DecoderDims;

use crate::error::{ModelError, Result, read_json};

/// The supported decoder architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// LlamaForCausalLM (Llama 1/2/3, SmolLM, TinyLlama...).
    Llama,
    /// MistralForCausalLM.
    Mistral,
    /// Qwen2ForCausalLM (q/k/v bias).
    Qwen2,
}

impl Architecture {
    /// The `architectures[0]` class name transformers uses.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// The `model_type` transformers uses.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
        }
    }

    fn from_names(class: Option<&str>, model_type: Option<&str>) -> Option<Self> {
        let by_class = class.and_then(|c| match c {
            "LlamaForCausalLM" => Some(Architecture::Llama),
            "MistralForCausalLM" => Some(Architecture::Mistral),
            "Qwen2ForCausalLM" => Some(Architecture::Qwen2),
            _ => None,
        });
        by_class.or_else(|| match model_type? {
            "llama" => Some(Architecture::Llama),
            "mistral" => Some(Architecture::Mistral),
            "qwen2" => Some(Architecture::Qwen2),
            _ => None,
        })
    }
}

/// How RoPE frequencies are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Plain RoPE.
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
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// lm_head shares the embedding.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v.
    pub qkv_bias: bool,
    /// Bias on o_proj.
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

fn need<T>(path: &Path, field: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| ModelError::config(path, field, "is required and missing"))
}

fn ids(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Reads `config.json` from a checkpoint folder.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join("config.json");
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path,
                what: "the Hugging Face model config".into(),
            });
        }
        let hf: HfConfig = read_json(&path)?;
        Self::from_hf(&hf, &path)
    }

    /// Converts the HF config; `path` is named in errors.
    pub fn from_hf(hf: &HfConfig, path: &Path) -> Result<Self> {
        let class = hf
            .architectures
            .as_ref()
            .and_then(|a| a.first())
            .map(String::as_str);
        let architecture = Architecture::from_names(class, hf.model_type.as_deref()).ok_or_else(|| {
            ModelError::config(
                path,
                "architectures",
                format!(
                    "unsupported architecture {:?} (model_type {:?}); supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM",
                    class, hf.model_type
                ),
            )
        })?;
        let hidden_size = need(path, "hidden_size", hf.hidden_size)?;
        let num_heads = need(path, "num_attention_heads", hf.num_attention_heads)?;
        let num_kv_heads = hf.num_key_value_heads.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ModelError::config(
                path,
                "num_key_value_heads",
                format!("{num_kv_heads} must divide num_attention_heads ({num_heads})"),
            ));
        }
        let head_dim = hf.head_dim.unwrap_or(hidden_size / num_heads);
        if !head_dim.is_multiple_of(2) {
            return Err(ModelError::config(
                path,
                "head_dim",
                format!("{head_dim} must be even for RoPE"),
            ));
        }
        if let Some(act) = &hf.hidden_act
            && act != "silu"
        {
            return Err(ModelError::config(
                path,
                "hidden_act",
                format!("{act:?} is not supported (only silu)"),
            ));
        }
        if let Some(tp) = hf.pretraining_tp
            && tp != 1
        {
            return Err(ModelError::config(
                path,
                "pretraining_tp",
                format!("{tp} is not supported (only 1)"),
            ));
        }
        let params = hf.rope_parameters.clone().unwrap_or_default();
        let scaling_src = hf
            .rope_scaling
            .clone()
            .or(hf.rope_parameters.clone())
            .unwrap_or_default();
        let rope_theta = params.rope_theta.or(hf.rope_theta).unwrap_or(10_000.0);
        let rope_scaling = rope_scaling_from(&scaling_src, path)?;
        let attention_bias = hf.attention_bias.unwrap_or(false);
        let (qkv_bias, o_bias) = match architecture {
            Architecture::Qwen2 => (true, false),
            _ => (attention_bias, attention_bias),
        };
        let num_layers = need(path, "num_hidden_layers", hf.num_hidden_layers)?;
        let (sliding_window, sliding_window_layers) = match architecture {
            Architecture::Mistral => (hf.sliding_window, None),
            Architecture::Qwen2 => qwen2_sliding_window(hf, num_layers, path)?,
            Architecture::Llama => (None, None),
        };
        Ok(ModelConfig {
            architecture,
            vocab_size: need(path, "vocab_size", hf.vocab_size)?,
            hidden_size,
            intermediate_size: need(path, "intermediate_size", hf.intermediate_size)?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            max_position_embeddings: hf.max_position_embeddings.unwrap_or(2048),
            rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias: hf.mlp_bias.unwrap_or(false),
            sliding_window,
            sliding_window_layers,
            bos_token_id: ids(&hf.bos_token_id).first().copied(),
            eos_token_ids: ids(&hf.eos_token_id),
        })
    }

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
/// transformers' defaults of `Qwen2Config`: `max_window_layers` and `sliding_window`.
const QWEN2_MAX_WINDOW_LAYERS: usize = 28;
const QWEN2_SLIDING_WINDOW: usize = 4096;

/// Qwen2's sliding window and its layers, decided as transformers' `Qwen2Config` does: no window
/// unless `use_sliding_window`; then a window of `sliding_window` (4096 when absent) on the layers
/// `layer_types` marks `sliding_attention` or, without `layer_types`, on the layers at or above
/// `max_window_layers` (28 when absent).
fn qwen2_sliding_window(
    hf: &HfConfig,
    num_layers: usize,
    path: &Path,
) -> Result<(Option<usize>, Option<Vec<bool>>)> {
    let layers = match &hf.layer_types {
        Some(types) => {
            if types.len() != num_layers {
                return Err(ModelError::config(
                    path,
                    "layer_types",
                    format!(
                        "has {} entries for {num_layers} layers (num_hidden_layers)",
                        types.len()
                    ),
                ));
            }
            types
                .iter()
                .enumerate()
                .map(|(i, kind)| match kind.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => Err(ModelError::config(
                        path,
                        format!("layer_types[{i}]"),
                        format!("{other:?} is not supported (full_attention, sliding_attention)"),
                    )),
                })
                .collect::<Result<Vec<bool>>>()?
        }
        None => {
            let from = hf.max_window_layers.unwrap_or(QWEN2_MAX_WINDOW_LAYERS);
            (0..num_layers).map(|i| i >= from).collect()
        }
    };
    if hf.use_sliding_window != Some(true) {
        return Ok((None, None));
    }
    let window = hf.sliding_window.unwrap_or(QWEN2_SLIDING_WINDOW);
    Ok((Some(window), Some(layers)))
}

fn rope_scaling_from(p: &RopeParameters, path: &Path) -> Result<RopeScaling> {
    let kind = p
        .rope_type
        .as_deref()
        .or(p.legacy_type.as_deref())
        .unwrap_or("default");
    let factor = |field: &str, v: Option<f64>| {
        v.ok_or_else(|| {
            ModelError::config(
                path,
                format!("rope_scaling.{field}"),
                "is required for this rope_type",
            )
        })
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: factor("factor", p.factor)?,
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: factor("factor", p.factor)?,
            low_freq_factor: factor("low_freq_factor", p.low_freq_factor)?,
            high_freq_factor: factor("high_freq_factor", p.high_freq_factor)?,
            original_max_position_embeddings: p.original_max_position_embeddings.ok_or_else(
                || {
                    ModelError::config(
                        path,
                        "rope_scaling.original_max_position_embeddings",
                        "is required for llama3",
                    )
                },
            )?,
        }),
        other => Err(ModelError::config(
            path,
            "rope_scaling.rope_type",
            format!("{other:?} is not supported (default, linear, llama3)"),
        )),
    }
}
