//! `erebor model convert`: a GGUF file or HF folder (optionally with a LoRA adapter merged) to an
//! HF safetensors folder.

use std::path::PathBuf;

use anyhow::Context;
use erebor_model::burn::tensor::DType;
use erebor_model::weights::SaveDType;
use erebor_model::{Checkpoint, DeviceSpec, SaveOptions, save_pretrained};

use super::load::bad;
use crate::outcome::{BadInput, Outcome};

/// Arguments of `erebor model convert`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConvertArgs {
    /// GGUF file or HF folder to read.
    pub(crate) input: PathBuf,
    /// Folder to write (created).
    pub(crate) output: PathBuf,
    /// Weights dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub(crate) dtype: String,
    /// Largest shard in bytes.
    #[arg(long, default_value_t = 5_000_000_000)]
    pub(crate) max_shard_bytes: usize,
    /// A PEFT LoRA adapter folder to merge into the weights before writing.
    #[arg(long)]
    pub(crate) merge_adapter: Option<PathBuf>,
}

impl ConvertArgs {
    pub(super) fn execute(self) -> anyhow::Result<Outcome> {
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
