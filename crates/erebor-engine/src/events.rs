//! Engine events and their subscribers: the console (progress bars, in the CLI), the store
//! (the engine writes it directly, in order), and tracing.

use erebor_core::{FailureClass, StepId};
use std::sync::Arc;
use std::time::Duration;

/// Something that happened in a run.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// The run started (or resumed) with this many steps, of which `done` are already finished.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Steps in the run.
        steps: usize,
        /// Steps finished before this runner started (resume).
        done: usize,
    },
    /// A step reused a finished result.
    StepCached {
        /// Step.
        step: StepId,
        /// The run that produced it.
        from_run: String,
    },
    /// An attempt started.
    StepStarted {
        /// Step.
        step: StepId,
        /// Attempt number.
        attempt: u32,
        /// GPU slots.
        gpus: Vec<u32>,
    },
    /// Progress of a running step.
    StepProgress {
        /// Step.
        step: StepId,
        /// Phase.
        phase: String,
        /// Position.
        position: u64,
        /// Total, when known.
        total: Option<u64>,
    },
    /// A metric from a running step.
    StepMetric {
        /// Step.
        step: StepId,
        /// Key.
        key: String,
        /// Index.
        index: u64,
        /// Value.
        value: f64,
    },
    /// An attempt failed and the step will be retried after `delay`.
    StepRetrying {
        /// Step.
        step: StepId,
        /// The failed attempt's number.
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// Why it failed.
        message: String,
    },
    /// A step finished.
    StepSucceeded {
        /// Step.
        step: StepId,
        /// Wall time of the successful attempt.
        elapsed: Duration,
        /// `expect:` checks that failed.
        expect_failures: Vec<String>,
    },
    /// A step failed for good.
    StepFailed {
        /// Step.
        step: StepId,
        /// Failure class.
        class: FailureClass,
        /// Message.
        message: String,
        /// The attempt's log file.
        log: String,
    },
    /// A step was not run because an upstream step failed.
    StepSkipped {
        /// Step.
        step: StepId,
        /// The failed upstream step.
        because: StepId,
    },
    /// A running step was stopped by cancellation.
    StepInterrupted {
        /// Step.
        step: StepId,
    },
    /// The run ended.
    RunFinished {
        /// Run id.
        run_id: String,
        /// Final status.
        status: String,
    },
}

/// Receives engine events (synchronously, on the scheduler's task: keep it quick).
pub trait Subscriber: Send + Sync {
    /// Handles one event.
    fn on_event(&self, event: &EngineEvent);
}

/// Fans events out to several subscribers.
#[derive(Clone, Default)]
pub struct Subscribers(Vec<Arc<dyn Subscriber>>);

impl Subscribers {
    /// No subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn add(&mut self, subscriber: Arc<dyn Subscriber>) {
        self.0.push(subscriber);
    }

    /// Sends an event to all.
    pub(crate) fn emit(&self, event: &EngineEvent) {
        for subscriber in &self.0 {
            subscriber.on_event(event);
        }
    }
}

/// Logs events through `tracing` (metrics and progress at debug/trace level).
pub struct TracingSubscriber;

impl Subscriber for TracingSubscriber {
    fn on_event(&self, event: &EngineEvent) {
        match event {
            EngineEvent::RunStarted {
                run_id,
                steps,
                done,
            } => {
                tracing::info!(%run_id, steps, already_done = done, "run started");
            }
            EngineEvent::StepCached { step, from_run } => {
                tracing::info!(%step, %from_run, "step cached");
            }
            EngineEvent::StepStarted {
                step,
                attempt,
                gpus,
            } => {
                tracing::info!(%step, attempt, ?gpus, "step started");
            }
            EngineEvent::StepProgress {
                step,
                phase,
                position,
                total,
            } => {
                tracing::trace!(%step, %phase, position, ?total, "progress");
            }
            EngineEvent::StepMetric {
                step,
                key,
                index,
                value,
            } => {
                tracing::debug!(%step, %key, index, value, "metric");
            }
            EngineEvent::StepRetrying {
                step,
                attempt,
                delay,
                message,
            } => {
                tracing::warn!(%step, attempt, delay = ?delay, "attempt failed, retrying: {message}");
            }
            EngineEvent::StepSucceeded {
                step,
                elapsed,
                expect_failures,
            } => {
                if expect_failures.is_empty() {
                    tracing::info!(%step, elapsed = ?elapsed, "step succeeded");
                } else {
                    tracing::warn!(%step, "step succeeded but expectations failed: {}", expect_failures.join("; "));
                }
            }
            EngineEvent::StepFailed {
                step,
                class,
                message,
                log,
            } => {
                tracing::error!(%step, %class, %log, "step failed: {message}");
            }
            EngineEvent::StepSkipped { step, because } => {
                tracing::warn!(%step, %because, "step skipped because an upstream step failed");
            }
            EngineEvent::StepInterrupted { step } => tracing::warn!(%step, "step interrupted"),
            EngineEvent::RunFinished { run_id, status } => {
                tracing::info!(%run_id, %status, "run finished");
            }
        }
    }
}
