//! [`ModelConfig`] from a Hugging Face `config.json`: required fields, GQA and `RoPE` checks,
//! both `RoPE` spellings, and Qwen2's sliding-window layers as transformers decides them.

use std::path::Path;

use serde_json::Value;

use super::{Architecture, HfConfig, ModelConfig, RopeParameters, RopeScaling};
use crate::error::{ModelError, Result, read_json};

fn need<T>(path: &Path, field: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| ModelError::config(path, field, "is required and missing"))
}

/// A token id: a JSON integer that fits in `u32`.
fn id(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// The token ids of a field that holds one id or a list of them.
fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(id).collect(),
        Some(v) => id(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The attention heads and their width: `num_key_value_heads` must divide
/// `num_attention_heads`, and the head width must be even for `RoPE`.
fn heads(hf: &HfConfig, hidden_size: usize, path: &Path) -> Result<(usize, usize, usize)> {
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
    Ok((num_heads, num_kv_heads, head_dim))
}

/// Refuses what the model does not implement: an activation other than `silu` and a
/// tensor-parallel split of the pretraining.
fn check_supported(hf: &HfConfig, path: &Path) -> Result<()> {
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
    Ok(())
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
        let (num_heads, num_kv_heads, head_dim) = heads(hf, hidden_size, path)?;
        check_supported(hf, path)?;
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
            bos_token_id: ids(hf.bos_token_id.as_ref()).first().copied(),
            eos_token_ids: ids(hf.eos_token_id.as_ref()),
        })
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
