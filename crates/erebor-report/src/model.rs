//! What a report shows: plain data, gathered by the caller (the CLI reads it from the run
//! store). Times are seconds or milliseconds since the Unix epoch as noted; values are as stored.
//! Serialisable: the runner gathers a report step's data and hands it over as JSON.

/// A whole report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The page title.
    pub title: String,
    /// The run.
    pub run: RunSummary,
    /// Its steps in plan order, with their timings.
    pub steps: Vec<StepTiming>,
    /// The `expect:` checks of the run's steps.
    pub expectations: Vec<ExpectResult>,
    /// Final values worth a glance (the last value of chosen keys per step).
    pub finals: Vec<FinalValue>,
    /// Line charts: one per metric key, the arms of a fan-out (and compared runs) overlaid.
    pub charts: Vec<LineChart>,
    /// Evaluation results (tasks × models), if any step evaluated.
    pub eval: Option<EvalTable>,
    /// MT-Bench results per model, if any step ran MT-Bench.
    pub mt_bench: Vec<MtBenchModel>,
    /// Metrics over time across runs of a schedule, with regressions marked.
    pub history: Vec<HistoryChart>,
}

/// The run a report is about.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Status (`succeeded`, `failed`, …).
    pub status: String,
    /// Created (ms since epoch).
    pub created_ms: i64,
    /// Finished (ms since epoch), if it has.
    pub finished_ms: Option<i64>,
    /// erebor version that ran it.
    pub erebor_version: String,
    /// Git commit of the workflow's folder, with `+dirty` for uncommitted changes.
    pub git: Option<String>,
    /// Param values (secrets masked), as `name = value` pairs.
    pub params: Vec<(String, String)>,
    /// Other runs (or `RUN:STEP`s) whose series are overlaid for comparison.
    pub compared: Vec<String>,
}

/// One step of the run, for the timeline.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepTiming {
    /// Step id (`train[dpop]`).
    pub id: String,
    /// Step kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Started (ms since epoch), if it has.
    pub started_ms: Option<i64>,
    /// Finished (ms since epoch), if it has.
    pub finished_ms: Option<i64>,
    /// For a step reused from the cache: `RUN:STEP` that produced it.
    pub reused_from: Option<String>,
}

/// One `expect:` check and its outcome.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExpectResult {
    /// The step it belongs to.
    pub step: String,
    /// The check as written: `eval/dpop/penalty <= 5`.
    pub check: String,
    /// The value it was judged on (None: nothing was recorded).
    pub value: Option<f64>,
    /// Whether it held.
    pub passed: bool,
}

/// The last value of a metric of a step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalValue {
    /// Step id (marked `(reused from RUN:STEP)` where it was read through a link).
    pub step: String,
    /// Metric key.
    pub key: String,
    /// The value.
    pub value: f64,
}

/// A line chart of one metric key.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LineChart {
    /// Title (the metric key).
    pub title: String,
    /// Horizontal axis title, with its unit.
    pub x_label: String,
    /// Vertical axis title, with its unit.
    pub y_label: String,
    /// The series, overlaid.
    pub series: Vec<Series>,
    /// A horizontal reference line (e.g. the reference model at index 0).
    pub reference: Option<Reference>,
}

/// One series of a chart: (x, y) points in x order; non-finite y values break the line.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Series {
    /// Legend label (`train[dpop]`).
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    /// Its legend label.
    pub label: String,
    /// Its value.
    pub value: f64,
}

/// Evaluation results: one row per task metric, one column per model (step).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalTable {
    /// Column titles: the evaluated models (step ids, or `RUN:STEP` for compared runs).
    pub models: Vec<String>,
    /// Rows.
    pub rows: Vec<EvalRow>,
    /// The Open LLM Leaderboard average per model, where recorded.
    pub average: Vec<Option<f64>>,
}

/// One task metric across models.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalRow {
    /// Task name (`arc_challenge`).
    pub task: String,
    /// Metric name (`acc_norm`).
    pub metric: String,
    /// The few-shot setting (`25-shot`, `0-shot`, `task default`).
    pub fewshot: String,
    /// Value per model (None: that model has no value for it).
    pub values: Vec<Option<f64>>,
}

/// MT-Bench scores of one model.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MtBenchModel {
    /// The model (step id).
    pub name: String,
    /// Mean score over both turns (1–10).
    pub score: Option<f64>,
    /// First-turn mean.
    pub turn1: Option<f64>,
    /// Second-turn mean.
    pub turn2: Option<f64>,
    /// Mean per category (`writing`, `roleplay`, …), in display order.
    pub categories: Vec<(String, f64)>,
}

/// A metric over time across runs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryChart {
    /// Title (the metric key, and the schedule).
    pub title: String,
    /// Vertical axis title.
    pub y_label: String,
    /// Points in time order.
    pub points: Vec<HistoryPoint>,
}

/// One run's value of a metric.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryPoint {
    /// When the run was made (ms since epoch).
    pub at_ms: i64,
    /// The value.
    pub value: f64,
    /// Whether this run regressed against the one before.
    pub regressed: bool,
}
