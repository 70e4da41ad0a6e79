//! The `erebor` binary.
//!
//! - [`cli`]: the clap command line, one subcommand per command group.
//! - [`commands`]: the command implementations, one module per group.
//! - [`kinds`]: the step kinds this binary runs, one line each.
//! - [`step_kinds`]: the store side of kinds from other crates (`mt-bench` cache, `report` data).
//! - [`console`]: progress bars for a running workflow.
//! - [`history`]: reading run history (metrics of steps, display status).
//! - [`scheduler`]: the `erebor scheduler` daemon: cron ticks, exactly-once firing, regressions.
//! - [`format`]: tables, times, numbers.
//! - [`globals`]: options and resources every command shares (store, registry, runtime).
//! - [`telemetry`]: logging and optional OTLP export.
//! - [`outcome`]: exit codes.

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

mod cli;
mod commands;
mod console;
mod executors;
mod format;
mod globals;
mod history;
mod kinds;
mod outcome;
mod scheduler;
mod step_kinds;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let step_process = cli.command.is_step_process();
    let _telemetry = match telemetry::init(&cli.global, step_process) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error:#}");
            return outcome::Outcome::BadInput.exit_code();
        }
    };
    let globals = globals::Globals::new(cli.global);
    match cli.command.execute(&globals) {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            let outcome = outcome::outcome_of_error(&error);
            if outcome == outcome::Outcome::BadInput {
                eprintln!("{error:#}");
            } else {
                eprintln!("error: {error:#}");
            }
            outcome.exit_code()
        }
    }
}
