//! `erebor run FILE`: runs a workflow and records it.

use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use anyhow::Context;
use erebor_engine::{Engine, EngineOptions, Limits, RunControl, RunSummary, Subscribers};
use erebor_store::RunStatus;
use erebor_workflow::{LoadOptions, MissingParams, Workflow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `erebor run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The workflow file.
    pub(crate) file: PathBuf,
    /// Override a param: `--set name=value` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// How the steps run.
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

/// Options shared by `run` and `resume`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunnerArgs {
    /// Steps running at once (default: the number of CPUs).
    #[arg(long, short = 'j')]
    pub(crate) jobs: Option<usize>,
    /// GPU slots: a count (`2`), a list of device ids (`0,3`) or `none` (default: from
    /// `CUDA_VISIBLE_DEVICES`, else the NVIDIA devices present).
    #[arg(long)]
    pub(crate) gpus: Option<String>,
    /// Run this step even if a cached result exists (a matrix base selects all arms; repeatable).
    #[arg(long, value_name = "STEP")]
    pub(crate) force: Vec<String>,
    /// Never reuse cached results.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Where steps run (default: the workflow's `executor:`, else local).
    #[arg(long, value_enum)]
    pub(crate) executor: Option<ExecutorChoice>,
    /// Time a stopped step gets to checkpoint before it is killed.
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub(crate) stop_grace: Duration,
}

/// The executors `--executor` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecutorChoice {
    /// A child process per step (the default).
    Local,
    /// A thread of the runner per step: for measuring the engine; a crashing step takes the
    /// runner down.
    InProcess,
    /// A Slurm batch job per attempt (partition, account and options from the workflow's
    /// `executor:`; see docs/executors.md).
    Slurm,
}

impl ExecutorChoice {
    /// The choice recorded in a run's options under this executor name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "local" => Some(ExecutorChoice::Local),
            "in-process" => Some(ExecutorChoice::InProcess),
            "slurm" => Some(ExecutorChoice::Slurm),
            _ => None,
        }
    }
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    erebor_workflow::fields::parse_duration(text).map_err(|e| e.to_string())
}

impl RunArgs {
    /// Loads, runs and reports.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let workflow = load_workflow(globals, &self.file, &self.set)?;
        crate::telemetry::add_secrets(workflow.params.secret_values());
        let runtime = crate::globals::runtime()?;
        runtime.block_on(async {
            let store = globals.store().await?;
            let refused =
                crate::commands::plan::refusals(globals, &store, &self.runner, &workflow).await?;
            if !refused.is_empty() {
                return Err(BadInput(format!(
                    "refused before any step ran:\n  {}",
                    refused.join("\n  ")
                ))
                .into());
            }
            let (engine, _control) = build_engine(globals, store, &self.runner, &workflow)?;
            let summary = engine.run(&workflow).await?;
            Ok(report(&summary))
        })
    }
}

impl RunnerArgs {
    /// The scheduler's limits: `--jobs` (default: the CPU count), `--gpus` (default: the GPUs
    /// found), `--force`, `--no-cache`.
    pub(crate) fn limits(&self) -> anyhow::Result<Limits> {
        let gpus = match &self.gpus {
            Some(spec) => parse_gpus(spec).map_err(BadInput)?,
            None => detect_gpus(),
        };
        Ok(Limits {
            jobs: self.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            }),
            gpus,
            force: self.force.clone(),
            no_cache: self.no_cache,
        })
    }
}

/// Builds an engine with the console or tracing subscriber and signal handling.
pub(crate) fn build_engine(
    globals: &Globals,
    store: erebor_store::Store,
    runner: &RunnerArgs,
    workflow: &Workflow,
) -> anyhow::Result<(Engine, RunControl)> {
    let limits = runner.limits()?;
    for selector in &runner.force {
        if workflow.select(selector).is_empty() {
            return Err(
                BadInput(format!("--force {selector}: the workflow has no such step")).into(),
            );
        }
    }
    let executors = crate::executors::build(runner.executor, workflow, &globals.registry)?;
    let options = EngineOptions {
        home: globals.home(),
        limits,
        executor: executors.default,
        other_executors: executors.others,
        db_url: globals.db_url(),
        stop_grace: runner.stop_grace,
        tick: Duration::from_millis(200),
        store_retry: erebor_engine::StoreRetry::default(),
    };
    let mut subscribers = Subscribers::new();
    if globals.progress_bars() {
        subscribers.add(Arc::new(crate::console::Console::new()));
    } else {
        subscribers.add(Arc::new(erebor_engine::TracingSubscriber));
    }
    let control = RunControl::new();
    control
        .stop_on_signals()
        .context("installing the Ctrl-C handler")?;
    Ok((
        Engine::new(
            store,
            globals.registry.clone(),
            options,
            subscribers,
            control.clone(),
        )
        .with_run_data(Arc::new(crate::step_kinds::report::ReportRunData)),
        control,
    ))
}

/// Prints the summary on stdout and picks the exit code.
pub(crate) fn report(summary: &RunSummary) -> Outcome {
    let run = &summary.run_id;
    println!("run {run}: {}", summary.status);
    for step in &summary.summary.failed {
        println!("  failed: {step}");
    }
    for step in &summary.summary.interrupted {
        println!("  interrupted: {step}");
    }
    for failure in &summary.summary.expect_failures {
        println!("  expectation failed: {failure}");
    }
    match summary.status {
        RunStatus::Succeeded if summary.summary.expect_failures.is_empty() => {
            println!("details: erebor runs show {run}");
            Outcome::Success
        }
        RunStatus::Succeeded => Outcome::ExpectationFailed,
        _ => {
            println!("continue it with: erebor resume {run}");
            Outcome::RunFailed
        }
    }
}

/// Loads a workflow file to run (or plan) with `--set` overrides; every param must have a value.
pub(crate) fn load_workflow(
    globals: &Globals,
    file: &Path,
    set: &[String],
) -> anyhow::Result<Workflow> {
    let options = LoadOptions {
        overrides: parse_overrides(set)?,
        missing: MissingParams::Error,
        ..LoadOptions::default()
    };
    Ok(erebor_workflow::load_file(
        file,
        &globals.registry,
        &options,
    )?)
}

/// Parses `--set name=value` flags.
pub(crate) fn parse_overrides(flags: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|flag| {
            erebor_workflow::param_values::parse_set_flag(flag)
                .map_err(|e| BadInput(e.to_string()).into())
        })
        .collect()
}

/// `2` → [0, 1]; `0,3` → [0, 3]; `none` → [].
pub(crate) fn parse_gpus(spec: &str) -> Result<Vec<u32>, String> {
    let spec = spec.trim();
    if spec.is_empty() || spec == "none" {
        return Ok(Vec::new());
    }
    if spec.contains(',') {
        return spec
            .split(',')
            .map(|id| {
                id.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("--gpus {spec}: `{id}` is not a device id"))
            })
            .collect();
    }
    let count: u32 = spec
        .parse()
        .map_err(|_| format!("--gpus {spec}: give a count, a list like 0,1, or none"))?;
    Ok((0..count).collect())
}

/// GPU slots from `CUDA_VISIBLE_DEVICES`, else the NVIDIA devices in /dev.
pub(crate) fn detect_gpus() -> Vec<u32> {
    if let Ok(visible) = std::env::var("CUDA_VISIBLE_DEVICES") {
        let ids: Vec<u32> = visible
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect();
        return ids;
    }
    let mut ids: Vec<u32> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("nvidia"))
                        .and_then(|n| n.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_specs() {
        assert_eq!(parse_gpus("2"), Ok(vec![0, 1]));
        assert_eq!(parse_gpus("0,3"), Ok(vec![0, 3]));
        assert_eq!(parse_gpus("none"), Ok(vec![]));
        assert!(parse_gpus("two").is_err());
    }
}
