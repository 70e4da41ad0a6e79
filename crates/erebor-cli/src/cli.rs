//! The command line: global options and one subcommand per command group.
//!
//! Adding a command group takes one module in `commands/`, one variant here and one arm in
//! [`Command::execute`].

use crate::commands;
use crate::globals::Globals;
use crate::outcome::Outcome;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// erebor: preference-tuned language models from one YAML workflow, with every run recorded.
#[derive(Debug, Parser)]
#[command(name = "erebor", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command shares.
#[derive(Debug, clap::Args)]
pub(crate) struct GlobalArgs {
    /// Run store: `sqlite://PATH` or `postgres://...` (default: sqlite in the state folder).
    #[arg(long, global = true, env = "EREBOR_DB")]
    pub(crate) db: Option<String>,
    /// State folder for the default database, run folders and caches.
    #[arg(long, global = true, env = "EREBOR_HOME", default_value = ".erebor")]
    pub(crate) home: PathBuf,
    /// More log output on stderr (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only warnings and errors on stderr, no progress bars.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Export tracing spans over OTLP/HTTP to this endpoint (off by default).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub(crate) otlp_endpoint: Option<String>,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a workflow file.
    Run(commands::run::RunArgs),
    /// Continue a failed, cancelled or killed run.
    Resume(commands::resume::ResumeArgs),
    /// Show the expanded step graph, what is cached and why not.
    Plan(commands::plan::PlanArgs),
    /// Check a workflow file without running it.
    Validate(commands::validate::ValidateArgs),
    /// Run history: list, show and compare runs.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Recurring runs of a workflow: add, list, pause, resume, remove, history.
    #[command(subcommand)]
    Schedule(commands::schedule::ScheduleCommand),
    /// The daemon that fires schedules' ticks as runs (until SIGTERM).
    Scheduler(commands::scheduler::SchedulerArgs),
    /// Print the metrics of a run.
    Metrics(commands::metrics::MetricsArgs),
    /// Write a run's report: self-contained HTML, Markdown and PNG charts.
    Report(commands::report::ReportArgs),
    /// List the step kinds this binary knows, with their outputs.
    Kinds(commands::kinds::KindsArgs),
    /// Evaluate a model on leaderboard or custom tasks (lm-evaluation-harness semantics).
    Eval(commands::eval::EvalArgs),
    /// MT-Bench: answer the two-turn questions and grade them with an LLM judge (FastChat's).
    MtBench(commands::mt_bench::MtBenchArgs),
    /// Inspect, convert, generate with and score against a model checkpoint.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Run one step inside a step process (used by the runner, not by people).
    #[command(hide = true, name = "step-exec")]
    StepExec(commands::step_exec::StepExecArgs),
}

impl Command {
    /// Runs the command.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        match self {
            Command::Run(args) => args.execute(globals),
            Command::Resume(args) => args.execute(globals),
            Command::Plan(args) => args.execute(globals),
            Command::Validate(args) => args.execute(globals),
            Command::Runs(args) => args.execute(globals),
            Command::Schedule(args) => args.execute(globals),
            Command::Scheduler(args) => args.execute(globals),
            Command::Metrics(args) => args.execute(globals),
            Command::Report(args) => args.execute(globals),
            Command::Kinds(args) => args.execute(globals),
            Command::Eval(args) => args.execute(globals),
            Command::MtBench(args) => args.execute(globals),
            Command::Model(args) => args.execute(),
            Command::StepExec(args) => args.execute(globals),
        }
    }

    /// Whether this command is a step process, which logs differently (plain, to its log file).
    pub(crate) fn is_step_process(&self) -> bool {
        matches!(self, Command::StepExec(_))
    }
}
