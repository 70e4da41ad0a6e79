//! Shared types of erebor, the pieces every other crate agrees on.
//!
//! The ML crates (data, model, train, eval) depend on this crate and on nothing of the engine or
//! the store. A step kind implements [`StepKind`]; the engine runs it in a child process and hands
//! it a [`StepContext`] whose [`MetricsSink`] and [`ProgressReporter`] stream [`StepEvent`]s back.
//!
//! - [`ids`]: run, step and attempt identifiers.
//! - [`kind`]: the step-kind trait, its declared outputs and its code version.
//! - [`config`]: typed parsing of a step's `with:` block with field paths in errors.
//! - [`context`]: what a running step receives.
//! - [`outputs`]: what a finished step returns.
//! - [`failure`]: failure classes and the child-process exit codes that carry them.
//! - [`events`]: metrics, progress and the JSON-lines event stream between step and runner.
//! - [`cancel`]: cooperative cancellation.
//! - [`content`]: content hashes of files and folders.
//! - [`hash_cache`]: those hashes cached by (path, size, mtime) in a JSON file.
//! - [`dataset`]: the on-disk format of converted datasets, written by `convert`, read by training.
//! - [`jsonl`]: JSON-lines reading and writing with line numbers in errors.
//! - [`files`]: atomic whole-file writes.
//! - [`hub_models`]: `hf://models/OWNER/NAME[@REV]` model references, resolved from a local mirror.

// Clippy's pedantic group, less the lints the project allows everywhere (issue 13):
// - must_use_candidate: would mark nearly every getter; `#[must_use]` goes where dropping the
//   value is a likely bug.
// - missing_errors_doc: fallible functions return a typed error whose variants say what failed.
// - single_match_else: a one-arm `match` with a fallback reads as well as `if let ... else`.
// - format_push_string: `push_str(&format!(..))` reads better than `write!` with an ignored
//   `fmt::Result`.
// - cast_precision_loss: counts and indexes turned into `f64` stay far below 2^52.
// - module_name_repetitions: `StoreError`-style names read better at call sites than `Error`.
#![warn(clippy::pedantic)]
#![allow(
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    clippy::single_match_else,
    clippy::format_push_string,
    clippy::cast_precision_loss,
    clippy::module_name_repetitions
)]

pub mod cancel;
pub mod config;
pub mod content;
pub mod context;
pub mod dataset;
pub mod events;
pub mod failure;
pub mod files;
pub mod hash_cache;
pub mod hub_models;
pub mod ids;
pub mod jsonl;
pub mod kind;
pub mod outputs;
pub mod secrets;

pub use cancel::CancelToken;
pub use config::{ConfigError, parse_with};
pub use context::StepContext;
pub use events::{MemorySink, MetricsSink, NullProgress, ProgressReporter, StepEvent};
pub use failure::{FailureClass, StepFailure};
pub use ids::{AttemptId, RunId, StepId};
pub use kind::{OutputDecl, OutputType, StepKind, StepKindInfo};
pub use outputs::{OutputValue, StepOutputs};
