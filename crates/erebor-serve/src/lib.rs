//! erebor-serve: `erebor model serve`, an OpenAI-compatible HTTP server over erebor-model's
//! continuous [`Batcher`](erebor_model::Batcher) (issue 12).
//!
//! - [`engine`]: the model thread (the batcher and every tensor) and the `ModelHandle`
//!   handlers use: a bounded queue (full: 429), per-request event channels.
//! - [`routes`]: `/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`, the API key.
//! - [`stream`]: server-sent events for `"stream": true`.
//! - [`protocol`]: the OpenAI request and reply bodies.
//! - [`error`]: [`ServeError`] (start-up) and `ApiError` (OpenAI-shaped error replies).
//!
//! A crate of its own so the server and its tests build with erebor-model alone; the
//! `erebor` binary only parses flags and calls [`serve`].

pub mod engine;
pub mod error;
pub mod protocol;
pub mod routes;
pub mod stream;

use std::path::Path;

use erebor_model::Checkpoint;
use erebor_model::burn::tensor::{DType, Device};
use tokio::net::TcpListener;

pub use engine::Limits;
use engine::spawn_model;
pub use error::ServeError;
use routes::{AppState, router};

/// What `erebor model serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The name clients pass as `model`.
    pub model_name: String,
    /// Batch and queue bounds.
    pub limits: Limits,
    /// The API key clients must send (read from the environment by the caller).
    pub api_key: Option<String>,
}

/// Loads the checkpoint at `path` (folder or GGUF) on the model thread and returns the app.
pub fn load(
    path: &Path,
    device: Device,
    dtype: DType,
    options: ServeOptions,
) -> Result<axum::Router, ServeError> {
    let shown = path.display().to_string();
    let owned = path.to_path_buf();
    let name = shown.clone();
    let loader: engine::Loader = Box::new(move || {
        let ckpt =
            Checkpoint::load(&owned, &device, dtype).map_err(|e| engine::load_error(&name, e))?;
        let tokenizer = ckpt.tokenizer.ok_or_else(|| ServeError::Checkpoint {
            path: name.clone(),
            what: "no tokenizer.json beside the weights".into(),
        })?;
        Ok((ckpt.model, tokenizer))
    });
    let model = spawn_model(loader, options.limits, &shown)?;
    Ok(router(AppState {
        model,
        model_name: options.model_name,
        api_key: options.api_key,
    }))
}

/// Serves `app` on `listener` until the task is dropped or the server fails.
pub async fn serve(listener: TcpListener, app: axum::Router) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    axum::serve(listener, app)
        .await
        .map_err(|source| ServeError::Io { addr, source })
}
