//! `erebor model inspect`: a checkpoint's architecture, weights, tokenizer and chat template.

use std::path::{Path, PathBuf};

use erebor_model::weights::{GgufFile, SafetensorsSource};
use erebor_model::{Checkpoint, Tokenizer};
use serde_json::json;

use super::load::bad;
use crate::outcome::Outcome;

/// Arguments of `erebor model inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// Checkpoint folder or .gguf file.
    pub(crate) path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the whole chat template.
    #[arg(long)]
    pub(crate) show_template: bool,
}

impl InspectArgs {
    pub(super) fn execute(self) -> anyhow::Result<Outcome> {
        let config = Checkpoint::read_config(&self.path).map_err(bad)?;
        let is_gguf = self.path.is_file();
        let weights = weights_summary(&self.path, is_gguf)?;
        let dir = if is_gguf {
            self.path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            self.path.clone()
        };
        let tokenizer = if dir.join("tokenizer.json").is_file() {
            Some(Tokenizer::from_dir(&dir).map_err(bad)?)
        } else {
            None
        };
        let tok_json = tokenizer.as_ref().map(|t| {
            json!({"vocab_size": t.vocab_size(), "bos": t.bos().map(|x| &x.text), "eos": t.eos().map(|x| &x.text),
                   "pad": t.pad().map(|x| &x.text), "stop_token_ids": t.stop_token_ids(),
                   "chat_template": t.chat_template_source().is_some()})
        });
        let report = json!({
            "path": self.path, "architecture": config.architecture.hf_class(),
            "parameters": config.num_parameters(), "layers": config.num_layers, "hidden_size": config.hidden_size,
            "heads": config.num_heads, "kv_heads": config.num_kv_heads, "head_dim": config.head_dim,
            "intermediate_size": config.intermediate_size, "vocab_size": config.vocab_size,
            "context_window": config.max_position_embeddings, "rope_theta": config.rope_theta,
            "tie_word_embeddings": config.tie_word_embeddings, "weights": weights, "tokenizer": tok_json,
        });
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{}", self.path.display());
            println!(
                "  architecture   {} ({:.1}M parameters)",
                config.architecture.hf_class(),
                config.num_parameters() as f64 / 1e6
            );
            println!(
                "  shape          {} layers, hidden {}, {} heads / {} kv heads × {}, mlp {}, vocab {}",
                config.num_layers,
                config.hidden_size,
                config.num_heads,
                config.num_kv_heads,
                config.head_dim,
                config.intermediate_size,
                config.vocab_size
            );
            println!(
                "  context        {} tokens, rope theta {}",
                config.max_position_embeddings, config.rope_theta
            );
            println!("  weights        {weights}");
            match &tokenizer {
                Some(t) => {
                    println!("  tokenizer      {}", tok_json.unwrap_or_default());
                    match t.chat_template_source() {
                        Some(src) if self.show_template => println!("  chat template\n{src}"),
                        Some(src) => println!(
                            "  chat template  {} chars (--show-template to print)",
                            src.len()
                        ),
                        None => println!(
                            "  chat template  none (use a built-in: chatml, llama-2, mistral, llama-3)"
                        ),
                    }
                }
                None => println!("  tokenizer      none"),
            }
        }
        Ok(Outcome::Success)
    }
}

/// What the weights at `path` are: a GGUF file's tensor counts per type, or a safetensors
/// folder's dominant dtype, tensor count and whether it is sharded.
fn weights_summary(path: &Path, is_gguf: bool) -> anyhow::Result<serde_json::Value> {
    if is_gguf {
        let file = GgufFile::open(path).map_err(bad)?;
        let mut types = std::collections::BTreeMap::<String, usize>::new();
        for info in file.tensors.values() {
            let name = erebor_model::weights::GgufTensorType::from_id(info.type_id).map_or_else(
                || format!("ggml type {}", info.type_id),
                |t| format!("{t:?}"),
            );
            *types.entry(name).or_default() += 1;
        }
        Ok(json!({"format": "gguf", "tensor_types": types}))
    } else {
        let src = SafetensorsSource::open_dir(path).map_err(bad)?;
        Ok(
            json!({"format": "safetensors", "dtype": src.dominant_dtype(), "tensors": src.shapes().len(),
                   "sharded": path.join("model.safetensors.index.json").is_file()}),
        )
    }
}
