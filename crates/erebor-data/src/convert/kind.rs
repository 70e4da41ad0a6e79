//! The `convert` step kind.

use super::config::ConvertConfig;
use super::run::{ConvertEnv, run_convert};
use crate::error::DataError;
use crate::read::expand_local;
use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs,
};
use std::path::{Path, PathBuf};

static INFO: StepKindInfo = StepKindInfo {
    name: "convert",
    code_version: 1,
    summary: "Read datasets (JSONL, JSON, CSV, Parquet, hf://), build SFT or preference rows, split, tokenise",
    outputs: &[
        OutputDecl {
            name: "dataset",
            ty: OutputType::Dataset,
            doc: "the dataset folder: manifest.json, {train,eval}.jsonl and, with a tokenizer, {train,eval}.tokens.jsonl",
        },
        OutputDecl {
            name: "report",
            ty: OutputType::Report,
            doc: "report.json: rows per source, invalid rows, contamination, dedupe, length filter, statistics per split",
        },
        OutputDecl {
            name: "train_rows",
            ty: OutputType::Metric,
            doc: "rows in the train split",
        },
        OutputDecl {
            name: "eval_rows",
            ty: OutputType::Metric,
            doc: "rows in the eval split (0 without one)",
        },
    ],
};

/// The `convert` step kind: see `docs/steps.md` for its `with:` block.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvertKind;

/// The step failure a data error stands for.
pub fn failure_of(error: &DataError) -> StepFailure {
    match error {
        DataError::Cancelled => StepFailure::cancelled("convert was cancelled"),
        error if error.is_transient() => StepFailure::transient(error.to_string()),
        DataError::Io { .. } => StepFailure::unknown(error.to_string()),
        error => StepFailure::bad_input(error.to_string()),
    }
}

impl StepKind for ConvertKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        ConvertConfig::parse(with).map(|_| ())
    }

    /// Every local file the sources and evaluation sets name (globs expanded), the tokenizer
    /// folder and the chat template file.
    fn input_paths(&self, with: &serde_json::Value, base_dir: &Path) -> Vec<PathBuf> {
        let Ok(config) = ConvertConfig::parse(with) else {
            return Vec::new();
        };
        let eval_paths = config
            .contamination
            .iter()
            .flat_map(|contamination| contamination.eval_sets.iter())
            .flat_map(|set| set.path.iter());
        let mut paths: Vec<PathBuf> = config
            .sources
            .iter()
            .flat_map(|source| source.path.iter())
            .chain(eval_paths)
            .filter(|spec| !spec.starts_with("hf://"))
            .filter_map(|spec| expand_local(spec, base_dir).ok())
            .flatten()
            .collect();
        for extra in [&config.tokenizer, &config.chat_template]
            .into_iter()
            .flatten()
        {
            let path = erebor_core::kind::resolve_path(base_dir, extra);
            if path.exists() {
                paths.push(path);
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config = ConvertConfig::parse(&ctx.with)?;
        let env = ConvertEnv {
            base_dir: &ctx.base_dir,
            work_dir: &ctx.work_dir,
            cache_dir: &ctx.cache_dir,
            metrics: ctx.metrics,
            progress: ctx.progress,
            cancel: ctx.cancel.clone(),
        };
        let output = run_convert(&config, &env).map_err(|error| failure_of(&error))?;
        let rows = |split: &str| {
            output
                .report
                .splits
                .get(split)
                .map_or(0, |report| report.rows) as f64
        };
        Ok(StepOutputs::new()
            .with_path("dataset", &output.dataset_dir)
            .with_path("report", &output.report_path)
            .with_metric("train_rows", rows("train"))
            .with_metric("eval_rows", rows("eval")))
    }
}
