//! The general step kinds of erebor, those that belong to no ML crate. Each runs in the step
//! process from its `with:` block and what the runner hands over through the step protocol; none
//! opens the run store.
//!
//! - [`command`]: an external program, given as an argv list (never a shell).
//! - [`noop`]: does nothing (joins dependencies, measures overhead).
//! - [`report`]: the run's report (metrics of chosen steps) rendered to Markdown, self-contained
//!   HTML and PNG charts, from the data the runner gathered ([`erebor_report::Report`]).
//!
//! The binary registers them ([`CommandKind`], [`NoopKind`], [`ReportKind`]) in its
//! `KindRegistry`; the runner side of the report (gathering its data from the store) lives with
//! the store, in the CLI.

// Clippy's pedantic group, less the lints the project allows everywhere (issue 13):
// - must_use_candidate: would mark nearly every getter; `#[must_use]` goes where dropping the
//   value is a likely bug.
// - missing_errors_doc: fallible functions return a typed error whose variants say what failed.
// - single_match_else: a one-arm `match` with a fallback reads as well as `if let ... else`.
// - format_push_string: `push_str(&format!(..))` reads better than `write!` with an ignored
//   `fmt::Result`.
// - cast_precision_loss: counts and indexes turned into `f64` stay far below 2^52.
// - module_name_repetitions: `StoreError`-style names read better at call sites than `Error`.
#![warn(clippy::pedantic)]
#![allow(
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    clippy::single_match_else,
    clippy::format_push_string,
    clippy::cast_precision_loss,
    clippy::module_name_repetitions
)]

pub mod command;
pub mod noop;
pub mod report;

pub use command::CommandKind;
pub use noop::NoopKind;
pub use report::{ReportConfig, ReportKind, WriteError};
