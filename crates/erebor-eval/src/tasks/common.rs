//! Helpers the built-in tasks share: Python string semantics, response checks, configs.

use serde_json::{Value, json};

use crate::error::{EvalError, Result};
use crate::fewshot::default_seed;
use crate::output::pyjson::PyValue;
use crate::task::{Harness, MetricInfo, Response, TaskOptions};

/// An evaluation document: its index in its split file, the row as read (keys in file order,
/// as lm-eval writes `doc`), and the task's processed form of it.
#[derive(Clone, Debug)]
pub(crate) struct EvalDoc<D> {
    pub doc_id: usize,
    pub raw: PyValue,
    pub doc: D,
}

/// Python's `str.isspace` for one character: Unicode white space plus the ASCII separators
/// U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(text: &str) -> &str {
    text.trim_matches(py_space)
}

/// Python's `str.capitalize()`: the first character upper-cased, the rest lower-cased.
pub(crate) fn py_capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

/// The log-likelihoods of `responses`, which must be `expected` loglikelihood responses.
pub(crate) fn loglikelihoods(
    task: &str,
    doc_id: usize,
    responses: &[Response],
    expected: usize,
) -> Result<Vec<f64>> {
    if responses.len() != expected {
        return Err(document_error(
            task,
            doc_id,
            format!("expected {expected} responses, got {}", responses.len()),
        ));
    }
    responses
        .iter()
        .map(|response| match response {
            Response::Loglikelihood { logprob, .. } => Ok(*logprob),
            Response::Generated(_) => Err(document_error(
                task,
                doc_id,
                "expected loglikelihood responses, got generated text".into(),
            )),
        })
        .collect()
}

/// An error about one document.
pub(crate) fn document_error(task: &str, doc_id: usize, message: String) -> EvalError {
    EvalError::Document {
        task: task.to_string(),
        doc_id,
        message,
    }
}

/// An error about a task's configuration.
pub(crate) fn task_error(task: &str, message: impl Into<String>) -> EvalError {
    EvalError::Task {
        task: task.to_string(),
        message: message.into(),
    }
}

/// The number of few-shot examples: the user's, else the task's default.
pub(crate) fn shots(options: &TaskOptions, default: usize) -> usize {
    options.num_fewshot.unwrap_or(default)
}

/// lm-eval's `metric_list` entries for `metrics`.
pub(crate) fn metric_list(metrics: &[MetricInfo]) -> Value {
    metrics
        .iter()
        .map(|m| json!({"metric": m.name, "aggregation": "mean", "higher_is_better": m.higher_is_better}))
        .collect()
}

/// What defines a built-in task's prompts besides its template: the harness, the seed, the
/// shuffle, the few-shot source.
pub(crate) fn harness_config(harness: Harness, seed: Option<u64>, fewshot_source: &str) -> Value {
    json!({
        "harness": harness.as_str(),
        "fewshot_seed": seed.unwrap_or(default_seed(harness)),
        "shuffled": harness == Harness::B281b09,
        "fewshot_source": fewshot_source,
    })
}

/// The `versions` entry: b281b09's class `VERSION`, or lm-eval 0.4's YAML `metadata.version`.
pub(crate) fn version(harness: Harness, b281b09: i64, v04: f64) -> Value {
    match harness {
        Harness::B281b09 => json!(b281b09),
        Harness::V04 => json!(v04),
    }
}
