//! A [`WeightSource`] answering Hugging Face tensor names from a GGUF file.

use std::collections::HashSet;
use std::path::Path;

use burn::tensor::TensorData;

use super::GgufFile;
use crate::config::{Architecture, ModelConfig};
use crate::error::{ModelError, Result};
use crate::model::WeightSource;

/// Maps a Hugging Face tensor name to its GGUF name.
fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let mapped = match tail {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "self_attn.o_proj.bias" => "attn_output.bias",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{mapped}"))
}

/// Undoes llama.cpp's `permute(w, n_head)`: GGUF rows are `(head, half, pair)` where HF has
/// `(head, pair, half)`.
fn unpermute_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let per_head = rows / n_head;
    let half = per_head / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for pair in 0..2 {
                let src = h * per_head + i * 2 + pair;
                let dst = h * per_head + pair * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// A [`WeightSource`] over a GGUF file, answering Hugging Face names.
pub(crate) struct GgufSource {
    file: GgufFile,
    config: ModelConfig,
    taken: HashSet<String>,
}

impl GgufSource {
    /// Opens `path` and derives the config from its metadata.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let config = file.model_config()?;
        Ok(GgufSource {
            file,
            config,
            taken: HashSet::new(),
        })
    }

    /// The config read from the metadata.
    pub(crate) fn config(&self) -> &ModelConfig {
        &self.config
    }
}

impl WeightSource for GgufSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let gname = gguf_name(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.file.path.clone(),
            name: name.to_string(),
        })?;
        let (mut values, found) = self.file.dequantized(&gname).map_err(|e| match e {
            ModelError::MissingTensor { path, .. } => ModelError::MissingTensor {
                path,
                name: format!("{name} (GGUF `{gname}`)"),
            },
            other => other,
        })?;
        if found != shape {
            return Err(ModelError::ShapeMismatch {
                path: self.file.path.clone(),
                name: format!("{name} (GGUF `{gname}`)"),
                expected: shape.to_vec(),
                found,
            });
        }
        // llama.cpp permutes q/k rows for its rotary layout in Llama-family conversions only.
        if matches!(
            self.config.architecture,
            Architecture::Llama | Architecture::Mistral
        ) {
            let rows = shape[0];
            let cols = shape.get(1).copied().unwrap_or(1);
            if gname.ends_with("attn_q.weight") || gname.ends_with("attn_q.bias") {
                values = unpermute_rows(&values, rows, cols, self.config.num_heads);
            } else if gname.ends_with("attn_k.weight") || gname.ends_with("attn_k.bias") {
                values = unpermute_rows(&values, rows, cols, self.config.num_kv_heads);
            }
        }
        self.taken.insert(gname);
        Ok(TensorData::new(values, shape.to_vec()))
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|g| self.file.tensors.contains_key(&g))
    }

    fn remaining(&self) -> Vec<String> {
        // `rope_freqs.weight` became the config's llama3 scaling.
        self.file
            .tensors
            .keys()
            .filter(|n| !self.taken.contains(*n) && *n != super::ROPE_FREQS)
            .cloned()
            .collect()
    }

    fn origin(&self) -> &Path {
        &self.file.path
    }
}

/// The reference permutation the integration tests use too.
#[cfg(test)]
#[path = "../../../tests/common/llama_cpp.rs"]
mod llama_cpp;

#[cfg(test)]
mod tests {
    use super::llama_cpp::permute;
    use super::unpermute_rows;

    #[test]
    // The permutation moves values without arithmetic: equality is the check.
    #[allow(clippy::float_cmp)]
    fn unpermute_inverts_llama_cpp_permute() {
        let (rows, cols, heads) = (12, 3, 2);
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let gguf = permute(&hf, rows, cols, heads);
        assert_ne!(gguf, hf);
        // Row 1 of head 0 in GGUF order is HF row `half` (the first row of the second half).
        assert_eq!(gguf[cols], hf[3 * cols]);
        assert_eq!(unpermute_rows(&gguf, rows, cols, heads), hf);
    }
}
