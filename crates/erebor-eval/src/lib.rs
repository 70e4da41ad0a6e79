//! erebor-eval: evaluation of language models with lm-evaluation-harness semantics.
//!
//! - [`task`]: the [`Task`] interface: documents in evaluation order, the [`Request`]s each one
//!   sends to the model, and per-document metrics from the [`Response`]s.
//! - [`tasks`]: the leaderboard tasks (ARC, HellaSwag, MMLU, TruthfulQA, WinoGrande, GSM8K) with
//!   harness b281b09's prompts, and [`leaderboard_tasks`], the registry by name.
//! - [`custom`]: [`CustomTask`], tasks from YAML files with lm-eval 0.4's keys.
//! - [`fewshot`]: evaluation order and few-shot draws of each harness; [`metrics`]: acc,
//!   `acc_norm`, mc1, mc2, GSM8K extraction, `exact_match`; [`data`]: JSONL data files.
//! - [`pyrandom`]: CPython's `random.Random` (shuffles and few-shot draws as the harness makes them).
//! - [`evaluator`]: [`Evaluator`] runs tasks against a model (tokenisation as the harness,
//!   batching, shared contexts, generation) and aggregates the metrics.
//! - [`cache`]: [`ResumeCache`], per-document results kept as they finish, keyed by the model's
//!   weights hash and the task configuration's hash; [`hash_memo`]: that hash without
//!   rereading unchanged weight files.
//! - [`hub`]: task data named `hf://datasets/...`, resolved through erebor-data's Hub reader.
//! - [`output`]: lm-eval 0.4's results JSON and samples JSONL, the results table.
//! - [`kind`]: [`EvalKind`], the `eval` step kind (metrics as `bench/<task>/<metric>`).
//! - [`plan_memory`]: the `eval` step's memory estimate and refusal at plan time.
//! - [`mt_bench`]: MT-Bench answers, the LLM judge with its cache, scores, the `mt-bench` kind.
//! - [`error`]: [`EvalError`], naming the file, line, task or document involved.

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

pub mod cache;
pub mod custom;
pub mod data;
pub mod error;
pub mod evaluator;
pub mod fewshot;
pub mod hash_memo;
pub mod hub;
pub mod kind;
pub mod metrics;
pub mod mt_bench;
pub mod output;
pub mod plan_memory;
pub mod pyrandom;
pub mod task;
pub mod tasks;

pub use cache::ResumeCache;
pub use custom::CustomTask;
pub use error::{EvalError, Result};
pub use evaluator::{EvalReport, EvalSettings, Evaluator};
pub use kind::EvalKind;
pub use task::{DataFile, DocInstance, Harness, MetricInfo, Request, Response, Task, TaskOptions};
pub use tasks::leaderboard_tasks;
