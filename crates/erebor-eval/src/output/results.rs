//! The results file: lm-evaluation-harness 0.4's keys (`results`, `groups`, `group_subtasks`,
//! `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`, `config`, …) plus an
//! `erebor` section with everything that defines the numbers.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::pyjson::{PyValue, py_float_repr};
use crate::evaluator::{EvalReport, EvalSettings, MetricValue, TaskResult};
use crate::task::{Harness, split_metric_key};

/// What was evaluated, how and when: the parts of the results that do not come from the tasks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    /// The model as given (path).
    pub model: String,
    /// sha256 of its weights, config and tokenizer files.
    pub model_sha256: String,
    /// Parameter count.
    pub model_parameters: usize,
    /// Compute dtype (`f32`, `bf16`, …).
    pub dtype: String,
    /// Device (`cpu`, `tch-cpu`, `cuda:0`).
    pub device: String,
    /// Whose semantics the prompts follow.
    pub harness: Harness,
    /// Few-shot sampler seed when set explicitly.
    pub fewshot_seed: Option<u64>,
    /// Batching and tokenisation settings.
    pub settings: EvalSettings,
    /// The context window used.
    pub max_length: usize,
    /// The resume cache folder, when one is used.
    pub cache_dir: Option<PathBuf>,
    /// Start, Unix seconds.
    pub start_time: f64,
    /// End, Unix seconds.
    pub end_time: f64,
    /// lm-eval's `date_id` used in file names (`2026-11-30T20-40-12.123456`).
    pub date_id: String,
}

fn metric_entries(alias: &str, metrics: &[MetricValue]) -> PyValue {
    let mut entries = vec![("alias".to_owned(), PyValue::str(alias))];
    for m in metrics {
        let (metric, filter) = split_metric_key(&m.name);
        entries.push((format!("{metric},{filter}"), PyValue::Float(m.value)));
        let se = m.stderr.map_or(PyValue::str("N/A"), PyValue::Float);
        entries.push((format!("{metric}_stderr,{filter}"), se));
    }
    PyValue::Dict(entries)
}

/// lm-eval's `higher_is_better` entry: by metric name, once per metric whatever its filters.
fn higher_is_better(metrics: &[MetricValue]) -> PyValue {
    let mut seen: Vec<&str> = Vec::new();
    let mut entries = Vec::new();
    for m in metrics {
        let (metric, _) = split_metric_key(&m.name);
        if !seen.contains(&metric) {
            seen.push(metric);
            entries.push((metric.to_owned(), PyValue::Bool(m.higher_is_better)));
        }
    }
    PyValue::Dict(entries)
}

fn json(value: &serde_json::Value) -> PyValue {
    PyValue::from(value)
}

/// Per-task sections keyed by task (and group) name.
struct Sections {
    results: Vec<(String, PyValue)>,
    groups: Vec<(String, PyValue)>,
    subtasks: Vec<(String, PyValue)>,
    configs: Vec<(String, PyValue)>,
    versions: Vec<(String, PyValue)>,
    n_shot: Vec<(String, PyValue)>,
    higher: Vec<(String, PyValue)>,
    n_samples: Vec<(String, PyValue)>,
}

fn sections(report: &EvalReport) -> Sections {
    let mut s = Sections {
        results: vec![],
        groups: vec![],
        subtasks: vec![],
        configs: vec![],
        versions: vec![],
        n_shot: vec![],
        higher: vec![],
        n_samples: vec![],
    };
    for group in &report.groups {
        let entry = metric_entries(&group.name, &group.metrics);
        s.results.push((group.name.clone(), entry.clone()));
        s.groups.push((group.name.clone(), entry));
        let names = group
            .tasks
            .iter()
            .map(|t| PyValue::str(t.as_str()))
            .collect();
        s.subtasks.push((group.name.clone(), PyValue::List(names)));
        if let Some(k) = group.num_fewshot {
            s.n_shot.push((group.name.clone(), PyValue::Int(k as i128)));
        }
        s.higher
            .push((group.name.clone(), higher_is_better(&group.metrics)));
    }
    for task in &report.tasks {
        let alias = match &task.group {
            Some(_) => format!(" - {}", task.name),
            None => task.name.clone(),
        };
        let name = task.name.clone();
        s.results
            .push((name.clone(), metric_entries(&alias, &task.metrics)));
        if task.group.is_none() {
            s.subtasks.push((name.clone(), PyValue::List(vec![])));
        }
        s.configs.push((name.clone(), json(&task.config)));
        s.versions.push((name.clone(), json(&task.version)));
        s.n_shot
            .push((name.clone(), PyValue::Int(task.num_fewshot as i128)));
        s.higher
            .push((name.clone(), higher_is_better(&task.metrics)));
        s.n_samples.push((
            name,
            PyValue::dict([
                ("original", PyValue::Int(task.n_original as i128)),
                ("effective", PyValue::Int(task.docs.len() as i128)),
            ]),
        ));
    }
    for list in [
        &mut s.configs,
        &mut s.versions,
        &mut s.n_shot,
        &mut s.higher,
    ] {
        list.sort_by(|a, b| a.0.cmp(&b.0));
    }
    s
}

/// lm-eval's `config` section.
fn config_section(info: &RunInfo) -> PyValue {
    let model_args = format!("pretrained={},dtype={}", info.model, info.dtype);
    let fewshot_seed = info.fewshot_seed.unwrap_or(match info.harness {
        Harness::B281b09 => 42,
        Harness::V04 => 1234,
    });
    let optional = |v: Option<usize>| v.map_or(PyValue::Null, |v| PyValue::Int(v as i128));
    PyValue::dict([
        ("model", PyValue::str("erebor")),
        ("model_args", PyValue::Str(model_args)),
        (
            "model_num_parameters",
            PyValue::Int(info.model_parameters as i128),
        ),
        ("model_dtype", PyValue::str(info.dtype.as_str())),
        ("model_revision", PyValue::str("main")),
        ("model_sha", PyValue::str(info.model_sha256.as_str())),
        ("batch_size", PyValue::Int(info.settings.batch_size as i128)),
        ("batch_sizes", PyValue::List(vec![])),
        ("device", PyValue::str(info.device.as_str())),
        (
            "use_cache",
            info.cache_dir
                .as_ref()
                .map_or(PyValue::Null, |p| PyValue::Str(p.display().to_string())),
        ),
        ("limit", optional(info.settings.limit)),
        ("bootstrap_iters", PyValue::Int(0)),
        ("gen_kwargs", PyValue::Null),
        ("random_seed", PyValue::Null),
        ("numpy_seed", PyValue::Null),
        ("torch_seed", PyValue::Null),
        ("fewshot_seed", PyValue::Int(i128::from(fewshot_seed))),
    ])
}

fn task_erebor(task: &TaskResult) -> PyValue {
    let files = task.data_files.iter().map(|f| {
        PyValue::dict([
            ("path", PyValue::Str(f.path.display().to_string())),
            ("split", PyValue::str(f.split.as_str())),
            ("sha256", PyValue::str(f.sha256.as_str())),
        ])
    });
    PyValue::dict([
        ("data_files", PyValue::List(files.collect())),
        ("config_sha256", PyValue::str(task.config_hash.as_str())),
        ("documents_scored", PyValue::Int(task.scored_docs() as i128)),
        (
            "documents_from_cache",
            PyValue::Int(task.cached_docs() as i128),
        ),
        (
            "forward_tokens",
            PyValue::Int(i128::from(task.tokens.forward)),
        ),
        (
            "forward_tokens_unshared",
            PyValue::Int(i128::from(task.tokens.unshared)),
        ),
        (
            "forward_tokens_lm_eval_hf",
            PyValue::Int(i128::from(task.tokens.lm_eval_hf)),
        ),
        ("seconds", PyValue::Float(task.seconds)),
        (
            "notes",
            PyValue::List(
                task.notes
                    .iter()
                    .map(|n| PyValue::str(n.as_str()))
                    .collect(),
            ),
        ),
    ])
}

/// The `erebor` section: what defines the numbers, token counts, notes, leaderboard average.
fn erebor_section(report: &EvalReport, info: &RunInfo) -> PyValue {
    let s = &info.settings;
    let leaderboard = report.leaderboard.as_ref().map_or(PyValue::Null, |lb| {
        json(&serde_json::to_value(lb).expect("leaderboard serialises"))
    });
    let saving = report.tokens.saving().map_or(PyValue::Null, PyValue::Float);
    PyValue::dict([
        ("version", PyValue::str(env!("CARGO_PKG_VERSION"))),
        ("harness", PyValue::str(info.harness.as_str())),
        (
            "harness_commit",
            PyValue::str(match info.harness {
                Harness::B281b09 => "b281b0921b636bc36ad05c0b0b0763bd6dd43463",
                Harness::V04 => "lm-evaluation-harness 0.4",
            }),
        ),
        ("chat_template", PyValue::str("none")),
        ("add_bos", PyValue::Bool(s.add_bos)),
        ("dtype", PyValue::str(info.dtype.as_str())),
        ("device", PyValue::str(info.device.as_str())),
        ("batch_size", PyValue::Int(s.batch_size as i128)),
        ("max_batch_tokens", PyValue::Int(s.max_batch_tokens as i128)),
        ("share_contexts", PyValue::Bool(s.share_contexts)),
        ("max_length", PyValue::Int(info.max_length as i128)),
        ("model_path", PyValue::str(info.model.as_str())),
        ("model_sha256", PyValue::str(info.model_sha256.as_str())),
        (
            "forward_tokens",
            PyValue::Int(i128::from(report.tokens.forward)),
        ),
        (
            "forward_tokens_unshared",
            PyValue::Int(i128::from(report.tokens.unshared)),
        ),
        (
            "forward_tokens_lm_eval_hf",
            PyValue::Int(i128::from(report.tokens.lm_eval_hf)),
        ),
        ("forward_token_saving", saving),
        (
            "tasks",
            PyValue::dict(
                report
                    .tasks
                    .iter()
                    .map(|t| (t.name.clone(), task_erebor(t))),
            ),
        ),
        ("leaderboard", leaderboard),
    ])
}

/// The whole results document.
pub(crate) fn results_document(report: &EvalReport, info: &RunInfo) -> PyValue {
    let s = sections(report);
    let mut entries: Vec<(String, PyValue)> = vec![("results".into(), PyValue::Dict(s.results))];
    if !s.groups.is_empty() {
        entries.push(("groups".into(), PyValue::Dict(s.groups)));
    }
    let name = super::files::sanitize_model_name(&info.model);
    entries.extend([
        ("group_subtasks".into(), PyValue::Dict(s.subtasks)),
        ("configs".into(), PyValue::Dict(s.configs)),
        ("versions".into(), PyValue::Dict(s.versions)),
        ("n-shot".into(), PyValue::Dict(s.n_shot)),
        ("higher_is_better".into(), PyValue::Dict(s.higher)),
        ("n-samples".into(), PyValue::Dict(s.n_samples)),
        ("config".into(), config_section(info)),
        ("git_hash".into(), PyValue::Null),
        ("date".into(), PyValue::Float(info.start_time)),
        ("model_source".into(), PyValue::str("erebor")),
        ("model_name".into(), PyValue::str(info.model.as_str())),
        ("model_name_sanitized".into(), PyValue::Str(name)),
        ("system_instruction".into(), PyValue::Null),
        ("system_instruction_sha".into(), PyValue::Null),
        ("fewshot_as_multiturn".into(), PyValue::Bool(false)),
        ("chat_template".into(), PyValue::Null),
        ("chat_template_sha".into(), PyValue::Null),
        ("start_time".into(), PyValue::Float(info.start_time)),
        ("end_time".into(), PyValue::Float(info.end_time)),
        (
            "total_evaluation_time_seconds".into(),
            PyValue::Str(py_float_repr(info.end_time - info.start_time)),
        ),
        ("erebor".into(), erebor_section(report, info)),
    ]);
    PyValue::Dict(entries)
}
