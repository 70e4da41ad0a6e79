//! The `eval` step kind: evaluate a model on leaderboard or custom tasks inside a workflow.
//!
//! ```yaml
//! - id: bench
//!   uses: eval
//!   with:
//!     model: ${{ steps.train.outputs.model }}   # or a path: HF folder or .gguf
//!     tasks: [arc_challenge, hellaswag, tasks/my-task.yaml]
//!     data_dir: ../shared/data/leaderboard      # <task>_<split>.jsonl files, or hf://datasets/...
//!     num_fewshot: 5                            # default: each task's own
//!     limit: 100                                # documents per task
//!   expect: {bench/arc_challenge/acc_norm: ">= 0.3"}
//! ```
//!
//! Metrics are recorded as `bench/<task>/<metric>` (and `…_stderr`), `bench/<group>/<metric>`
//! and `bench/leaderboard/average`, apart from training's `eval/…` keys.

use std::path::{Path, PathBuf};

use erebor_core::kind::resolve_path;
use erebor_core::{
    ConfigError, FailureClass, OutputDecl, OutputType, StepContext, StepFailure, StepKind,
    StepKindInfo, StepOutputs,
};
use erebor_model::DeviceSpec;
use erebor_model::device::parse_dtype;
use serde::Deserialize;

use crate::error::EvalError;
use crate::evaluator::specs::{TaskSpec, build_tasks, check_builtin_names};
use crate::evaluator::{EvalReport, EvalSettings, Hooks, JobOptions, LoadedModel, run_job};
use crate::task::{Harness, TaskOptions, metric_key, split_metric_key};

/// Bump when a change alters what the kind produces from the same inputs.
/// 2: GSM8K under `harness: v0.4` reports both lm-eval filters (new metric keys, samples).
const CODE_VERSION: u32 = 2;

const OUTPUTS: [OutputDecl; 2] = [
    OutputDecl {
        name: "results",
        ty: OutputType::File,
        doc: "results_<date>.json: lm-eval 0.4's keys plus an `erebor` section (what defines the numbers)",
    },
    OutputDecl {
        name: "samples",
        ty: OutputType::File,
        doc: "the folder of samples_<task>_<date>.jsonl files, one line per document as lm-eval writes them",
    },
];

static INFO: StepKindInfo = StepKindInfo {
    name: "eval",
    code_version: CODE_VERSION,
    summary: "evaluate a model on Open LLM Leaderboard or custom tasks with lm-evaluation-harness semantics",
    outputs: &OUTPUTS,
};

fn yes() -> bool {
    true
}

/// The `with:` block of an `eval` step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalStepConfig {
    /// Hugging Face folder or GGUF file.
    pub model: String,
    /// Leaderboard task names (`arc_challenge`, `mmlu`, …) or custom task files (`.yaml`).
    pub tasks: Vec<String>,
    /// Few-shot examples (default: each task's own).
    #[serde(default)]
    pub num_fewshot: Option<usize>,
    /// Documents per task, after the harness's shuffle.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Folder of `<task>_<split>.jsonl` files for the leaderboard tasks.
    #[serde(default)]
    pub data_dir: Option<String>,
    /// `b281b09` (the leaderboard's, default) or `v0.4`.
    #[serde(default)]
    pub harness: Harness,
    /// `cpu` (default), `tch-cpu` or `cuda:N`; any other spelling fails to parse, so
    /// `erebor validate` points at it.
    #[serde(default)]
    pub device: DeviceSpec,
    /// Compute dtype (default: f32 on CPU, bf16 on CUDA).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Sequences per forward pass.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Tokens per forward pass.
    #[serde(default)]
    pub max_batch_tokens: Option<usize>,
    /// JSONL file the GSM8K exemplars come from.
    #[serde(default)]
    pub gsm8k_exemplars: Option<String>,
    /// Few-shot sampler seed (default: the harness's).
    #[serde(default)]
    pub fewshot_seed: Option<u64>,
    /// Context window (default: the model's).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Prepend BOS (off, as lm-eval for Hugging Face models).
    #[serde(default)]
    pub add_bos: bool,
    /// Compute a shared context once (default on; results are the same).
    #[serde(default = "yes")]
    pub share_contexts: bool,
    /// Keep finished documents and skip them when the step runs again (default on).
    #[serde(default = "yes")]
    pub resume: bool,
}

impl EvalStepConfig {
    /// Parses and checks a `with:` block.
    pub fn parse(with: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self = erebor_core::parse_with(with)?;
        if config.tasks.is_empty() {
            return Err(ConfigError::field("tasks", "name at least one task"));
        }
        let specs: Vec<TaskSpec> = config.tasks.iter().map(|t| TaskSpec::parse(t)).collect();
        check_builtin_names(&specs).map_err(|e| ConfigError::field("tasks", e.to_string()))?;
        let builtin = specs.iter().any(|s| matches!(s, TaskSpec::Builtin(_)));
        if builtin && config.data_dir.is_none() {
            return Err(ConfigError::field(
                "data_dir",
                "leaderboard tasks need data_dir: a folder of <task>_<split>.jsonl files \
                 (arc_challenge_test.jsonl, mmlu_dev.jsonl, …; see docs/eval.md)",
            ));
        }
        if !config.device.is_compiled_in() {
            return Err(ConfigError::field(
                "device",
                format!("{} needs erebor built with --features tch", config.device),
            ));
        }
        if let Some(dtype) = &config.dtype {
            parse_dtype(dtype).map_err(|e| ConfigError::field("dtype", e.to_string()))?;
        }
        for (key, value) in [
            ("batch_size", config.batch_size),
            ("max_batch_tokens", config.max_batch_tokens),
            ("limit", config.limit),
            ("max_length", config.max_length),
        ] {
            if value == Some(0) {
                return Err(ConfigError::field(key, "must be greater than 0"));
            }
        }
        Ok(config)
    }

    /// Batching and tokenisation settings.
    pub fn settings(&self) -> EvalSettings {
        let defaults = EvalSettings::default();
        EvalSettings {
            batch_size: self.batch_size.unwrap_or(defaults.batch_size),
            max_batch_tokens: self.max_batch_tokens.unwrap_or(defaults.max_batch_tokens),
            share_contexts: self.share_contexts,
            add_bos: self.add_bos,
            max_length: self.max_length,
            limit: self.limit,
        }
    }

    /// Task options with local paths resolved against `base_dir` (`hf://` references are
    /// kept, to resolve through the Hub cache `hub_cache`).
    pub(crate) fn task_options(&self, base_dir: &Path, hub_cache: &Path) -> TaskOptions {
        let local = |p: &String| {
            if p.starts_with(crate::hub::HUB_PREFIX) {
                PathBuf::from(p)
            } else {
                resolve_path(base_dir, p)
            }
        };
        TaskOptions {
            data_dir: self.data_dir.as_ref().map_or_else(PathBuf::new, local),
            num_fewshot: self.num_fewshot,
            harness: self.harness,
            gsm8k_exemplars: self.gsm8k_exemplars.as_ref().map(local),
            fewshot_seed: self.fewshot_seed,
            hub_cache: hub_cache.to_path_buf(),
        }
    }
}

/// The `eval` step kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalKind;

/// An `hf://models/...` reference the model mirror cannot resolve, as an evaluation error.
pub(crate) fn model_ref_error(
    spec: &str,
    error: &erebor_core::hub_models::ModelRefError,
) -> EvalError {
    EvalError::Hub {
        uri: spec.to_owned(),
        message: error
            .to_string()
            .strip_prefix(&format!("{spec}: "))
            .map_or_else(|| error.to_string(), str::to_owned),
        transient: false,
    }
}

/// The failure class of an evaluation error.
pub fn failure_of(error: &EvalError) -> StepFailure {
    let class = match error {
        EvalError::Io { .. }
        | EvalError::Hub {
            transient: true, ..
        } => FailureClass::Unknown,
        EvalError::Cancelled { .. } => FailureClass::Cancelled,
        EvalError::Model(_)
        | EvalError::Data { .. }
        | EvalError::Hub { .. }
        | EvalError::Task { .. } => FailureClass::BadInput,
        EvalError::Document { .. } => FailureClass::Fatal,
    };
    StepFailure::new(class, error.to_string())
}

/// Records `bench/<task>/<metric>` (and `_stderr`), group and leaderboard metrics. A metric
/// under a filter keeps lm-eval's results key: `bench/gsm8k/exact_match,strict-match` and
/// `bench/gsm8k/exact_match_stderr,strict-match`.
pub fn record_metrics(report: &EvalReport, sink: &dyn erebor_core::MetricsSink) {
    let record = |key: String, value: f64| sink.record(&key, 0, value);
    for task in &report.tasks {
        for m in &task.metrics {
            record(format!("bench/{}/{}", task.name, m.name), m.value);
            if let Some(se) = m.stderr {
                let (metric, filter) = split_metric_key(&m.name);
                let key = metric_key(&format!("{metric}_stderr"), filter);
                record(format!("bench/{}/{key}", task.name), se);
            }
        }
    }
    for group in &report.groups {
        for m in &group.metrics {
            record(format!("bench/{}/{}", group.name, m.name), m.value);
        }
    }
    if let Some(lb) = &report.leaderboard {
        record("bench/leaderboard/average".into(), lb.value);
    }
}

impl StepKind for EvalKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        EvalStepConfig::parse(with).map(|_| ())
    }

    fn plan_notes(&self, with: &serde_json::Value, base_dir: &Path) -> Vec<String> {
        let Ok(config) = EvalStepConfig::parse(with) else {
            return Vec::new();
        };
        let check = erebor_core::hub_models::resolve_model(base_dir, &config.model)
            .ok()
            .and_then(|dir| crate::plan_memory::memory_check(&config, &dir));
        match check {
            Some(check) => vec![check.line],
            None => vec![format!(
                "memory: estimated when the step starts (no model config at `{}` yet)",
                config.model
            )],
        }
    }

    fn plan_refusal(&self, with: &serde_json::Value, base_dir: &Path) -> Option<String> {
        let config = EvalStepConfig::parse(with).ok()?;
        let dir = erebor_core::hub_models::resolve_model(base_dir, &config.model).ok()?;
        crate::plan_memory::memory_refusal(&config, &dir)
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config = EvalStepConfig::parse(&ctx.with)?;
        let device = config.device;
        let dtype = match &config.dtype {
            Some(d) => Some(parse_dtype(d).map_err(|e| StepFailure::bad_input(e.to_string()))?),
            None => None,
        };
        let specs: Vec<TaskSpec> = config
            .tasks
            .iter()
            .map(|t| TaskSpec::parse(t).resolved(&ctx.base_dir))
            .collect();
        let tasks = build_tasks(&specs, &config.task_options(&ctx.base_dir, &ctx.cache_dir))
            .map_err(|error| failure_of(&error))?;
        let cache_root = config.resume.then(|| ctx.cache_dir.join("eval"));
        let model_dir = ctx
            .resolve_model(&config.model)
            .map_err(|e| failure_of(&model_ref_error(&config.model, &e)))?;
        let model =
            LoadedModel::load_with_hash_memo(&model_dir, device, dtype, cache_root.as_deref())
                .map_err(|error| failure_of(&error))?;
        let output_dir = ctx.work_dir.join("eval");
        if output_dir.exists() {
            std::fs::remove_dir_all(&output_dir).map_err(|e| {
                StepFailure::unknown(format!("clearing {}: {e}", output_dir.display()))
            })?;
        }
        let options = JobOptions {
            settings: config.settings(),
            harness: config.harness,
            fewshot_seed: config.fewshot_seed,
            output_dir: output_dir.clone(),
            cache_root,
        };
        let hooks = Hooks {
            progress: ctx.progress,
            cancel: Some(&ctx.cancel),
        };
        let out = run_job(&model, &tasks, &options, hooks).map_err(|error| failure_of(&error))?;
        record_metrics(&out.report, ctx.metrics);
        for task in &out.report.tasks {
            tracing::info!(
                task = %task.name,
                scored = task.scored_docs(),
                from_cache = task.cached_docs(),
                forward_tokens = task.tokens.forward,
                unshared_tokens = task.tokens.unshared,
                "evaluated"
            );
        }
        Ok(StepOutputs::new()
            .with_path("results", &out.files.results)
            .with_path("samples", &output_dir))
    }
}
