//! Step kinds implemented in the CLI crate.
//!
//! - [`command`]: an external program, given as an argv list (never a shell).
//! - [`mt_bench`]: the `mt-bench` kind's judgment cache over the run store.
//! - [`noop`]: does nothing (joins dependencies, measures overhead).
//! - [`report`]: metrics of chosen steps rendered to Markdown and self-contained HTML.

pub mod command;
pub mod mt_bench;
pub mod noop;
pub mod report;
