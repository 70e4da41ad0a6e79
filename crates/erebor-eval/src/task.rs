//! The task interface shared by the leaderboard tasks, custom YAML tasks and the evaluator.
//!
//! A [`Task`] turns its data files into [`DocInstance`]s — in the order the harness evaluates
//! them, each with the exact [`Request`] strings the harness builds — and turns the model's
//! [`Response`]s back into per-document metric values. The evaluator (tokenisation, batching,
//! caching, aggregation, results files) knows nothing task-specific.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Which lm-evaluation-harness semantics the prompts, few-shot draws and stop strings follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Harness {
    /// Commit b281b0921b636bc36ad05c0b0b0763bd6dd43463, the Open LLM Leaderboard v1's harness:
    /// what leaderboard numbers mean.
    #[default]
    #[serde(rename = "b281b09")]
    B281b09,
    /// lm-evaluation-harness 0.4 (its few-shot sampler and seed, GSM8K's stop strings), to
    /// compare with today's `lm_eval`.
    #[serde(rename = "v0.4")]
    V04,
}

impl Harness {
    /// The name used in configs, results and the CLI (`b281b09`, `v0.4`).
    pub fn as_str(self) -> &'static str {
        match self {
            Harness::B281b09 => "b281b09",
            Harness::V04 => "v0.4",
        }
    }
}

impl std::str::FromStr for Harness {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "b281b09" | "b281b0921b636bc36ad05c0b0b0763bd6dd43463" => Ok(Harness::B281b09),
            "v0.4" | "0.4" => Ok(Harness::V04),
            other => Err(format!(
                "unknown harness `{other}`: expected `b281b09` (the leaderboard's, default) or `v0.4`"
            )),
        }
    }
}

/// What builds a task besides its name.
#[derive(Clone, Debug)]
pub struct TaskOptions {
    /// Folder laid out like `../shared/data/leaderboard`: `<task>_<split>.jsonl`, or an
    /// `hf://datasets/OWNER/NAME[@REV][/DIR]` reference to one ([`crate::hub`]).
    pub data_dir: PathBuf,
    /// Overrides the task's default number of few-shot examples.
    pub num_fewshot: Option<usize>,
    /// Whose semantics to follow.
    pub harness: Harness,
    /// JSONL file the GSM8K exemplars come from (no GSM8K train split is shipped). When it is the
    /// test file itself, its first `num_fewshot` rows are the exemplars and are not scored.
    pub gsm8k_exemplars: Option<PathBuf>,
    /// Seed of the few-shot sampler (the harness uses 42; lm-eval 0.4's default is 1234).
    pub fewshot_seed: Option<u64>,
    /// Root of erebor-data's Hub cache, where `hf://datasets/...` data resolves from (and is
    /// downloaded to when missing): `<hub_cache>/hf/datasets/OWNER/NAME/REV/PATH`.
    pub hub_cache: PathBuf,
}

impl TaskOptions {
    /// The options with `data_dir` and `gsm8k_exemplars` resolved to local paths when they
    /// are `hf://` references.
    pub(crate) fn with_local_data(&self) -> Result<TaskOptions> {
        let mut local = self.clone();
        if crate::hub::is_hub(&self.data_dir) {
            local.data_dir = crate::hub::local_path(&self.data_dir, &self.hub_cache)?;
        }
        if let Some(file) = &self.gsm8k_exemplars {
            local.gsm8k_exemplars = Some(crate::hub::local_path(file, &self.hub_cache)?);
        }
        Ok(local)
    }
}

/// One request the harness sends to the model for a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Score `continuation` after `context` (lm-eval `loglikelihood`).
    Loglikelihood {
        /// Few-shot examples and the document's prompt, exactly as the harness joins them.
        context: String,
        /// The text scored (usually with a leading space).
        continuation: String,
    },
    /// Generate greedily after `context` until a stop string, EOS or `max_gen_toks` tokens
    /// (lm-eval `greedy_until` / `generate_until`).
    GenerateUntil {
        /// The prompt.
        context: String,
        /// Stop strings; the text is cut before the first one.
        until: Vec<String>,
        /// Most new tokens.
        max_gen_toks: usize,
    },
}

impl Request {
    /// The context string of either kind.
    pub fn context(&self) -> &str {
        match self {
            Request::Loglikelihood { context, .. } | Request::GenerateUntil { context, .. } => {
                context
            }
        }
    }
}

/// The model's answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Summed log-probability of the continuation, and whether each of its tokens was the argmax.
    Loglikelihood {
        /// Sum over the continuation's tokens, in nats.
        logprob: f64,
        /// lm-eval's `is_greedy`.
        is_greedy: bool,
    },
    /// Generated text, cut before the first stop string.
    Generated(String),
}

/// A document ready to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocInstance {
    /// The document's index in its split file (lm-eval's `doc_id`).
    pub doc_id: usize,
    /// The document as lm-eval 0.4 holds it (the row as read, keys in file order, plus what
    /// the task's `process_docs` adds), written back in samples files and hashed as `doc_hash`.
    pub doc: crate::output::pyjson::PyValue,
    /// The correct answer as lm-eval writes it in samples (`target`), as a string.
    pub target: String,
    /// The requests, in the order lm-eval numbers them (`gen_args_0`, `gen_args_1`, …).
    pub requests: Vec<Request>,
}

/// One metric a task reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    /// lm-eval's name: `acc`, `acc_norm`, `mc1`, `mc2`, `exact_match`; for a task with
    /// filters, the `metric_key` (`exact_match,strict-match`).
    pub name: &'static str,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
}

/// A data file a task read, recorded with the results so numbers can be traced to bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Which split it served (`test`, `validation`, `train`, `dev`, `fewshot`).
    pub split: String,
}

/// An evaluation task.
pub trait Task: Send + Sync {
    /// The task's name in results and metric keys (`arc_challenge`, `mmlu_anatomy`, …).
    fn name(&self) -> &str;

    /// The group whose average this task enters (`mmlu` for its 57 subjects), if any.
    fn group(&self) -> Option<&str> {
        None
    }

    /// Few-shot examples per document.
    fn num_fewshot(&self) -> usize;

    /// The metrics [`Task::process_results`] returns, the leaderboard's first.
    fn metrics(&self) -> &[MetricInfo];

    /// lm-eval's `versions` entry for the task.
    fn version(&self) -> serde_json::Value;

    /// What lm-eval writes under `configs.<task>` (prompt template, splits, few-shot settings),
    /// plus what defines the numbers here (harness semantics).
    fn config(&self) -> serde_json::Value;

    /// The data files read, with their hashes.
    fn data_files(&self) -> Vec<DataFile>;

    /// The documents to evaluate, in the harness's evaluation order (after its shuffle), at
    /// most `limit` of them.
    fn instances(&self, limit: Option<usize>) -> Result<Vec<DocInstance>>;

    /// Per-document metric values from the responses (one per request, in request order).
    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> Result<Vec<(String, f64)>>;

    /// The names of the task's filter pipelines, lm-eval's `filter_list` in order (`none` when
    /// the task has none). With a filter other than `none`, [`Task::process_results`] reports
    /// each metric once per filter under `metric_key``(metric, filter)`.
    fn filters(&self) -> Vec<String> {
        vec![NO_FILTER.to_owned()]
    }

    /// Responses after the named filter (one of [`Task::filters`]), as lm-eval writes
    /// `filtered_resps` (the extracted answer for GSM8K; the responses themselves otherwise).
    /// Strings as lm-eval writes them.
    fn filtered_responses(
        &self,
        _filter: &str,
        _instance: &DocInstance,
        responses: &[Response],
    ) -> Vec<serde_json::Value> {
        responses.iter().map(response_json).collect()
    }

    /// Notes recorded in the results (exemplars excluded from scoring, MC1 standing in for
    /// MC2, …).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// lm-eval's name of the absent filter.
pub(crate) const NO_FILTER: &str = "none";

/// A per-document or aggregated metric's key: the metric's name under the `none` filter
/// (`acc_norm`), `<metric>,<filter>` otherwise (`exact_match,strict-match`), which is
/// lm-eval's results key (`"exact_match,strict-match"`) and what follows `bench/<task>/` in
/// the run store.
pub(crate) fn metric_key(metric: &str, filter: &str) -> String {
    if filter == NO_FILTER {
        metric.to_owned()
    } else {
        format!("{metric},{filter}")
    }
}

/// The metric and the filter of a key made by [`metric_key`] (`none` when it names none).
pub(crate) fn split_metric_key(key: &str) -> (&str, &str) {
    key.split_once(',').unwrap_or((key, NO_FILTER))
}

/// A response as lm-eval writes it in `resps`: `["-12.5", "False"]` (Python's `str` of the
/// float: `-12.0`, `-3.2e-05`) or the generated text.
pub(crate) fn response_json(response: &Response) -> serde_json::Value {
    match response {
        Response::Loglikelihood { logprob, is_greedy } => serde_json::json!([
            crate::output::pyjson::py_float_repr(*logprob),
            if *is_greedy { "True" } else { "False" }
        ]),
        Response::Generated(text) => serde_json::Value::String(text.clone()),
    }
}
