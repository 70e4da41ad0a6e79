//! The `report` kind: the report of the run it belongs to, as `erebor report RUN` makes it (the
//! same [`gather`] and [`gather::write`]): a self-contained `report.html` (summary, step
//! timeline, `expect:` results, the chosen steps' curves with the arms of a fan-out overlaid,
//! evaluation and MT-Bench tables), `report.md`, and each chart as SVG and PNG in `charts/`.
//! It never opens the run store: the runner gathers the report's data ([`ReportRunData`], the
//! same [`gather::gather`]) before the step starts and hands it over as JSON through the step
//! protocol ([`erebor_engine::run_data`]).

pub mod gather;

use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs, parse_with,
};
use erebor_engine::run_data::{Gathering, RunDataRequest, RunDataSource};
use erebor_store::Store;
use gather::Selection;
use serde::Deserialize;
use std::path::Path;

static INFO: StepKindInfo = StepKindInfo {
    name: "report",
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

    fn input_paths(&self, _with: &serde_json::Value, _base_dir: &Path) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    fn needs_run_data(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config: ReportConfig = parse_with(&ctx.with)?;
        let report = read_run_data(ctx)?;
        check_finished(&report, &config)?;
        let (html, markdown) = gather::write(&report, &ctx.work_dir)
            .map_err(|e| StepFailure::unknown(format!("{e:#}")))?;
        ctx.metrics
            .record("report/charts", 0, report.charts.len() as f64);
        Ok(StepOutputs::new()
            .with_path("html", &html)
            .with_path("markdown", &markdown)
            .with_path("charts", ctx.work_dir.join("charts")))
    }
}

/// The report data the runner gathered for this attempt ([`ReportRunData`]).
fn read_run_data(ctx: &StepContext<'_>) -> Result<erebor_report::Report, StepFailure> {
    let path = ctx.run_data.as_ref().ok_or_else(|| {
        StepFailure::bad_input(
            "report needs the run's data: the request names no run-data file (runner and step binaries differ?)",
        )
    })?;
    let bytes = std::fs::read(path)
        .map_err(|e| StepFailure::unknown(format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StepFailure::unknown(format!("reading {}: {e}", path.display())))
}

/// What a `report` step draws: its `with:` as a [`Selection`] (title: the step id by default).
fn selection(config: ReportConfig, step_id: &str) -> Selection {
    Selection {
        steps: config.steps,
        keys: config.keys,
        title: Some(config.title.unwrap_or_else(|| step_id.to_owned())),
        compare: Vec::new(),
        schedule: None,
    }
}

/// Gathers a `report` step's data in the runner (which has the store open): the
/// [`erebor_report::Report`] that `erebor report RUN` would gather for its selection, as JSON.
pub struct ReportRunData;

impl RunDataSource for ReportRunData {
    fn gather<'a>(&'a self, store: &'a Store, request: RunDataRequest<'a>) -> Gathering<'a> {
        Box::pin(async move {
            if request.kind != INFO.name {
                return Err(StepFailure::bad_input(format!(
                    "no run data is gathered for kind `{}`",
                    request.kind
                )));
            }
            let config: ReportConfig = parse_with(request.with)?;
            let selection = selection(config, request.step_id.as_str());
            let report = gathered(store, request.run_id.as_str(), &selection).await?;
            serde_json::to_value(&report)
                .map_err(|e| StepFailure::unknown(format!("serialising the report data: {e}")))
        })
    }
}

/// The run's report; a selector that names no step is bad input, a store error transient.
async fn gathered(
    store: &Store,
    run_id: &str,
    selection: &Selection,
) -> Result<erebor_report::Report, StepFailure> {
    let run = store
        .find_run(run_id)
        .await
        .map_err(|e| StepFailure::transient(format!("reading run {run_id}: {e}")))?;
    gather::gather(store, &run, selection).await.map_err(|e| {
        if e.downcast_ref::<crate::outcome::BadInput>().is_some() {
            StepFailure::bad_input(format!("with.steps: {e}"))
        } else {
            StepFailure::transient(format!("reading the run's metrics: {e:#}"))
        }
    })
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
