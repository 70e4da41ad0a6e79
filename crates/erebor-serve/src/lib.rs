//! erebor-serve: `erebor model serve`, an OpenAI-compatible HTTP server over erebor-model's
//! continuous [`Batcher`](erebor_model::Batcher) (issue 12).
//!
//! - [`engine`]: the model thread (the batcher and every tensor) and the [`ModelHandle`]
//!   handlers use: a bounded queue (full: 429), per-request event channels.
//! - [`routes`]: `/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`, the API key.
//! - [`stream`]: server-sent events for `"stream": true`.
//! - [`protocol`]: the OpenAI request and reply bodies.
//! - [`error`]: [`ServeError`] (start-up) and [`ApiError`] (OpenAI-shaped error replies).
//!
//! A crate of its own so the server and its tests build with erebor-model alone; the
//! `erebor` binary only parses flags and calls [`serve`].

// Clippy's pedantic group, less the lints the project allows everywhere (issue 13):
// - must_use_candidate: would mark nearly every getter; `#[must_use]` goes where dropping the
//   value is a likely bug.
// - missing_errors_doc: fallible functions return a typed error whose variants say what failed.
// - single_match_else: a one-arm `match` with a fallback reads as well as `if let ... else`.
// - format_push_string: `push_str(&format!(..))` reads better than `write!` with an ignored
//   `fmt::Result`.
// - cast_precision_loss: counts and indexes turned into `f64` stay far below 2^52.
// - module_name_repetitions: `ServeError`-style names read better at call sites than `Error`.
#![warn(clippy::pedantic)]
#![allow(
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    clippy::single_match_else,
    clippy::format_push_string,
    clippy::cast_precision_loss,
    clippy::module_name_repetitions
)]

pub mod engine;
pub mod error;
pub mod protocol;
pub mod routes;
pub mod stream;

use std::path::Path;

use erebor_model::Checkpoint;
use erebor_model::burn::tensor::{DType, Device};
use tokio::net::TcpListener;

pub use engine::{Limits, ModelHandle, spawn_model};
pub use error::{ApiError, ServeError};
pub use routes::{AppState, router};

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
