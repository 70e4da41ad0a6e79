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
