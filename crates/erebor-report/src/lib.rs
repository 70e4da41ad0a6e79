//! Run reports: a plain data model in, a self-contained HTML page and SVG / PNG charts out. No
//! store, no engine: the CLI gathers a [`Report`] from the run store and calls [`html::page`].
//!
//! - [`model`]: what a report shows (run summary, step timings, `expect:` results, metric series
//!   per step and arm, the evaluation table, MT-Bench scores, history points).
//! - [`html`]: the page: summary first, then the charts in a grid, then the tables.
//! - [`line`](mod@line): line charts with the arms of a fan-out overlaid, a legend, ticks, axis titles and
//!   an optional reference line.
//! - [`radar`]: MT-Bench per category as a radar chart.
//! - [`markdown`]: the summary and tables as Markdown.
//! - [`history`]: a metric over time with regressions marked.
//! - [`timeline`]: the run's steps as bars on a time axis.
//! - [`axis`]: nice ticks and the value ↔ pixel mapping.
//! - [`text`]: number formatting (a true minus sign), label widths, escaping.
//! - [`png`]: SVG → PNG with resvg and the system's fonts.
//! - [`error`]: what can fail ([`ReportError`]).

pub mod axis;
pub mod error;
pub mod history;
pub mod html;
pub mod line;
pub mod markdown;
pub mod model;
pub mod png;
pub mod radar;
pub mod text;
pub mod timeline;

pub use error::ReportError;
pub use model::{
    EvalRow, EvalTable, ExpectResult, FinalValue, HistoryChart, HistoryPoint, LineChart,
    MtBenchModel, Reference, Report, RunSummary, Series, StepTiming,
};

/// Colours of series, in order (colour-blind-safe Okabe–Ito palette, darkened for thin lines).
pub(crate) const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f7f7f", "#000000",
];
