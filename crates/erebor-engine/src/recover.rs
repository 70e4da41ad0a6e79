//! Recovery of attempts a dead runner left live. An attempt submitted to this runner's
//! executor (on this host, or anywhere for an executor whose attempts outlive their runner) is
//! re-attached by its external id: the scheduler follows it to its end and a result it wrote
//! is kept. Any other live attempt is stopped if its process is still here, its events file is
//! recorded, and it is marked interrupted so it can never write again.

use crate::attempt::Reattached;
use crate::context::RunContext;
use crate::error::EngineError;
use crate::executor::{ExternalId, JobState};
use crate::process::{self, Signal};
use crate::protocol::AttemptFiles;
use crate::record::{emit_events, record_points};
use crate::tail::EventTail;
use erebor_core::StepId;
use erebor_store::{AttemptRecord, AttemptStatus};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An attempt re-attached after a runner restart, for the scheduler to follow.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    /// Its step.
    pub step: StepId,
    /// Its number.
    pub number: u32,
    /// The GPU slots it holds.
    pub gpus: Vec<u32>,
    /// The executor it runs on ([`crate::executor::Executor::name`]).
    pub executor: String,
    /// How to follow it.
    pub reattached: Reattached,
}

/// Re-attaches to or cleans up every live attempt of the run.
pub(crate) async fn recover_attempts(ctx: &RunContext) -> Result<Vec<Recovered>, EngineError> {
    let attempts = ctx
        .durably("reading the attempts of the run", || {
            ctx.store.attempts_of(&ctx.run_id)
        })
        .await?;
    let mut recovered = Vec::new();
    for attempt in attempts.into_iter().filter(|a| a.status.is_live()) {
        if let Some(found) = reattach(ctx, &attempt).await {
            recovered.push(found);
            continue;
        }
        interrupt_leftover(ctx, &attempt).await?;
    }
    Ok(recovered)
}

/// Re-attaches to an attempt one of this runner's executors can follow, if it still knows it.
async fn reattach(ctx: &RunContext, attempt: &AttemptRecord) -> Option<Recovered> {
    let executor = std::iter::once(ctx)
        .chain(ctx.others.iter().map(AsRef::as_ref))
        .map(|c| &c.executor)
        .find(|e| e.name() == attempt.executor)?;
    let external_id = match (&attempt.external_id, attempt.status) {
        (Some(id), status) if status != AttemptStatus::Recorded => ExternalId::new(id.clone()),
        _ => find_unrecorded(ctx, executor.as_ref(), attempt).await?,
    };
    let followable = executor.outlives_runner() || attempt.host == ctx.host;
    if !followable {
        return None;
    }
    let state = executor.reattach(&external_id).await;
    if let JobState::Lost(why) = &state {
        tracing::info!(step = %attempt.step_id, id = %external_id, "cannot re-attach: {why}");
        return None;
    }
    Some(Recovered {
        step: attempt.step_id.clone(),
        number: u32::try_from(attempt.number).unwrap_or(u32::MAX),
        gpus: attempt.gpus.clone(),
        executor: attempt.executor.clone(),
        reattached: Reattached {
            attempt: attempt.id.clone(),
            dir: PathBuf::from(&attempt.dir),
            external_id,
            state,
        },
    })
}

/// The job of an attempt recorded but whose submission was not (the runner died between
/// `sbatch` and recording its answer): looked up by its job name, and recorded now, so it is
/// followed instead of submitted twice.
async fn find_unrecorded(
    ctx: &RunContext,
    executor: &dyn crate::executor::Executor,
    attempt: &AttemptRecord,
) -> Option<ExternalId> {
    if !executor.outlives_runner() {
        return None;
    }
    let number = u32::try_from(attempt.number).unwrap_or(u32::MAX);
    let name =
        crate::slurm::script::job_name(ctx.run_id.as_str(), attempt.step_id.as_str(), number);
    let id = executor.find(&name).await?;
    tracing::warn!(step = %attempt.step_id, job = %id, "found the job of an attempt whose submission was not recorded");
    let recorded = ctx
        .durably("recording a recovered submission", || {
            ctx.store
                .set_attempt_submitted(&attempt.id, id.as_str(), AttemptStatus::Queued)
        })
        .await;
    match recorded {
        Ok(()) => Some(id),
        Err(error) => {
            tracing::warn!(step = %attempt.step_id, "cannot record the recovered job: {error}");
            None
        }
    }
}

/// Stops a leftover process of this host, records its events and marks it interrupted.
async fn interrupt_leftover(ctx: &RunContext, attempt: &AttemptRecord) -> Result<(), EngineError> {
    if attempt.host == ctx.host
        && attempt.executor == "local"
        && let Some(pid) = attempt
            .external_id
            .as_deref()
            .and_then(|h| h.parse::<u32>().ok())
    {
        stop_leftover(pid, ctx.stop_grace).await;
    }
    let step = attempt.step_id.clone();
    let id = attempt.id.clone();
    let files = AttemptFiles {
        dir: PathBuf::from(&attempt.dir),
    };
    let mut tail = EventTail::new(&files.events());
    match tail.read_new() {
        Ok(events) => {
            let points = emit_events(ctx, &step, events);
            let recorded = points.len();
            ctx.durably("recording recovered metrics", || {
                record_points(ctx, &step, &id, &points)
            })
            .await?;
            tracing::info!(step = %step, attempt = attempt.number, recorded, "recovered the metrics of an interrupted attempt");
        }
        Err(error) => {
            tracing::warn!(step = %step, "cannot read {}: {error}", files.events().display());
        }
    }
    ctx.durably("recording an interrupted attempt", || {
        ctx.store.interrupt_attempt(
            &id,
            "interrupted: its runner stopped while it ran; resumed by a new runner",
        )
    })
    .await?;
    Ok(())
}

/// Waits for a step process of the dead runner to finish stopping (it got SIGTERM from its
/// parent-death signal and may be writing a checkpoint), then kills its process group.
async fn stop_leftover(pid: u32, grace: Duration) {
    if !process::is_alive(pid) {
        return;
    }
    tracing::warn!(
        pid,
        "a step process of the previous runner is still alive; stopping it"
    );
    let _ = process::signal_group(pid, Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && process::is_alive(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = process::signal_group(pid, Signal::Kill);
    while process::is_alive(pid) && Instant::now() < deadline + Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
