//! The Open LLM Leaderboard v1 tasks with the semantics of lm-evaluation-harness b281b09, and
//! the registry that builds them by name.
//!
//! | name | split scored | few-shot pool | default shots | files in `--data-dir` |
//! |---|---|---|---|---|
//! | `arc_easy`, `arc_challenge` | test | train | 0, 25 | `arc_<x>_{test,train}.jsonl` |
//! | `hellaswag` | validation | train | 10 | `hellaswag_{validation,train}.jsonl` |
//! | `mmlu_<subject>` (57; `mmlu` = all) | test | first k of dev | 5 | `mmlu_{test,dev}.jsonl` |
//! | `truthfulqa_mc` (`truthfulqa`) | validation | none | 0 | `truthfulqa_mc_validation.jsonl` or `truthfulqa_mc1.jsonl` |
//! | `winogrande` | validation | train | 5 | `winogrande_xl_{validation,train}.jsonl` |
//! | `gsm8k` | test | exemplar file | 5 | `gsm8k_test.jsonl` (+ `gsm8k_train.jsonl`) |
//!
//! `leaderboard` expands to the six leaderboard tasks (MMLU as its 57 subjects). A name ending
//! in `.yaml` / `.yml` is a custom task file ([`crate::custom`]).

mod arc;
mod common;
mod gsm8k;
mod hellaswag;
mod mmlu;
mod multiple_choice;
mod registry;
mod truthfulqa;
mod winogrande;

pub(crate) use common::loglikelihoods as loglikelihood_values;
pub use hellaswag::preprocess as hellaswag_preprocess;
pub use mmlu::MMLU_SUBJECTS;
pub(crate) use registry::TASK_NAMES;
pub use registry::{LEADERBOARD, leaderboard_tasks};
