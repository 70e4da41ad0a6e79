//! Which executors a run gets: `--executor`, else the workflow's `executor:`, else `local`;
//! plus each executor a step names for itself (`executor: local` beside a Slurm workflow).
//!
//! The Slurm executor takes its partition, account and options from the workflow and these
//! environment variables (all optional):
//! - `EREBOR_SLURM_BINARY`: the erebor binary as the compute nodes see it (default: this one);
//! - `EREBOR_SLURM_COMMAND_TIMEOUT`: limit of one sbatch/squeue/scancel call (default 30s);
//! - `EREBOR_SLURM_TRIES`, `EREBOR_SLURM_RETRY_DELAY`: tries on transient errors (6) and the
//!   first delay between them (2s, doubling, with jitter);
//! - `EREBOR_SLURM_POLL_MAX`: longest time between two squeue calls (10s);
//! - `EREBOR_SLURM_RESULT_WAIT`: how long a finished job's result file is waited for (30s).

use crate::commands::run::ExecutorChoice;
use crate::outcome::BadInput;
use anyhow::Context;
use erebor_engine::slurm::command::on_path;
use erebor_engine::slurm::script::ClusterOptions;
use erebor_engine::{Executor, SlurmExecutor, SlurmSettings};
use erebor_workflow::{ExecutorKind, KindRegistry, Workflow};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The run's executor and the others its steps ask for.
pub(crate) struct Executors {
    /// Runs every step that does not name its own.
    pub(crate) default: Arc<dyn Executor>,
    /// Executors steps name for themselves.
    pub(crate) others: Vec<Arc<dyn Executor>>,
}

/// The executors for `workflow` given `--executor` (None: the workflow's choice).
pub(crate) fn build(
    choice: Option<ExecutorChoice>,
    workflow: &Workflow,
    registry: &KindRegistry,
) -> anyhow::Result<Executors> {
    let default = match choice {
        Some(ExecutorChoice::InProcess) => None,
        Some(ExecutorChoice::Local) => Some(ExecutorKind::Local),
        Some(ExecutorChoice::Slurm) => Some(ExecutorKind::Slurm),
        None => Some(workflow.executor.kind.unwrap_or(ExecutorKind::Local)),
    };
    let wanted: BTreeSet<ExecutorKind> = workflow
        .steps
        .iter()
        .filter_map(|step| step.executor)
        .filter(|kind| Some(*kind) != default)
        .collect();
    let default: Arc<dyn Executor> = match default {
        None => Arc::new(erebor_engine::InProcessExecutor::new(registry.clone())),
        Some(kind) => one(kind, workflow)?,
    };
    let others = wanted
        .into_iter()
        .map(|kind| one(kind, workflow))
        .collect::<anyhow::Result<_>>()?;
    Ok(Executors { default, others })
}

/// Which executor runs `step`: its own `executor:`, else `--executor`, else the workflow's
/// (None: in-process).
pub(crate) fn kind_of(
    choice: Option<ExecutorChoice>,
    workflow: &Workflow,
    step: &erebor_workflow::PlannedStep,
) -> Option<ExecutorKind> {
    step.executor.or(match choice {
        Some(ExecutorChoice::InProcess) => None,
        Some(ExecutorChoice::Local) => Some(ExecutorKind::Local),
        Some(ExecutorChoice::Slurm) => Some(ExecutorKind::Slurm),
        None => Some(workflow.executor.kind.unwrap_or(ExecutorKind::Local)),
    })
}

/// The workflow as `erebor plan` should weigh it: steps that run on Slurm take their GPUs from
/// the allocation, not from the runner's slots.
pub(crate) fn for_planning(choice: Option<ExecutorChoice>, workflow: &Workflow) -> Workflow {
    let mut planned = workflow.clone();
    for step in &mut planned.steps {
        if kind_of(choice, workflow, step) == Some(ExecutorKind::Slurm) {
            step.gpus = 0;
        }
    }
    planned
}

fn one(kind: ExecutorKind, workflow: &Workflow) -> anyhow::Result<Arc<dyn Executor>> {
    Ok(match kind {
        ExecutorKind::Local => Arc::new(
            erebor_engine::LocalExecutor::current_exe().context("finding the erebor binary")?,
        ),
        ExecutorKind::Slurm => Arc::new(SlurmExecutor::new(slurm_settings(workflow)?)),
    })
}

/// Slurm settings from the workflow's `executor:` and the `EREBOR_SLURM_*` variables.
fn slurm_settings(workflow: &Workflow) -> anyhow::Result<SlurmSettings> {
    let program = match std::env::var_os("EREBOR_SLURM_BINARY") {
        Some(path) => path.into(),
        None => std::env::current_exe().context("finding the erebor binary")?,
    };
    let cluster = ClusterOptions {
        partition: workflow.executor.partition.clone(),
        account: workflow.executor.account.clone(),
        extra: workflow.executor.extra.clone(),
    };
    let mut settings = SlurmSettings::new(program, cluster);
    if !on_path(&settings.sbatch) {
        return Err(BadInput(format!(
            "the workflow runs on Slurm, but `{}` is not on PATH: run erebor on a host with the Slurm client (slurm-client) installed, or choose `--executor local`",
            settings.sbatch
        ))
        .into());
    }
    if let Some(limit) = env_duration("EREBOR_SLURM_COMMAND_TIMEOUT")? {
        settings.command_timeout = limit;
    }
    if let Some(delay) = env_duration("EREBOR_SLURM_RETRY_DELAY")? {
        settings.retry_delay = delay;
    }
    if let Some(poll) = env_duration("EREBOR_SLURM_POLL_MAX")? {
        settings.poll_max = poll.max(settings.poll_min);
    }
    if let Some(wait) = env_duration("EREBOR_SLURM_RESULT_WAIT")? {
        settings.result_wait = wait;
    }
    if let Ok(tries) = std::env::var("EREBOR_SLURM_TRIES") {
        settings.tries = tries
            .parse()
            .map_err(|_| BadInput(format!("EREBOR_SLURM_TRIES={tries} is not a count")))?;
    }
    Ok(settings)
}

fn env_duration(name: &str) -> anyhow::Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(text) => erebor_workflow::fields::parse_duration(&text)
            .map(Some)
            .map_err(|error| BadInput(format!("{name}={text}: {error}")).into()),
        Err(_) => Ok(None),
    }
}
