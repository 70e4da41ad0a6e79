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
