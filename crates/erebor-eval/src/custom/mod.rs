//! Custom tasks from YAML files with lm-eval 0.4's task keys: multiple-choice or generation
//! tasks on local JSONL data, Jinja prompts, few-shot examples, `acc` / `acc_norm` /
//! `exact_match` (with an answer-extracting regex) and stop strings. `docs/eval.md` ("Custom
//! tasks") documents the format.
//!
//! Prompts follow lm-eval 0.4: `description + Σ (text + target_delimiter + answer +
//! fewshot_delimiter) + text`, each choice scored as `target_delimiter + choice`. The order of
//! documents and the few-shot draws follow the selected harness ([`crate::fewshot`]).

pub mod config;
mod data;
mod docs;
mod scoring;
mod task;
mod templates;

pub use config::OutputType;
pub use task::CustomTask;
