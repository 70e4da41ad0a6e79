//! One attempt of one step: record it, write the request, submit it to the executor, follow
//! its state (queued, running, finished, lost) while tailing its events into the store, enforce
//! the timeout and cancellation, and record how it ended. An attempt a previous runner left
//! behind is followed the same way after re-attaching to it by its external id.

use crate::context::RunContext;
use crate::control::StopLevel;
use crate::events::EngineEvent;
use crate::executor::{ExitInfo, ExternalId, JobSpec, JobState, Launch};
pub(crate) use crate::outcome::{AttemptOutcome, AttemptSpec};
use crate::protocol::{self, AttemptFiles, StepRequest, StepResult};
use crate::record::Recorder;
use crate::tail::EventTail;
use erebor_core::{AttemptId, FailureClass, StepFailure};
use erebor_store::{AttemptStatus, NewAttempt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// An attempt a previous runner submitted, to follow again.
#[derive(Clone, Debug, PartialEq)]
pub struct Reattached {
    /// The attempt.
    pub attempt: AttemptId,
    /// Its folder.
    pub dir: PathBuf,
    /// Its id at the executor.
    pub external_id: ExternalId,
    /// Its state when re-attached.
    pub state: JobState,
}

/// Runs one attempt to its end: recorded before it is submitted, submitted, then followed.
pub(crate) async fn run_attempt(ctx: Arc<RunContext>, spec: AttemptSpec) -> AttemptOutcome {
    let attempt = AttemptId::new(uuid::Uuid::now_v7().to_string());
    let files = AttemptFiles::new(&ctx.run_dir, &spec.step.id, spec.number);
    let log = files.log();
    if let Err(error) = std::fs::create_dir_all(&files.dir) {
        let message = format!("cannot create {}: {error}", files.dir.display());
        return AttemptOutcome::Failed {
            failure: StepFailure::unknown(message),
            log,
        };
    }
    if let Err(outcome) = record_new(&ctx, &spec, &attempt, &files).await {
        return outcome;
    }
    let recorder = Recorder::new(&ctx, &spec.step.id, &attempt, &log);
    let (id, state) = match submit(&ctx, &spec, &attempt, &files, &recorder).await {
        Ok(submitted) => submitted,
        Err(outcome) => return outcome,
    };
    ctx.subscribers.emit(&EngineEvent::StepStarted {
        step: spec.step.id.clone(),
        attempt: spec.number,
        gpus: spec.gpus.clone(),
    });
    follow(&ctx, &spec, &recorder, &files, &id, state, false).await
}

/// Follows an attempt a previous runner submitted to its end. An executor whose attempts die
/// with their runner gets it stopped (it is on its way out already: its parent-death signal
/// asked it to checkpoint); a result it wrote is still honoured.
pub(crate) async fn follow_reattached(
    ctx: Arc<RunContext>,
    spec: AttemptSpec,
    reattached: Reattached,
) -> AttemptOutcome {
    let files = AttemptFiles {
        dir: reattached.dir.clone(),
    };
    let log = files.log();
    let recorder = Recorder::new(&ctx, &spec.step.id, &reattached.attempt, &log);
    let id = &reattached.external_id;
    if !ctx.executor.outlives_runner()
        && !reattached.state.is_over()
        && let Err(error) = ctx.executor.cancel(id, ctx.stop_grace).await
    {
        tracing::warn!(step = %spec.step.id, %id, "cannot stop the previous runner's step process: {error}");
    }
    tracing::info!(step = %spec.step.id, %id, state = ?reattached.state, "re-attached to an attempt of the previous runner");
    follow(&ctx, &spec, &recorder, &files, id, reattached.state, true).await
}

async fn record_new(
    ctx: &RunContext,
    spec: &AttemptSpec,
    attempt: &AttemptId,
    files: &AttemptFiles,
) -> Result<(), AttemptOutcome> {
    let new_attempt = NewAttempt {
        id: attempt.clone(),
        run_id: ctx.run_id.clone(),
        step_id: spec.step.id.clone(),
        number: i64::from(spec.number),
        executor: ctx.executor.name().to_owned(),
        host: ctx.host.clone(),
        dir: files.dir.display().to_string(),
        gpus: spec.gpus.clone(),
    };
    ctx.durably("recording a new attempt", || {
        ctx.store.start_attempt(&new_attempt)
    })
    .await
    .map_err(|error| {
        let what = format!("recording attempt {} of {}", spec.number, spec.step.id);
        AttemptOutcome::from_store_error(what, error)
    })
}

fn request(
    ctx: &RunContext,
    spec: &AttemptSpec,
    attempt: &AttemptId,
    files: &AttemptFiles,
) -> StepRequest {
    StepRequest {
        protocol: protocol::PROTOCOL_VERSION,
        run_id: ctx.run_id.clone(),
        step_id: spec.step.id.clone(),
        attempt_id: attempt.clone(),
        attempt_number: spec.number,
        kind: spec.step.kind.clone(),
        with: spec.with.clone(),
        base_dir: ctx.base_dir.clone(),
        work_dir: protocol::work_dir(&ctx.run_dir, &spec.step.id),
        cache_dir: ctx.cache_dir.clone(),
        events_file: files.events(),
        result_file: files.result(),
        // A job on a cluster node is not the runner's child: 0 says "not tied to a runner".
        runner_pid: if ctx.executor.outlives_runner() {
            0
        } else {
            std::process::id()
        },
        gpus: spec.gpus.clone(),
        run_data: None,
    }
}

/// Writes the request, submits it and records the external id with the state the executor
/// reports right after submission (one write).
async fn submit(
    ctx: &RunContext,
    spec: &AttemptSpec,
    attempt: &AttemptId,
    files: &AttemptFiles,
    recorder: &Recorder<'_>,
) -> Result<(ExternalId, JobState), AttemptOutcome> {
    let unknown = |message: String| recorder.fail(FailureClass::Unknown, message, None, false);
    let mut request = request(ctx, spec, attempt, files);
    match run_data(ctx, &request, files).await {
        Ok(path) => request.run_data = path,
        Err(failure) => {
            return Err(recorder
                .fail(failure.class, failure.message, None, false)
                .await);
        }
    }
    if let Err(error) = protocol::write_json_atomic(&files.request(), &request) {
        return Err(unknown(format!("cannot write the request: {error}")).await);
    }
    let mut env = ctx.child_env.clone();
    let visible: Vec<String> = spec.gpus.iter().map(u32::to_string).collect();
    env.push(("CUDA_VISIBLE_DEVICES".to_owned(), visible.join(",")));
    let launch = Launch {
        request_file: files.request(),
        log_file: files.log(),
        env,
        job: JobSpec {
            name: crate::slurm::script::job_name(
                ctx.run_id.as_str(),
                spec.step.id.as_str(),
                spec.number,
            ),
            gpus: spec.step.gpus,
            resources: spec.step.resources.clone(),
            timeout: spec.step.timeout,
        },
    };
    let id = match ctx.executor.submit(launch).await {
        Ok(id) => id,
        Err(error) => return Err(unknown(format!("cannot start the step process: {error}")).await),
    };
    let state = ctx
        .executor
        .poll(std::slice::from_ref(&id))
        .await
        .pop()
        .unwrap_or(JobState::Running);
    let status = match state {
        JobState::Queued => AttemptStatus::Queued,
        JobState::Lost(_) => AttemptStatus::Submitted,
        _ => AttemptStatus::Running,
    };
    let submitted = ctx
        .durably("recording the submitted attempt", || {
            ctx.store
                .set_attempt_submitted(attempt, id.as_str(), status)
        })
        .await;
    if let Err(error) = submitted {
        let _ = ctx.executor.cancel(&id, Duration::ZERO).await;
        let what = format!(
            "recording the submission of attempt {} of {}",
            spec.number, spec.step.id
        );
        return Err(AttemptOutcome::from_store_error(what, error));
    }
    Ok((id, state))
}

/// Gathers the run's data for a kind that needs it and writes it into the attempt's folder;
/// `Ok(None)` for other kinds.
async fn run_data(
    ctx: &RunContext,
    request: &StepRequest,
    files: &AttemptFiles,
) -> Result<Option<PathBuf>, StepFailure> {
    if !ctx.run_data_kinds.contains(&request.kind) {
        return Ok(None);
    }
    let Some(source) = &ctx.run_data else {
        return Err(StepFailure::bad_input(format!(
            "kind `{}` needs the run's data and this runner has no gatherer for it",
            request.kind
        )));
    };
    let wanted = crate::run_data::RunDataRequest {
        run_id: &request.run_id,
        step_id: &request.step_id,
        kind: &request.kind,
        with: &request.with,
    };
    let data = source.gather(&ctx.store, wanted).await?;
    let path = files.run_data();
    protocol::write_json_atomic(&path, &data).map_err(|error| {
        StepFailure::unknown(format!("cannot write {}: {error}", path.display()))
    })?;
    Ok(Some(path))
}

/// How the executor last saw the attempt.
enum JobEnd {
    Finished(ExitInfo),
    Lost(String),
}

/// Follows a submitted attempt to its end, then records it.
async fn follow(
    ctx: &RunContext,
    spec: &AttemptSpec,
    recorder: &Recorder<'_>,
    files: &AttemptFiles,
    id: &ExternalId,
    state: JobState,
    reattached: bool,
) -> AttemptOutcome {
    let started = Instant::now();
    let mut tail = EventTail::new(&files.events());
    let states = ctx.poller.watch(id, state);
    let supervised = supervise(ctx, spec, id, states, &mut tail, recorder).await;
    ctx.poller.unwatch(id);
    let (end, stop) = match supervised {
        Ok(done) => done,
        Err(outcome) => {
            let _ = ctx.executor.cancel(id, Duration::ZERO).await;
            return outcome;
        }
    };
    ctx.executor.forget(id);
    if let Err(outcome) = recorder.flush(&mut tail).await {
        return outcome;
    }
    conclude(
        ctx,
        spec,
        recorder,
        files,
        end,
        stop,
        reattached,
        started.elapsed(),
    )
    .await
}

/// Records how the attempt ended from its result file, why the runner stopped it, and what
/// the executor saw.
#[allow(clippy::too_many_arguments)]
async fn conclude(
    ctx: &RunContext,
    spec: &AttemptSpec,
    recorder: &Recorder<'_>,
    files: &AttemptFiles,
    end: JobEnd,
    stop: Stop,
    reattached: bool,
    elapsed: Duration,
) -> AttemptOutcome {
    let result = read_result_waiting(&files.result(), ctx.executor.result_wait(), stop).await;
    if let Ok(Some(StepResult::Succeeded { outputs })) = result {
        return recorder.succeed(spec, outputs, elapsed).await;
    }
    let exit = match (end, stop) {
        (_, Stop::Cancelled) => return interrupt(ctx, spec, recorder).await,
        _ if reattached => return recorder.interrupted_with_runner().await,
        (JobEnd::Lost(why), _) => {
            let message = format!("the executor lost the attempt: {why}");
            return recorder.lost(message).await;
        }
        (JobEnd::Finished(exit), _) => exit,
    };
    let retries = spec.retries_left > 0;
    let (class, message, retry) = match (result, stop) {
        (_, Stop::TimedOut(limit)) => {
            let message = format!(
                "timed out after {} (timeout: in the workflow)",
                humanize(limit)
            );
            (FailureClass::Transient, message, retries)
        }
        (Ok(Some(StepResult::Failed { failure })), _) => {
            let retry = failure.class.is_retryable() && retries;
            (failure.class, failure.message, retry)
        }
        (Err(error), _) => (
            FailureClass::Unknown,
            format!("unreadable result file: {error}"),
            retries,
        ),
        (Ok(_), _) => {
            let (class, message) = classify_death(exit);
            (class, message, class.is_retryable() && retries)
        }
    };
    recorder.fail(class, message, exit.code, retry).await
}

/// Reads the result file, waiting up to `wait` for it to appear (a shared file system may show
/// a job's result late); no wait when the runner stopped the attempt itself.
async fn read_result_waiting(
    path: &std::path::Path,
    wait: Duration,
    stop: Stop,
) -> Result<Option<StepResult>, String> {
    let deadline = Instant::now()
        + if stop == Stop::No {
            wait
        } else {
            Duration::ZERO
        };
    loop {
        let result = protocol::read_result(path).map_err(|e| e.to_string());
        if !matches!(result, Ok(None)) || Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn interrupt(
    ctx: &RunContext,
    spec: &AttemptSpec,
    recorder: &Recorder<'_>,
) -> AttemptOutcome {
    let interrupted = ctx
        .durably("recording an interrupted attempt", || {
            ctx.store
                .interrupt_attempt(recorder.attempt, "stopped: the run was cancelled")
        })
        .await;
    if let Err(error) = interrupted {
        let what = format!("recording that {} was interrupted", spec.step.id);
        return AttemptOutcome::from_store_error(what, error);
    }
    ctx.subscribers.emit(&EngineEvent::StepInterrupted {
        step: spec.step.id.clone(),
    });
    AttemptOutcome::Interrupted
}

fn classify_death(exit: ExitInfo) -> (FailureClass, String) {
    match (exit.code, exit.signal) {
        (_, Some(9)) => (
            FailureClass::OutOfMemory,
            "the step process was killed by SIGKILL without writing a result; most likely the kernel's out-of-memory killer (see the step log and `dmesg`)".to_owned(),
        ),
        (_, Some(signal)) => (FailureClass::Unknown, format!("the step process died from signal {signal} without a result")),
        (Some(code), None) => (
            FailureClass::from_exit_code(code).unwrap_or(FailureClass::Unknown),
            format!("the step process exited with code {code} without writing a result (see the step log)"),
        ),
        (None, None) => (FailureClass::Unknown, "the step process ended without a result".to_owned()),
    }
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// Why the runner stopped the attempt, if it did.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    No,
    Cancelled,
    TimedOut(Duration),
}

/// Follows the executor's states, tailing events; applies the timeout and the run's stop
/// level through [`crate::executor::Executor::cancel`] (SIGTERM, SIGKILL after the grace).
async fn supervise(
    ctx: &RunContext,
    spec: &AttemptSpec,
    id: &ExternalId,
    mut states: watch::Receiver<JobState>,
    tail: &mut EventTail,
    recorder: &Recorder<'_>,
) -> Result<(JobEnd, Stop), AttemptOutcome> {
    let mut control = ctx.control.subscribe();
    let mut ticker = tokio::time::interval(ctx.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The timeout counts from when the attempt runs, not while a cluster keeps it queued.
    let mut timeout_at = None;
    let mut stop = Stop::No;
    let mut applied = StopLevel::Run;
    let mut recorded_state = states.borrow().clone();
    loop {
        let level = *control.borrow_and_update();
        if level > applied {
            applied = level;
            stop = Stop::Cancelled;
            let grace = match level {
                StopLevel::Immediate => Duration::ZERO,
                _ => ctx.stop_grace,
            };
            if let Err(error) = ctx.executor.cancel(id, grace).await {
                tracing::warn!(step = %spec.step.id, %id, "cannot stop the attempt: {error}");
            }
        }
        let state = states.borrow_and_update().clone();
        match state {
            JobState::Finished(exit) => return Ok((JobEnd::Finished(exit), stop)),
            JobState::Lost(why) => return Ok((JobEnd::Lost(why), stop)),
            now => {
                if timeout_at.is_none() && now != JobState::Queued {
                    timeout_at = spec.step.timeout.map(|t| tokio::time::Instant::now() + t);
                }
                record_state(ctx, recorder, &mut recorded_state, now).await?;
            }
        }
        let far = tokio::time::Instant::now() + Duration::from_hours(24 * 365);
        tokio::select! {
            changed = states.changed() => {
                if changed.is_err() {
                    let why = "the runner stopped following it".to_owned();
                    return Ok((JobEnd::Lost(why), stop));
                }
            }
            _ = ticker.tick() => recorder.ingest(tail).await?,
            _ = control.changed() => {}
            () = tokio::time::sleep_until(timeout_at.unwrap_or(far)), if timeout_at.is_some() && stop == Stop::No => {
                stop = Stop::TimedOut(spec.step.timeout.unwrap_or_default());
                if let Err(error) = ctx.executor.cancel(id, ctx.stop_grace).await {
                    tracing::warn!(step = %spec.step.id, %id, "cannot stop the attempt: {error}");
                }
            }
        }
    }
}

/// Records a move from queued to running in the store (once).
async fn record_state(
    ctx: &RunContext,
    recorder: &Recorder<'_>,
    recorded_state: &mut JobState,
    now: JobState,
) -> Result<(), AttemptOutcome> {
    if *recorded_state == now {
        return Ok(());
    }
    let status = match now {
        JobState::Queued => AttemptStatus::Queued,
        _ => AttemptStatus::Running,
    };
    ctx.durably("recording an attempt's state", || {
        ctx.store.set_attempt_status(recorder.attempt, status)
    })
    .await
    .map_err(|error| {
        AttemptOutcome::from_store_error("recording an attempt's state".into(), error)
    })?;
    *recorded_state = now;
    Ok(())
}
