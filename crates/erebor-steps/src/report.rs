//! The `report` kind: the report of the run it belongs to, as `erebor report RUN` makes it (the
//! same `write`): a self-contained `report.html` (summary, step timeline, `expect:` results,
//! the chosen steps' curves with the arms of a fan-out overlaid, evaluation and MT-Bench
//! tables), `report.md`, and each chart as SVG and PNG in `charts/`.
//!
//! It never opens the run store: the runner gathers the report's data (an
//! [`erebor_report::Report`] for the step's [`ReportConfig`]) before the step starts and hands it
//! over as JSON through the step protocol (the request's run-data file,
//! [`StepContext::run_data`]).

mod write;

pub use write::{WriteError, write};

use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs, parse_with,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The kind's name, as `uses:` spells it (the runner gathers run data for this kind).
pub const KIND: &str = "report";

static INFO: StepKindInfo = StepKindInfo {
    name: KIND,
    code_version: 2,
    summary: "Render the run's summary and the curves of chosen steps to a self-contained report.html, report.md and PNG charts",
    outputs: &[
        OutputDecl {
            name: "html",
            ty: OutputType::Report,
            doc: "report.html: summary, step timeline, expect: results, curves (arms overlaid), evaluation and MT-Bench",
        },
        OutputDecl {
            name: "markdown",
            ty: OutputType::Report,
            doc: "report.md: the summary and tables",
        },
        OutputDecl {
            name: "charts",
            ty: OutputType::File,
            doc: "charts/: every chart as NAME.svg and NAME.png",
        },
    ],
};

/// The `with:` block of a `report` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Steps to chart: ids, single arms (`train[dpop]`) or matrix bases (every arm).
    pub steps: Vec<String>,
    /// Metric keys to chart (default: every key with more than one point).
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

    fn input_paths(&self, _with: &serde_json::Value, _base_dir: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    fn needs_run_data(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config: ReportConfig = parse_with(&ctx.with)?;
        let report = read_run_data(ctx.run_data.as_deref())?;
        check_finished(&report, &config)?;
        let (html, markdown) =
            write(&report, &ctx.work_dir).map_err(|e| StepFailure::unknown(e.to_string()))?;
        ctx.metrics
            .record("report/charts", 0, report.charts.len() as f64);
        Ok(StepOutputs::new()
            .with_path("html", &html)
            .with_path("markdown", &markdown)
            .with_path("charts", ctx.work_dir.join("charts")))
    }
}

/// The report data the runner gathered for this attempt, from the file the request names.
fn read_run_data(path: Option<&Path>) -> Result<erebor_report::Report, StepFailure> {
    let path = path.ok_or_else(|| {
        StepFailure::bad_input(
            "report needs the run's data: the request names no run-data file (runner and step binaries differ?)",
        )
    })?;
    let bytes = std::fs::read(path)
        .map_err(|e| StepFailure::unknown(format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StepFailure::unknown(format!("reading {}: {e}", path.display())))
}

/// Every step the report charts must have finished: its `needs:` must name them.
fn check_finished(
    report: &erebor_report::Report,
    config: &ReportConfig,
) -> Result<(), StepFailure> {
    for step in &report.steps {
        let chosen = config.steps.iter().any(|s| {
            let normalised = erebor_workflow::matrix::normalise_id(s);
            step.id == normalised || step.id.split('[').next() == Some(normalised.as_str())
        });
        if chosen && !matches!(step.status.as_str(), "succeeded" | "cached") {
            return Err(StepFailure::bad_input(format!(
                "step `{}` has not finished (status {}); add it to this step's `needs:`",
                step.id, step.status
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
