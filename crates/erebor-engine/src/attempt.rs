//! One attempt of one step: write the request, start the step process, tail its events into the
//! store, enforce the timeout and cancellation, and record how it ended.

use crate::control::StopLevel;
use crate::events::EngineEvent;
use crate::executor::{ExitInfo, Launch, StepHandle};
use crate::process::Signal;
use crate::protocol::{self, AttemptFiles, StepRequest, StepResult};
use crate::record::Recorder;
use crate::scheduler::Shared;
use crate::tail::EventTail;
use erebor_core::{AttemptId, FailureClass, OutputType, StepFailure, StepOutputs};
use erebor_store::NewAttempt;
use erebor_workflow::PlannedStep;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an attempt ended, for the scheduler.
#[derive(Debug)]
pub enum AttemptOutcome {
    /// The step succeeded.
    Succeeded {
        /// Its outputs.
        outputs: StepOutputs,
        /// `expect:` checks that failed.
        expect_failures: Vec<String>,
    },
    /// It failed; `final_failure` is false when a retry follows.
    Failed {
        /// Why.
        failure: StepFailure,
        /// The log file.
        log: PathBuf,
    },
    /// The run was cancelled while it ran.
    Interrupted,
    /// Another runner took the run over; this one must stop.
    LostLease,
}

/// What the scheduler knows when it starts an attempt.
pub struct AttemptSpec {
    /// The step.
    pub step: PlannedStep,
    /// Its `with:` with upstream outputs substituted.
    pub with: serde_json::Value,
    /// Attempt number within the run.
    pub number: u32,
    /// GPU slots.
    pub gpus: Vec<u32>,
    /// Whether a retryable failure will be retried.
    pub retries_left: u32,
    /// Inputs for lineage: (path, sha256, producing artifact).
    pub lineage: Vec<(String, String, Option<String>)>,
    /// Outputs the kind declares for this config.
    pub declared: Vec<(String, OutputType)>,
}

/// Runs one attempt to its end.
pub async fn run_attempt(shared: Arc<Shared>, spec: AttemptSpec) -> AttemptOutcome {
    let step_id = spec.step.id.clone();
    let attempt_id = AttemptId::new(uuid::Uuid::now_v7().to_string());
    let files = AttemptFiles::new(&shared.run_dir, &step_id, spec.number);
    let log = files.log();
    let fail_early = |message: String| AttemptOutcome::Failed {
        failure: StepFailure::unknown(message),
        log: log.clone(),
    };
    if let Err(error) = std::fs::create_dir_all(&files.dir) {
        return fail_early(format!("cannot create {}: {error}", files.dir.display()));
    }
    let new_attempt = NewAttempt {
        id: attempt_id.to_string(),
        run_id: shared.run_id.to_string(),
        step_id: step_id.to_string(),
        number: i64::from(spec.number),
        executor: shared.executor.name().to_owned(),
        host: shared.host.clone(),
        dir: files.dir.display().to_string(),
        gpus: spec.gpus.clone(),
    };
    if let Err(error) = shared.store.start_attempt(&new_attempt).await {
        return fail_early(format!("cannot record the attempt: {error}"));
    }
    let request = StepRequest {
        protocol: protocol::PROTOCOL_VERSION,
        run_id: shared.run_id.clone(),
        step_id: step_id.clone(),
        attempt_id: attempt_id.clone(),
        attempt_number: spec.number,
        kind: spec.step.kind.clone(),
        with: spec.with.clone(),
        base_dir: shared.base_dir.clone(),
        work_dir: protocol::work_dir(&shared.run_dir, &step_id),
        cache_dir: shared.cache_dir.clone(),
        events_file: files.events(),
        result_file: files.result(),
        runner_pid: std::process::id(),
        gpus: spec.gpus.clone(),
    };
    let recorder = Recorder {
        shared: &shared,
        step: &step_id,
        attempt: &attempt_id,
        log: &log,
        pending: Default::default(),
    };
    if let Err(error) = protocol::write_json_atomic(&files.request(), &request) {
        return recorder
            .fail(
                FailureClass::Unknown,
                format!("cannot write the request: {error}"),
                None,
                false,
            )
            .await;
    }
    let mut env = shared.child_env.clone();
    env.push((
        "CUDA_VISIBLE_DEVICES".to_owned(),
        spec.gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    ));
    let launch = Launch {
        request_file: files.request(),
        log_file: log.clone(),
        env,
    };
    let mut handle = match shared.executor.start(launch) {
        Ok(handle) => handle,
        Err(error) => {
            return recorder
                .fail(
                    FailureClass::Unknown,
                    format!("cannot start the step process: {error}"),
                    None,
                    false,
                )
                .await;
        }
    };
    let _ = shared
        .store
        .set_attempt_handle(attempt_id.as_str(), &handle.id())
        .await;
    shared.subscribers.emit(EngineEvent::StepStarted {
        step: step_id.clone(),
        attempt: spec.number,
        gpus: spec.gpus.clone(),
    });

    let started = Instant::now();
    let mut tail = EventTail::new(&files.events());
    let supervised = supervise(&shared, &spec, handle.as_mut(), &mut tail, &recorder).await;
    let (exit, stop) = match supervised {
        Ok(done) => done,
        Err(LostLease) => {
            let _ = handle.signal(Signal::Kill);
            return AttemptOutcome::LostLease;
        }
    };
    if recorder.ingest(&mut tail).await.is_err() {
        return AttemptOutcome::LostLease;
    }
    let result = protocol::read_result(&files.result());
    let elapsed = started.elapsed();
    match (result, stop) {
        (Ok(Some(StepResult::Succeeded { outputs })), _) => {
            recorder.succeed(&spec, outputs, elapsed).await
        }
        (_, Stop::Cancelled) => {
            let _ = shared
                .store
                .interrupt_attempt(attempt_id.as_str(), "stopped: the run was cancelled")
                .await;
            shared.subscribers.emit(EngineEvent::StepInterrupted {
                step: step_id.clone(),
            });
            AttemptOutcome::Interrupted
        }
        (_, Stop::TimedOut(limit)) => {
            let message = format!(
                "timed out after {} (timeout: in the workflow)",
                humanize(limit)
            );
            recorder
                .fail(
                    FailureClass::Transient,
                    message,
                    exit.code,
                    spec.retries_left > 0,
                )
                .await
        }
        (Ok(Some(StepResult::Failed { failure })), Stop::No) => {
            let retry = failure.class.is_retryable() && spec.retries_left > 0;
            recorder
                .fail(failure.class, failure.message, exit.code, retry)
                .await
        }
        (Ok(None), Stop::No) => {
            let (class, message) = classify_death(exit);
            let retry = class.is_retryable() && spec.retries_left > 0;
            recorder.fail(class, message, exit.code, retry).await
        }
        (Err(error), Stop::No) => {
            let retry = spec.retries_left > 0;
            recorder
                .fail(
                    FailureClass::Unknown,
                    format!("unreadable result file: {error}"),
                    exit.code,
                    retry,
                )
                .await
        }
    }
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

/// Why the runner stopped the process, if it did.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    No,
    Cancelled,
    TimedOut(Duration),
}

struct LostLease;

/// Waits for the process, tailing events; applies the timeout and the run's stop level.
async fn supervise(
    shared: &Shared,
    spec: &AttemptSpec,
    handle: &mut dyn StepHandle,
    tail: &mut EventTail,
    recorder: &Recorder<'_>,
) -> Result<(ExitInfo, Stop), LostLease> {
    let mut control = shared.control.subscribe();
    let mut ticker = tokio::time::interval(shared.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout_at = spec.step.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut stop = Stop::No;
    let mut applied = StopLevel::Run;
    loop {
        let level = *control.borrow_and_update();
        if level > applied {
            applied = level;
            stop = Stop::Cancelled;
            let signal = if level == StopLevel::Immediate {
                Signal::Kill
            } else {
                Signal::Term
            };
            let _ = handle.signal(signal);
            if level == StopLevel::Graceful {
                kill_at.get_or_insert(tokio::time::Instant::now() + shared.stop_grace);
            }
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        tokio::select! {
            exit = handle.wait() => {
                let exit = exit.unwrap_or(ExitInfo { code: None, signal: None });
                return Ok((exit, stop));
            }
            _ = ticker.tick() => {
                if recorder.ingest(tail).await.is_err() {
                    return Err(LostLease);
                }
            }
            _ = control.changed() => {}
            _ = tokio::time::sleep_until(timeout_at.unwrap_or(far)), if timeout_at.is_some() && stop == Stop::No => {
                stop = Stop::TimedOut(spec.step.timeout.unwrap_or_default());
                let _ = handle.signal(Signal::Term);
                kill_at = Some(tokio::time::Instant::now() + shared.stop_grace);
            }
            _ = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                let _ = handle.signal(Signal::Kill);
                kill_at = None;
            }
        }
    }
}
