//! What an evaluation produced: per-document results ([`DocResult`]), per-task results
//! ([`TaskResult`]), the whole report ([`EvalReport`]) and the tokens it ran ([`TokenCounts`]).

use serde::{Deserialize, Serialize};

use super::aggregate::{GroupResult, LeaderboardAverage, MetricValue};
use crate::task::{DataFile, DocInstance, Response};

/// Input tokens run through the model, padding excluded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// With context sharing (what ran).
    pub forward: u64,
    /// What scoring each request on its own would run (lm-eval's HF backend without its
    /// one-token cache).
    pub unshared: u64,
    /// What lm-eval's HF backend runs with its one-token logits cache (its default): one
    /// forward per `context + continuation[:-1]`, so one per MMLU question.
    #[serde(default)]
    pub lm_eval_hf: u64,
}

impl TokenCounts {
    /// Adds another count.
    pub fn add(&mut self, other: TokenCounts) {
        self.forward += other.forward;
        self.unshared += other.unshared;
        self.lm_eval_hf += other.lm_eval_hf;
    }

    /// `lm_eval_hf / forward`, when anything ran: how many times fewer tokens than lm-eval.
    pub(crate) fn saving_vs_lm_eval(&self) -> Option<f64> {
        (self.forward > 0).then(|| self.lm_eval_hf as f64 / self.forward as f64)
    }

    /// `unshared / forward`, when anything ran.
    pub fn saving(&self) -> Option<f64> {
        (self.forward > 0).then(|| self.unshared as f64 / self.forward as f64)
    }
}

/// One evaluated document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocResult {
    /// The document and its requests.
    pub instance: DocInstance,
    /// One response per request, in request order.
    pub responses: Vec<Response>,
    /// Per filter of the task ([`crate::Task::filters`], in order): its name and the
    /// responses after it, as lm-eval writes `filtered_resps`.
    pub filtered: Vec<(String, Vec<serde_json::Value>)>,
    /// Per-document metric values (`acc`, `acc_norm`, …; `exact_match,strict-match` under a
    /// filter, see `crate::task::metric_key`).
    pub metrics: Vec<(String, f64)>,
    /// Left truncation to the window and similar, recorded per document.
    pub warnings: Vec<String>,
    /// Whether the responses came from the resume cache instead of the model.
    pub from_cache: bool,
}

/// The results of one task.
#[derive(Clone, Debug)]
pub struct TaskResult {
    /// The task's name.
    pub name: String,
    /// The group it belongs to (`mmlu`), if any.
    pub group: Option<String>,
    /// Few-shot examples per document.
    pub num_fewshot: usize,
    /// lm-eval's `versions` entry.
    pub version: serde_json::Value,
    /// lm-eval's `configs` entry.
    pub config: serde_json::Value,
    /// The data files read.
    pub data_files: Vec<DataFile>,
    /// Notes from the task and the evaluator.
    pub notes: Vec<String>,
    /// Aggregated metrics, the task's first metric first.
    pub metrics: Vec<MetricValue>,
    /// Every evaluated document, in evaluation order.
    pub docs: Vec<DocResult>,
    /// Documents in the task before `limit`.
    pub n_original: usize,
    /// Tokens run for the documents scored now (not those from the cache).
    pub tokens: TokenCounts,
    /// Hash of what defines this task's numbers (the resume key).
    pub config_hash: String,
    /// Wall-clock seconds spent on the task.
    pub seconds: f64,
}

impl TaskResult {
    /// Documents whose responses came from the resume cache.
    pub fn cached_docs(&self) -> usize {
        self.docs.iter().filter(|d| d.from_cache).count()
    }

    /// Documents scored by the model in this run.
    pub fn scored_docs(&self) -> usize {
        self.docs.len() - self.cached_docs()
    }

    /// The aggregated value of `metric`.
    pub fn metric(&self, metric: &str) -> Option<&MetricValue> {
        self.metrics.iter().find(|m| m.name == metric)
    }
}

/// Everything one evaluation produced.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// Per task, in the order asked for.
    pub tasks: Vec<TaskResult>,
    /// Group averages (MMLU = mean over its subjects).
    pub groups: Vec<GroupResult>,
    /// The Open LLM Leaderboard v1 average over the tasks present, when any is.
    pub leaderboard: Option<LeaderboardAverage>,
    /// Tokens run over all tasks.
    pub tokens: TokenCounts,
}
