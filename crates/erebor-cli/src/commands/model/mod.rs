//! `erebor model`: inspect, convert, generate with and score against a checkpoint (a Hugging
//! Face folder or a GGUF file), outside any workflow.

use std::path::{Path, PathBuf};

use anyhow::Context;
use erebor_model::burn::tensor::DType;
use erebor_model::device::parse_dtype;
use erebor_model::weights::{GgufFile, SafetensorsSource, SaveDType};
use erebor_model::{Checkpoint, DeviceSpec, ModelError, SaveOptions, Tokenizer, save_pretrained};
use serde_json::json;

use crate::globals::Globals;

mod run;
mod serve;
#[cfg(test)]
mod tests;

use crate::outcome::{BadInput, Outcome};
pub use run::{GenerateArgs, ScoreArgs};
pub use serve::ServeArgs;

/// `erebor model ...`
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameter count, weights dtype, tokenizer and chat template of a checkpoint.
    Inspect(InspectArgs),
    /// Convert a GGUF file or HF folder into an HF safetensors folder.
    Convert(ConvertArgs),
    /// Generate text from a prompt.
    Generate(GenerateArgs),
    /// Log-probability of a continuation given a context (lm-eval `loglikelihood`).
    Score(ScoreArgs),
    /// Serve the model over an OpenAI-compatible HTTP API with continuous batching.
    Serve(ServeArgs),
}

impl ModelCommand {
    /// Runs the subcommand.
    pub fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        match self {
            ModelCommand::Inspect(a) => a.execute(),
            ModelCommand::Convert(a) => a.execute(),
            ModelCommand::Generate(a) => a.execute(),
            ModelCommand::Score(a) => a.execute(),
            ModelCommand::Serve(a) => a.execute(globals),
        }
    }
}

/// Model, tokenizer and template errors caused by the user's files or flags exit with code 2.
fn bad(e: impl Into<ModelError>) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.into().to_string()))
}

/// Where and in what precision the model runs.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// `cpu` (Burn flex), `tch-cpu` or `cuda:N` (LibTorch; build with `--features tch`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, f16 or bf16 (default: f32 on CPU, bf16 on CUDA).
    #[arg(long)]
    pub dtype: Option<String>,
}

impl DeviceArgs {
    fn load(&self, path: &Path) -> anyhow::Result<Checkpoint> {
        let spec: DeviceSpec = self.device.parse().map_err(bad)?;
        let device = spec.device().map_err(bad)?;
        let dtype = match &self.dtype {
            Some(d) => parse_dtype(d).map_err(bad)?,
            None => spec.default_dtype(),
        };
        Checkpoint::load(path, &device, dtype).map_err(bad)
    }
}

fn tokenizer_of(ckpt: &Checkpoint) -> anyhow::Result<&Tokenizer> {
    ckpt.tokenizer.as_ref().ok_or_else(|| {
        anyhow::Error::new(BadInput(format!(
            "{}: no tokenizer.json beside the weights",
            ckpt.dir.display()
        )))
    })
}

/// Arguments of `erebor model inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Checkpoint folder or .gguf file.
    pub path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print the whole chat template.
    #[arg(long)]
    pub show_template: bool,
}

impl InspectArgs {
    fn execute(self) -> anyhow::Result<Outcome> {
        let config = Checkpoint::read_config(&self.path).map_err(bad)?;
        let is_gguf = self.path.is_file();
        let weights = if is_gguf {
            let file = GgufFile::open(&self.path).map_err(bad)?;
            let mut types = std::collections::BTreeMap::<String, usize>::new();
            for info in file.tensors.values() {
                let name = erebor_model::weights::GgufTensorType::from_id(info.type_id)
                    .map_or_else(
                        || format!("ggml type {}", info.type_id),
                        |t| format!("{t:?}"),
                    );
                *types.entry(name).or_default() += 1;
            }
            json!({"format": "gguf", "tensor_types": types})
        } else {
            let src = SafetensorsSource::open_dir(&self.path).map_err(bad)?;
            json!({"format": "safetensors", "dtype": src.dominant_dtype(), "tensors": src.shapes().len(),
                   "sharded": self.path.join("model.safetensors.index.json").is_file()})
        };
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

/// Arguments of `erebor model convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// GGUF file or HF folder to read.
    pub input: PathBuf,
    /// Folder to write (created).
    pub output: PathBuf,
    /// Weights dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Largest shard in bytes.
    #[arg(long, default_value_t = 5_000_000_000)]
    pub max_shard_bytes: usize,
    /// A PEFT LoRA adapter folder to merge into the weights before writing.
    #[arg(long)]
    pub merge_adapter: Option<PathBuf>,
}

impl ConvertArgs {
    fn execute(self) -> anyhow::Result<Outcome> {
        let dtype = SaveDType::parse(&self.dtype).ok_or_else(|| {
            anyhow::Error::new(BadInput(format!(
                "unknown dtype {:?} (f32, f16, bf16)",
                self.dtype
            )))
        })?;
        let device = DeviceSpec::Cpu.device().map_err(bad)?;
        let mut ckpt = Checkpoint::load(&self.input, &device, DType::F32).map_err(bad)?;
        if let Some(adapter) = &self.merge_adapter {
            let (adapted, config) =
                erebor_model::lora::load_adapter(ckpt.model, adapter).map_err(bad)?;
            ckpt.model = erebor_model::lora::merge(adapted);
            tracing::info!(rank = config.rank, adapter = %adapter.display(), "merged LoRA adapter");
        }
        let opts = SaveOptions {
            dtype,
            max_shard_bytes: self.max_shard_bytes,
        };
        let files = save_pretrained(
            &ckpt.model,
            &self.output,
            ckpt.tokenizer.as_ref(),
            ckpt.raw_config.as_ref(),
            &opts,
        )
        .map_err(bad)?;
        let generation = ckpt.dir.join("generation_config.json");
        if generation.is_file() {
            std::fs::copy(&generation, self.output.join("generation_config.json"))
                .with_context(|| format!("copying {}", generation.display()))?;
        }
        for f in files {
            println!("{}", f.display());
        }
        Ok(Outcome::Success)
    }
}
