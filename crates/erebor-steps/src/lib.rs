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

pub mod command;
pub mod noop;
pub mod report;

pub use command::CommandKind;
pub use noop::NoopKind;
pub use report::{ReportConfig, ReportKind, WriteError};
