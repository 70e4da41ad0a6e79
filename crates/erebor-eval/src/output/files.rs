//! The lm-eval output files of one evaluation: `results_<date>.json` and one
//! `samples_<task>_<date>.jsonl` per task, named as lm-eval names them.

use std::path::{Path, PathBuf};

use super::pyjson;
use super::results::{RunInfo, results_document};
use super::samples::sample_lines;
use crate::error::{EvalError, Result};
use crate::evaluator::EvalReport;

/// The files [`write_outputs`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFiles {
    /// The results JSON.
    pub results: PathBuf,
    /// One samples file per task, in task order.
    pub samples: Vec<PathBuf>,
}

/// lm-eval's `date_id`: local time as ISO 8601 with `-` for `:` (`2026-11-30T20-40-12.123456`).
pub fn date_id(time: chrono::DateTime<chrono::Local>) -> String {
    time.format("%Y-%m-%dT%H-%M-%S%.6f").to_string()
}

/// lm-eval's `sanitize_model_name`: runs of `"<>:/|\?*[]` become `__`.
pub fn sanitize_model_name(name: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in name.chars() {
        if "\"<>:/|\\?*[]".contains(c) {
            if !in_run {
                out.push_str("__");
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// lm-eval's `sanitize_task_name`: non-word characters become `_`.
fn sanitize_task_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `results_<date>.json` and `samples_<task>_<date>.jsonl` into `dir` (created).
pub fn write_outputs(report: &EvalReport, info: &RunInfo, dir: &Path) -> Result<OutputFiles> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| EvalError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut samples = Vec::with_capacity(report.tasks.len());
    for task in &report.tasks {
        let path = dir.join(format!(
            "samples_{}_{}.jsonl",
            sanitize_task_name(&task.name),
            info.date_id
        ));
        let mut text = String::new();
        for line in sample_lines(&task.docs) {
            text.push_str(&line);
            text.push('\n');
        }
        erebor_core::files::write_atomic(&path, text.as_bytes(), false).map_err(io(&path))?;
        samples.push(path);
    }
    let results = dir.join(format!("results_{}.json", info.date_id));
    let text = pyjson::dumps(&results_document(report, info), Some(2));
    erebor_core::files::write_atomic(&results, text.as_bytes(), false).map_err(io(&results))?;
    Ok(OutputFiles { results, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_as_lm_eval_does() {
        assert_eq!(
            sanitize_model_name("/runs/r1/train[dpop]/model"),
            "__runs__r1__train__dpop__model"
        );
        assert_eq!(sanitize_task_name("my-task.v2"), "my_task_v2");
    }
}
