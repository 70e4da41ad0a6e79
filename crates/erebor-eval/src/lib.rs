//! erebor-eval: evaluation of language models with lm-evaluation-harness semantics.
//!
//! - [`task`]: the [`Task`] interface: documents in evaluation order, the [`Request`]s each one
//!   sends to the model, and per-document metrics from the [`Response`]s.
//! - [`tasks`]: the leaderboard tasks (ARC, HellaSwag, MMLU, TruthfulQA, WinoGrande, GSM8K) with
//!   harness b281b09's prompts, and [`leaderboard_tasks`], the registry by name.
//! - [`custom`]: [`CustomTask`], tasks from YAML files with lm-eval 0.4's keys.
//! - [`fewshot`]: evaluation order and few-shot draws of each harness; [`metrics`]: acc,
//!   acc_norm, mc1, mc2, GSM8K extraction, exact_match; [`data`]: JSONL data files.
//! - [`pyrandom`]: CPython's `random.Random` (shuffles and few-shot draws as the harness makes them).
//! - [`error`]: [`EvalError`], naming the file, line, task or document involved.

pub mod custom;
pub mod data;
pub mod error;
pub mod fewshot;
pub mod metrics;
pub mod pyrandom;
pub mod task;
pub mod tasks;

pub use custom::CustomTask;
pub use error::{EvalError, Result};
pub use tasks::leaderboard_tasks;
pub use task::{
    DataFile, DocInstance, Harness, MetricInfo, Request, Response, Task, TaskOptions,
};
