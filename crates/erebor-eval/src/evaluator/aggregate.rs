//! From per-document metric values to task scores, group averages and the Open LLM
//! Leaderboard (v1) average.
//!
//! - A task's metric is the mean over its documents; its standard error is lm-eval's
//!   `mean_stderr`: the sample standard deviation (n − 1) over √n (none below two documents).
//! - A group's metric (MMLU) under b281b09 is the unweighted mean over its tasks, as the
//!   leaderboard averages MMLU's 57 subjects, with lm-eval 0.4.13's `unweighted_mean_stderr`
//!   √(Σ seᵢ²) / k; under `harness: v0.4` it is lm-eval 0.4.13's (`weight_by_size: true` in
//!   its mmlu group): the mean weighted by documents, with `pooled_sample_stderr`
//!   √(Σ (nᵢ − 1) nᵢ seᵢ² / (Σ nᵢ − k) / Σ nᵢ).
//! - The leaderboard average is the mean of ARC-Challenge `acc_norm`, HellaSwag `acc_norm`, MMLU
//!   acc, TruthfulQA mc2, WinoGrande acc and GSM8K exact match (b281b09 calls it `acc`; under
//!   `harness: v0.4` its strict-match filter's, `exact_match,strict-match`) over
//!   those present; the result
//!   names the ones it covers, and says so when TruthfulQA's mc1 stands in for mc2.

use serde::{Deserialize, Serialize};

use super::{DocResult, TaskResult};
use crate::task::MetricInfo;

/// An aggregated metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// lm-eval's name (`acc`, `acc_norm`, `mc2`, `exact_match`, …).
    pub name: String,
    /// The mean over documents (or tasks, for a group).
    pub value: f64,
    /// Its standard error; `None` (lm-eval's "N/A") below two documents.
    pub stderr: Option<f64>,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
}

/// lm-eval's `mean_stderr`: sample standard deviation over √n; `None` below two values.
pub(crate) fn mean_stderr(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(var.sqrt() / (n as f64).sqrt())
}

/// The task's metrics over its documents: the declared ones first, in order, then any other
/// metric the documents report.
pub(crate) fn aggregate_task(declared: &[MetricInfo], docs: &[DocResult]) -> Vec<MetricValue> {
    let mut names: Vec<(String, bool)> = declared
        .iter()
        .map(|m| (m.name.to_owned(), m.higher_is_better))
        .collect();
    for doc in docs {
        for (name, _) in &doc.metrics {
            if !names.iter().any(|(n, _)| n == name) {
                names.push((name.clone(), true));
            }
        }
    }
    names
        .into_iter()
        .filter_map(|(name, higher_is_better)| {
            let values: Vec<f64> = docs
                .iter()
                .filter_map(|d| d.metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .collect();
            (!values.is_empty()).then(|| MetricValue {
                value: values.iter().sum::<f64>() / values.len() as f64,
                stderr: mean_stderr(&values),
                name,
                higher_is_better,
            })
        })
        .collect()
}

/// A group's average over its tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    /// The group's name (`mmlu`).
    pub name: String,
    /// Its tasks, in evaluation order.
    pub tasks: Vec<String>,
    /// Metrics every task of the group reports, averaged over the tasks (weighted by their
    /// documents when `weight_by_size`).
    pub metrics: Vec<MetricValue>,
    /// lm-eval 0.4's `weight_by_size` (under `harness: v0.4`; the leaderboard's b281b09
    /// average is unweighted).
    #[serde(default)]
    pub weight_by_size: bool,
    /// Few-shot examples, when every task uses the same number.
    pub num_fewshot: Option<usize>,
}

/// The groups of `tasks`, in order of first appearance.
pub(crate) fn group_results(tasks: &[TaskResult]) -> Vec<GroupResult> {
    let mut names: Vec<&str> = Vec::new();
    for task in tasks {
        if let Some(group) = task.group.as_deref()
            && !names.contains(&group)
        {
            names.push(group);
        }
    }
    names
        .into_iter()
        .map(|group| {
            let members: Vec<&TaskResult> = tasks
                .iter()
                .filter(|t| t.group.as_deref() == Some(group))
                .collect();
            let weight_by_size = members.iter().all(|t| is_v04(t));
            let metrics = members[0]
                .metrics
                .iter()
                .filter_map(|first| {
                    let values: Vec<(&MetricValue, usize)> = members
                        .iter()
                        .filter_map(|t| Some((t.metric(&first.name)?, t.docs.len())))
                        .collect();
                    (values.len() == members.len())
                        .then(|| group_metric(first, &values, weight_by_size))
                })
                .collect();
            let shots = members[0].num_fewshot;
            GroupResult {
                name: group.to_owned(),
                tasks: members.iter().map(|t| t.name.clone()).collect(),
                metrics,
                weight_by_size,
                num_fewshot: members
                    .iter()
                    .all(|t| t.num_fewshot == shots)
                    .then_some(shots),
            }
        })
        .collect()
}

/// Whether a task follows lm-eval 0.4 (its config's `erebor.harness`).
fn is_v04(task: &TaskResult) -> bool {
    task.config["erebor"]["harness"].as_str() == Some(crate::task::Harness::V04.as_str())
}

/// lm-eval 0.4.13's `pooled_sample_stderr(stderrs, sizes)`.
pub(crate) fn pooled_sample_stderr(stderrs: &[f64], sizes: &[usize]) -> f64 {
    let total: usize = sizes.iter().sum();
    let pooled_var = stderrs
        .iter()
        .zip(sizes)
        .map(|(se, &n)| (n as f64 - 1.0) * se * se * n as f64)
        .sum::<f64>()
        / (total as f64 - sizes.len() as f64);
    (pooled_var / total as f64).sqrt()
}

/// lm-eval 0.4.13's `unweighted_mean_stderr`: √(Σ seᵢ²) / k.
pub(crate) fn unweighted_mean_stderr(stderrs: &[f64]) -> f64 {
    stderrs.iter().map(|s| s * s).sum::<f64>().sqrt() / stderrs.len() as f64
}

/// A group's metric from its tasks' (value, documents), as lm-eval 0.4.13's group
/// aggregation computes it; no stderr when a task has none (lm-eval's "N/A").
fn group_metric(
    first: &MetricValue,
    values: &[(&MetricValue, usize)],
    weight_by_size: bool,
) -> MetricValue {
    let sizes: Vec<usize> = values
        .iter()
        .map(|(_, n)| if weight_by_size { *n } else { 1 })
        .collect();
    let total: usize = sizes.iter().sum();
    let value = values
        .iter()
        .zip(&sizes)
        .map(|((v, _), &n)| v.value * n as f64)
        .sum::<f64>()
        / total as f64;
    let stderrs: Option<Vec<f64>> = values.iter().map(|(v, _)| v.stderr).collect();
    let stderr = stderrs.map(|s| {
        if weight_by_size {
            let docs: Vec<usize> = values.iter().map(|(_, n)| *n).collect();
            pooled_sample_stderr(&s, &docs)
        } else {
            unweighted_mean_stderr(&s)
        }
    });
    MetricValue {
        name: first.name.clone(),
        value,
        stderr,
        higher_is_better: first.higher_is_better,
    }
}

/// One benchmark's contribution to the leaderboard average.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardEntry {
    /// The leaderboard's benchmark (`ARC`, `HellaSwag`, `MMLU`, `TruthfulQA`, `Winogrande`,
    /// `GSM8K`).
    pub benchmark: String,
    /// The task or group it was read from.
    pub task: String,
    /// The metric used.
    pub metric: String,
    /// Its value.
    pub value: f64,
}

/// The Open LLM Leaderboard v1 average over the benchmarks present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardAverage {
    /// The mean of the entries' values.
    pub value: f64,
    /// The benchmarks covered.
    pub entries: Vec<LeaderboardEntry>,
    /// The benchmarks missing (the average is the leaderboard's only when none is).
    pub missing: Vec<String>,
    /// Substitutions made (mc1 for mc2).
    pub notes: Vec<String>,
}

/// The six benchmarks: name, the task or group to read, and the metrics to try in order.
const BENCHMARKS: [(&str, &str, &[&str]); 6] = [
    ("ARC", "arc_challenge", &["acc_norm"]),
    ("HellaSwag", "hellaswag", &["acc_norm"]),
    ("MMLU", "mmlu", &["acc"]),
    ("TruthfulQA", "truthfulqa", &["mc2", "mc1"]),
    ("Winogrande", "winogrande", &["acc"]),
    // b281b09 names GSM8K's exact match `acc`; lm-eval 0.4 reports it under two filters and
    // the leaderboard's is strict-match (the `#### N` answer); plain `exact_match` is a custom
    // task's.
    (
        "GSM8K",
        "gsm8k",
        &["exact_match,strict-match", "exact_match", "acc"],
    ),
];

/// The leaderboard average over the benchmarks among `tasks` and `groups`; `None` when none is.
/// A TruthfulQA task is any whose name starts with `truthfulqa`.
pub(crate) fn leaderboard_average(
    tasks: &[TaskResult],
    groups: &[GroupResult],
) -> Option<LeaderboardAverage> {
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    for (benchmark, source, metrics) in BENCHMARKS {
        let found = metrics.iter().find_map(|metric| {
            let from_group = groups.iter().filter(|g| g.name == source).find_map(|g| {
                Some((
                    g.name.clone(),
                    g.metrics.iter().find(|m| m.name == *metric)?,
                ))
            });
            let from_task = tasks
                .iter()
                .filter(|t| {
                    t.name == source || (source == "truthfulqa" && t.name.starts_with(source))
                })
                .find_map(|t| Some((t.name.clone(), t.metric(metric)?)));
            from_group
                .or(from_task)
                .map(|(task, m)| (task, *metric, m.value))
        });
        match found {
            Some((task, metric, value)) => {
                if benchmark == "TruthfulQA" && metric != metrics[0] {
                    notes.push(format!(
                        "{benchmark}: {metric} stands in for {} (the data has no {} labels)",
                        metrics[0], metrics[0]
                    ));
                }
                entries.push(LeaderboardEntry {
                    benchmark: benchmark.to_owned(),
                    task,
                    metric: metric.to_owned(),
                    value,
                });
            }
            None => missing.push(benchmark.to_owned()),
        }
    }
    if entries.is_empty() {
        return None;
    }
    let value = entries.iter().map(|e| e.value).sum::<f64>() / entries.len() as f64;
    Some(LeaderboardAverage {
        value,
        entries,
        missing,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_stderr_is_sample_std_over_sqrt_n() {
        // values 1, 0, 1, 1: mean 0.75, sample variance 0.25, std 0.5, / 2.
        assert!((mean_stderr(&[1.0, 0.0, 1.0, 1.0]).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(mean_stderr(&[1.0]), None);
    }
}
