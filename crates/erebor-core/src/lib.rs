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
