//! The [`ModelConfig`] a GGUF file's metadata implies: sizes, `RoPE` scaling (Llama 3's recovered
//! from llama.cpp's `rope_freqs.weight`), sliding window and biases.

use super::{GgufFile, MetaValue};
use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{ModelError, Result};

/// The tensor llama.cpp's converter writes for Llama 3's `RoPE` scaling.
pub(crate) const ROPE_FREQS: &str = "rope_freqs.weight";

impl GgufFile {
    /// The model config implied by the metadata (and the embedding's shape for the vocabulary).
    pub fn model_config(&self) -> Result<ModelConfig> {
        let arch_name = self.architecture_name().unwrap_or("").to_string();
        let architecture = match arch_name.as_str() {
            "llama" => Architecture::Llama,
            "mistral" => Architecture::Mistral,
            "qwen2" => Architecture::Qwen2,
            other => {
                return Err(ModelError::config(
                    &self.path,
                    "general.architecture",
                    format!("{other:?} is not supported (llama, mistral, qwen2)"),
                ));
            }
        };
        let a = &arch_name;
        let need = |key: String| {
            self.meta_usize(&key)
                .ok_or_else(|| ModelError::config(&self.path, key, "is required and missing"))
        };
        let hidden_size = need(format!("{a}.embedding_length"))?;
        let num_heads = need(format!("{a}.attention.head_count"))?;
        let num_kv_heads = self
            .meta_usize(&format!("{a}.attention.head_count_kv"))
            .unwrap_or(num_heads);
        let head_dim = self
            .meta_usize(&format!("{a}.attention.key_length"))
            .or(self.meta_usize(&format!("{a}.rope.dimension_count")))
            .unwrap_or(hidden_size / num_heads);
        let vocab_size = match self.tensors.get("token_embd.weight") {
            Some(info) if info.dims.len() == 2 => info.dims[1],
            _ => need(format!("{a}.vocab_size"))?,
        };
        let eos = self.meta_token_id("tokenizer.ggml.eos_token_id");
        let num_layers = need(format!("{a}.block_count"))?;
        let rope_theta = self
            .meta_f64(&format!("{a}.rope.freq_base"))
            .unwrap_or(10_000.0);
        let qkv_bias = self.tensors.contains_key("blk.0.attn_q.bias");
        let o_bias = self.tensors.contains_key("blk.0.attn_output.bias");
        let mlp_bias = self.tensors.contains_key("blk.0.ffn_up.bias");
        let window =
            self.sliding_window(a, architecture, num_layers, qkv_bias || o_bias || mlp_bias)?;
        let architecture = match (architecture, &window) {
            // transformers' MistralForCausalLM is Llama with a window on every layer.
            (Architecture::Llama, Some(_)) => Architecture::Mistral,
            (arch, _) => arch,
        };
        let (sliding_window, sliding_window_layers) = window.unzip();
        Ok(ModelConfig {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size: need(format!("{a}.feed_forward_length"))?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            max_position_embeddings: need(format!("{a}.context_length"))?,
            rms_norm_eps: self
                .meta_f64(&format!("{a}.attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-6),
            rope_theta,
            rope_scaling: if self.tensors.contains_key(ROPE_FREQS) {
                self.llama3_from_rope_freqs(a, head_dim, rope_theta)?
            } else {
                self.rope_scaling(a)?
            },
            tie_word_embeddings: !self.tensors.contains_key("output.weight"),
            qkv_bias,
            o_bias,
            mlp_bias,
            sliding_window,
            sliding_window_layers: sliding_window_layers.flatten(),
            bos_token_id: self.meta_token_id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: eos.into_iter().collect(),
        })
    }

    /// `RoPE` scaling from `{arch}.rope.scaling.*` as llama.cpp reads it: the type defaults to
    /// `linear`, the factor comes from `rope.scaling.factor` or the older `rope.scale_linear`,
    /// and a factor of 0 or 1 (or none) means no scaling. Types other than `none` and `linear`
    /// (`YaRN`, `LongRoPE`) are refused, naming the key.
    // llama.cpp takes exactly 0 and exactly 1 for no scaling.
    #[allow(clippy::float_cmp)]
    fn rope_scaling(&self, a: &str) -> Result<RopeScaling> {
        let type_key = format!("{a}.rope.scaling.type");
        let kind = match self.metadata.get(&type_key) {
            None => "linear",
            Some(v) => v.as_str().ok_or_else(|| {
                ModelError::config(&self.path, type_key.as_str(), "must be a string")
            })?,
        };
        let factor = self
            .meta_f64(&format!("{a}.rope.scaling.factor"))
            .or_else(|| self.meta_f64(&format!("{a}.rope.scale_linear")))
            .unwrap_or(0.0);
        match kind {
            "none" => Ok(RopeScaling::None),
            "linear" if factor == 0.0 || factor == 1.0 => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear { factor }),
            other => Err(ModelError::config(
                &self.path,
                type_key,
                format!("{other:?} is not supported from GGUF (none, linear)"),
            )),
        }
    }

    /// The sliding window (`{arch}.attention.sliding_window`) and, where only some layers use
    /// it, which ones (`{arch}.attention.sliding_window_pattern` as an array of booleans, true
    /// for a windowed layer). Llama and Mistral take a window on every layer; Qwen2 needs the
    /// per-layer pattern. Anything transformers could not express is refused, naming the key,
    /// as is a window on a Llama/Mistral with biases (`MistralForCausalLM` has none).
    fn sliding_window(
        &self,
        a: &str,
        architecture: Architecture,
        num_layers: usize,
        has_bias: bool,
    ) -> Result<Option<(usize, Option<Vec<bool>>)>> {
        let window_key = format!("{a}.attention.sliding_window");
        let pattern_key = format!("{a}.attention.sliding_window_pattern");
        let Some(value) = self.metadata.get(&window_key) else {
            return Ok(None);
        };
        let window = value
            .as_u64()
            .filter(|w| *w > 0)
            .and_then(|w| usize::try_from(w).ok())
            .ok_or_else(|| {
                ModelError::config(
                    &self.path,
                    window_key.as_str(),
                    "must be a positive integer",
                )
            })?;
        let pattern = match self.metadata.get(&pattern_key) {
            None => None,
            Some(MetaValue::Array(items)) if items.len() == num_layers => Some(
                items
                    .iter()
                    .map(|v| match v {
                        MetaValue::Bool(b) => Ok(*b),
                        _ => Err(ModelError::config(
                            &self.path,
                            pattern_key.as_str(),
                            "must hold booleans",
                        )),
                    })
                    .collect::<Result<Vec<bool>>>()?,
            ),
            Some(_) => {
                return Err(ModelError::config(
                    &self.path,
                    pattern_key,
                    format!("is supported only as one boolean per layer ({num_layers})"),
                ));
            }
        };
        match (architecture, pattern) {
            (Architecture::Qwen2, Some(layers)) => Ok(Some((window, Some(layers)))),
            (Architecture::Qwen2, None) => Err(ModelError::config(
                &self.path,
                window_key,
                format!(
                    "names no layers: Qwen2 needs `{pattern_key}` to say which layers use the window"
                ),
            )),
            (_, Some(layers)) if !layers.iter().all(|l| *l) => Err(ModelError::config(
                &self.path,
                pattern_key,
                "windows only some layers, which a Llama/Mistral config cannot express",
            )),
            (_, _) if has_bias => Err(ModelError::config(
                &self.path,
                window_key,
                "a sliding window on a model with attention or MLP biases has no Hugging Face form",
            )),
            _ => Ok(Some((window, None))),
        }
    }

    /// Llama 3 `RoPE` scaling from llama.cpp's `rope_freqs.weight`: its converter writes, per
    /// frequency, the divisor transformers' `rope_type: llama3` applies (1 above the high band
    /// edge, `factor` below the low one, smoothed between) instead of the parameters. They are
    /// recovered with `low_freq_factor` 1 and `high_freq_factor` 4 (the converter's defaults and
    /// every Llama 3.x release's): `factor` is the largest divisor, and the original context
    /// length follows from a smoothed frequency (or `{arch}.rope.scaling.original_context_length`,
    /// or 8192, when none is smoothed). The recovered parameters must reproduce every divisor
    /// (within 1e-4), or the file is refused, naming the tensor.
    fn llama3_from_rope_freqs(&self, a: &str, head_dim: usize, theta: f64) -> Result<RopeScaling> {
        let refuse = |why: String| {
            ModelError::weights(
                &self.path,
                format!(
                    "`{ROPE_FREQS}` (llama.cpp's per-frequency form of `rope_type: llama3`): {why}; load the Hugging Face checkpoint instead"
                ),
            )
        };
        if self.rope_scaling(a).ok() != Some(RopeScaling::None) {
            return Err(refuse(format!("the file also sets `{a}.rope.scaling.*`")));
        }
        let (divisors, _) = self.dequantized(ROPE_FREQS)?;
        if divisors.len() != head_dim / 2 {
            return Err(refuse(format!(
                "{} values for {} frequencies",
                divisors.len(),
                head_dim / 2
            )));
        }
        let divisors: Vec<f64> = divisors.into_iter().map(f64::from).collect();
        // Exactly 1 for every frequency: the converter wrote no scaling.
        #[allow(clippy::float_cmp)]
        let unscaled = divisors.iter().all(|d| *d == 1.0);
        if unscaled {
            return Ok(RopeScaling::None);
        }
        let factor = divisors.iter().fold(1.0f64, |m, d| m.max(*d));
        let (low, high) = (1.0, 4.0);
        // Wavelengths of the unscaled frequencies, computed in f32 as the converter does (theta
        // rounded to f32 on purpose).
        #[allow(clippy::cast_possible_truncation)]
        let theta_f32 = theta as f32;
        let wavelengths: Vec<f64> = (0..head_dim / 2)
            .map(|i| {
                let inv = 1.0 / theta_f32.powf((2 * i) as f32 / head_dim as f32);
                f64::from(2.0 * std::f32::consts::PI / inv)
            })
            .collect();
        let original = match divisors.iter().position(|d| *d > 1.0 && *d < factor) {
            Some(i) => {
                let smooth = (1.0 / divisors[i] - 1.0 / factor) / (1.0 - 1.0 / factor);
                (wavelengths[i] * (low + smooth * (high - low))).round()
            }
            None => self
                .meta_f64(&format!("{a}.rope.scaling.original_context_length"))
                .unwrap_or(8192.0),
        };
        for (i, (&wavelength, &got)) in wavelengths.iter().zip(&divisors).enumerate() {
            let want = if wavelength < original / high {
                1.0
            } else if wavelength > original / low {
                factor
            } else {
                let smooth = (original / wavelength - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            if (got - want).abs() > 1e-4 * want {
                return Err(refuse(format!(
                    "divisor {i} is {got}, where llama3 scaling with factor {factor}, low_freq_factor 1, high_freq_factor 4 and original context {original} gives {want}"
                )));
            }
        }
        // A context length: a whole, positive number of positions (rounded above, or read).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let original_max_position_embeddings = original as usize;
        Ok(RopeScaling::Llama3 {
            factor,
            low_freq_factor: low,
            high_freq_factor: high,
            original_max_position_embeddings,
        })
    }
}
