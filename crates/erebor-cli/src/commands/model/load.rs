//! Loading the checkpoint a `model` command works on: where and in what precision
//! ([`DeviceArgs`]), its tokenizer, and the mapping of model errors to exit code 2.

use std::path::Path;

use erebor_model::device::parse_dtype;
use erebor_model::{Checkpoint, DeviceSpec, ModelError, Tokenizer};

use crate::outcome::BadInput;

/// Model, tokenizer and template errors caused by the user's files or flags exit with code 2.
pub(super) fn bad(e: impl Into<ModelError>) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.into().to_string()))
}

/// Where and in what precision the model runs.
#[derive(Debug, clap::Args)]
pub(crate) struct DeviceArgs {
    /// `cpu` (Burn flex), `tch-cpu` or `cuda:N` (LibTorch; build with `--features tch`).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Compute dtype: f32, f16 or bf16 (default: f32 on CPU, bf16 on CUDA).
    #[arg(long)]
    pub(crate) dtype: Option<String>,
}

impl DeviceArgs {
    pub(super) fn load(&self, path: &Path) -> anyhow::Result<Checkpoint> {
        let spec: DeviceSpec = self.device.parse().map_err(bad)?;
        let device = spec.device().map_err(bad)?;
        let dtype = match &self.dtype {
            Some(d) => parse_dtype(d).map_err(bad)?,
            None => spec.default_dtype(),
        };
        Checkpoint::load(path, &device, dtype).map_err(bad)
    }
}

pub(super) fn tokenizer_of(ckpt: &Checkpoint) -> anyhow::Result<&Tokenizer> {
    ckpt.tokenizer.as_ref().ok_or_else(|| {
        anyhow::Error::new(BadInput(format!(
            "{}: no tokenizer.json beside the weights",
            ckpt.dir.display()
        )))
    })
}
