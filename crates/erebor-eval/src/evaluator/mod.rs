//! Runs `Task`s against a model with lm-evaluation-harness semantics.
//!
//! For each task: its `DocInstance`s (already in the harness's order, with the exact request
//! strings), minus the documents the `ResumeCache` already holds, are scored in chunks:
//!
//! - loglikelihood requests of all documents of a chunk together, tokenised as the harness does
//!   ([`erebor_model::scoring::encode_pair`]: trailing context whitespace moves to the
//!   continuation, no BOS for Hugging Face models, no chat template), sorted by length and
//!   batched by a token budget by [`erebor_model::Scorer`], which computes a context shared by
//!   several continuations once;
//! - generation requests greedily, batched with the KV cache, until a stop string, EOS or the
//!   task's token limit (`generation`).
//!
//! Each finished document goes through `Task::process_results` and into the resume cache at
//! once; then the metrics are aggregated ([`aggregate`]: mean and lm-eval's `mean_stderr`,
//! group means, the Open LLM Leaderboard average).

pub mod aggregate;
mod generation;
pub mod job;
mod loglikelihood;
mod results;
mod run;
mod settings;
pub mod specs;

pub use aggregate::{GroupResult, LeaderboardAverage, LeaderboardEntry, MetricValue};
pub use job::{JobOptions, JobOutput, LoadedModel, run_job};
pub use results::{DocResult, EvalReport, TaskResult, TokenCounts};
pub use run::{Evaluator, prompt_hash};
pub use settings::{EvalModel, EvalSettings, Hooks};
