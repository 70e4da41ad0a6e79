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
