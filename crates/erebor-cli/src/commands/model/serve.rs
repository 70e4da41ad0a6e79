//! `erebor model serve`: an OpenAI-compatible HTTP server for a checkpoint (erebor-serve),
//! with continuous batching. Prints `{"listening": URL, "model": NAME}` on stdout once ready.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use erebor_model::DeviceSpec;
use erebor_model::device::parse_dtype;
use erebor_serve::{Limits, ServeOptions};
use serde_json::json;

use super::load::{DeviceArgs, bad};
use crate::outcome::{BadInput, Outcome};

/// Arguments of `erebor model serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Checkpoint folder or .gguf file (with tokenizer.json and a chat template beside it).
    pub(crate) path: PathBuf,
    /// Address to bind (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Port (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8000)]
    pub(crate) port: u16,
    /// Sequences decoding together (continuous batching).
    #[arg(long, default_value_t = 8)]
    pub(crate) max_batch: usize,
    /// Requests waiting for a slot; beyond it requests get 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub(crate) max_queue: usize,
    /// The `model` name clients use (default: the folder or file name).
    #[arg(long)]
    pub(crate) model_name: Option<String>,
    /// Name of an environment variable holding the API key clients must send as
    /// `Authorization: Bearer <key>` (the key itself never goes on the command line).
    #[arg(long)]
    pub(crate) api_key_env: Option<String>,
    /// Device and dtype.
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

impl ServeArgs {
    pub(super) fn execute(self) -> anyhow::Result<Outcome> {
        if self.max_batch == 0 || self.max_queue == 0 {
            return Err(BadInput("--max-batch and --max-queue must be at least 1".into()).into());
        }
        let api_key =
            match &self.api_key_env {
                None => None,
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    BadInput(format!("--api-key-env {var}: the variable is not set"))
                })?),
            };
        let spec: DeviceSpec = self.device.device.parse().map_err(bad)?;
        let device = spec.device().map_err(bad)?;
        let dtype = match &self.device.dtype {
            Some(d) => parse_dtype(d).map_err(bad)?,
            None => spec.default_dtype(),
        };
        let model_name = self.model_name.clone().unwrap_or_else(|| {
            let stem = self.path.file_stem().or_else(|| self.path.file_name());
            stem.map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
        });
        let options = ServeOptions {
            model_name: model_name.clone(),
            limits: Limits {
                max_batch: self.max_batch,
                max_queue: self.max_queue,
            },
            api_key,
        };
        tracing::info!(path = %self.path.display(), device = %spec, "loading the model");
        let app = erebor_serve::load(&self.path, device, dtype, options)
            .map_err(|e| BadInput(e.to_string()))?;
        let addr = format!("{}:{}", self.host, self.port);
        crate::globals::runtime()?.block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let url = format!("http://{}", listener.local_addr()?);
            println!("{}", json!({"listening": url, "model": model_name}));
            std::io::stdout().flush()?;
            tracing::info!(%url, "serving; Ctrl-C stops");
            tokio::select! {
                served = erebor_serve::serve(listener, app) => served?,
                _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
            }
            Ok(Outcome::Success)
        })
    }
}
