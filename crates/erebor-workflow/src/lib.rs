//! Workflow files: the YAML schema, validation with line:col errors, templating, matrix
//! expansion, the step DAG and step fingerprints.
//!
//! - [`workflow`]: [`load_file`] turns a file into a validated [`Workflow`] of expanded steps.
//! - [`node`]: the YAML tree with line and column on every node.
//! - [`schema`]: the file's keys, read strictly.
//! - [`executors`]: `executor:` (local or Slurm and its settings), per-step executors and
//!   cluster resources.
//! - [`fields`]: typed, strict reading of mappings.
//! - [`params`]: typed param declarations.
//! - [`param_values`]: values after defaults, `--set` and the environment; secrets.
//! - [`template`]: `${{ ... }}` expressions.
//! - [`resolve`]: template resolution in `with:` and reference checks.
//! - [`matrix`]: fan-out into arms and arm pairing.
//! - [`dag`]: topological order and cycles.
//! - [`validate`]: each kind's own check of its `with:` block.
//! - [`runtime`]: substituting outputs and secrets when a step is about to run.
//! - [`fingerprint`]: step fingerprints and why two differ.
//! - [`registry`]: the step kinds a binary knows.
//! - [`error`]: errors with `file:line:col` and advice.

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

pub mod dag;
pub mod error;
pub mod executors;
pub mod fields;
pub mod fingerprint;
pub mod matrix;
pub mod node;
pub mod param_values;
pub mod params;
pub mod registry;
pub mod resolve;
pub mod runtime;
pub mod schema;
pub mod template;
pub mod validate;
pub mod workflow;

pub use erebor_core::hash_cache::HashCache;
pub use error::{ErrorKind, WorkflowError, WorkflowErrors};
pub use executors::{ExecutorDecl, ExecutorKind, StepResources};
pub use fingerprint::{Fingerprint, FingerprintInputs};
pub use param_values::{MissingParams, ParamValues};
pub use registry::KindRegistry;
pub use workflow::{LoadOptions, PlannedStep, Workflow, load_file, load_str};
