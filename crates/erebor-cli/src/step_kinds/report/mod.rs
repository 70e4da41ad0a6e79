//! The `report` kind: renders the metrics of chosen steps (e.g. both arms of a
//! `matrix: {loss: [dpo, dpop]}` fan-out) into `report.md` and a self-contained `report.html`
//! with inline SVG line charts (arms side by side per metric key, on a shared scale) and a
//! table of final values. It reads the run store named by `EREBOR_DB`.

pub mod render;

use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs, parse_with,
};
use render::{Arm, ReportData};
use serde::Deserialize;
use std::path::Path;

static INFO: StepKindInfo = StepKindInfo {
    name: "report",
    code_version: 1,
    summary: "Render the metrics of chosen steps to report.md and a self-contained report.html with charts",
    outputs: &[
        OutputDecl {
            name: "html",
            ty: OutputType::Report,
            doc: "report.html: SVG line charts per metric key, arms side by side, final values",
        },
        OutputDecl {
            name: "markdown",
            ty: OutputType::Report,
            doc: "report.md: final values and a summary per key",
        },
    ],
};

/// The `with:` block of a `report` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Steps to report: ids, single arms (`train[dpop]`) or matrix bases (every arm).
    pub steps: Vec<String>,
    /// Metric keys to include (default: every key the steps recorded).
    #[serde(default)]
    pub keys: Vec<String>,
    /// The report's title (default: the step id).
    pub title: Option<String>,
}

/// The `report` step kind.
pub struct ReportKind;

impl StepKind for ReportKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        let config: ReportConfig = parse_with(with)?;
        if config.steps.is_empty() {
            return Err(ConfigError::field(
                "steps",
                "list at least one step, e.g. `[train]` for every arm of `train`",
            ));
        }
        Ok(())
    }

    fn input_paths(&self, _with: &serde_json::Value, _base_dir: &Path) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config: ReportConfig = parse_with(&ctx.with)?;
        let url = std::env::var(erebor_engine::protocol::DB_ENV).map_err(|_| {
            StepFailure::bad_input(
                "report needs the run store: EREBOR_DB is not set for the step process",
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StepFailure::unknown(format!("starting a runtime: {e}")))?;
        let arms = runtime.block_on(load_arms(&url, ctx.run_id.as_str(), &config))?;
        let data = ReportData {
            title: config
                .title
                .clone()
                .unwrap_or_else(|| ctx.step_id.to_string()),
            run_id: ctx.run_id.to_string(),
            keys: choose_keys(&config.keys, &arms),
            arms,
        };
        let markdown = ctx.work_dir.join("report.md");
        let html = ctx.work_dir.join("report.html");
        let write = |path: &Path, text: String| {
            std::fs::write(path, text)
                .map_err(|e| StepFailure::unknown(format!("writing {}: {e}", path.display())))
        };
        write(&markdown, render::markdown(&data))?;
        write(&html, render::html(&data))?;
        ctx.metrics
            .record("report/steps", 0, data.arms.len() as f64);
        Ok(StepOutputs::new()
            .with_path("html", &html)
            .with_path("markdown", &markdown))
    }
}

async fn load_arms(
    url: &str,
    run_id: &str,
    config: &ReportConfig,
) -> Result<Vec<Arm>, StepFailure> {
    let store = erebor_store::Store::open(url)
        .await
        .map_err(|e| StepFailure::transient(format!("opening the run store: {e}")))?;
    let steps = store
        .steps_of(&erebor_core::RunId::from(run_id))
        .await
        .map_err(|e| StepFailure::transient(format!("reading the run's steps: {e}")))?;
    let mut arms = Vec::new();
    for selector in &config.steps {
        let chosen = crate::history::select_steps(&steps, selector);
        if chosen.is_empty() {
            return Err(StepFailure::bad_input(format!(
                "with.steps: run {run_id} has no step `{selector}`"
            )));
        }
        for step in chosen {
            if !step.status.is_done() {
                return Err(StepFailure::bad_input(format!(
                    "step `{}` has not finished (status {}); add `{selector}` to this step's `needs:`",
                    step.step_id, step.status
                )));
            }
            // A reused step's curves come through its `reused_from` link, and say so.
            let (series, link) = crate::history::step_series(&store, step)
                .await
                .map_err(|e| {
                    StepFailure::transient(format!("reading metrics of {}: {e}", step.step_id))
                })?;
            arms.push(Arm {
                label: crate::history::mark_reused(step.step_id.to_string(), link.as_ref()),
                series,
            });
        }
    }
    store.close().await;
    Ok(arms)
}

fn choose_keys(wanted: &[String], arms: &[Arm]) -> Vec<String> {
    if !wanted.is_empty() {
        return wanted.to_vec();
    }
    let mut keys: Vec<String> = arms
        .iter()
        .flat_map(|arm| arm.series.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
