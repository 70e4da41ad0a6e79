//! erebor-eval: evaluation of language models with lm-evaluation-harness semantics.
//!
//! - [`task`]: the [`Task`] interface: documents in evaluation order, the [`Request`]s each one
//!   sends to the model, and per-document metrics from the [`Response`]s.
//! - [`error`]: [`EvalError`], naming the file, line, task or document involved.

pub mod error;
pub mod task;

pub use error::{EvalError, Result};
pub use task::{
    DataFile, DocInstance, Harness, MetricInfo, Request, Response, Task, TaskOptions,
};
