//! Recording an attempt: its events (metrics in batches, progress to subscribers) while it
//! runs, and its end (outputs, artifacts, `expect:` results) when it stops.

use crate::context::RunContext as Shared;
use crate::events::EngineEvent;
use crate::outcome::{AttemptOutcome, AttemptSpec};
use crate::outputs;
use crate::tail::EventTail;
use erebor_core::{
    AttemptId, FailureClass, OutputValue, StepEvent, StepFailure, StepId, StepOutputs,
};
use erebor_store::{
    AttemptEnd, AttemptStatus, MetricFilter, MetricPoint, NewArtifact, StepStatus, StoreError,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes one attempt's events and end to the store.
pub(crate) struct Recorder<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) step: &'a StepId,
    pub(crate) attempt: &'a AttemptId,
    pub(crate) log: &'a PathBuf,
    /// Metrics a passing database error kept out; retried with the next batch.
    pub(crate) pending: Mutex<Vec<MetricPoint>>,
}

impl<'a> Recorder<'a> {
    /// A recorder for one attempt.
    pub(crate) fn new(
        shared: &'a Shared,
        step: &'a StepId,
        attempt: &'a AttemptId,
        log: &'a PathBuf,
    ) -> Self {
        Self {
            shared,
            step,
            attempt,
            log,
            pending: Mutex::default(),
        }
    }

    /// The executor lost the attempt: it is recorded `lost` and its step pending, to run
    /// again without using a retry.
    pub(crate) async fn lost(&self, message: String) -> AttemptOutcome {
        let end = AttemptEnd {
            status: AttemptStatus::Lost,
            step_status: StepStatus::Pending,
            exit_code: None,
            failure: Some(("lost".to_owned(), message.clone())),
            outputs: None,
            artifacts: outputs::log_artifact(self.log).into_iter().collect(),
            expect_failures: Vec::new(),
        };
        let finished = self
            .shared
            .durably("recording a lost attempt", || {
                self.shared.store.finish_attempt(self.attempt, &end)
            })
            .await;
        match finished {
            Ok(()) => AttemptOutcome::Lost { message },
            Err(error) => self.store_failed("recording a lost attempt", error),
        }
    }

    /// An attempt of a runner that died ended without a result: recorded `interrupted`, as
    /// any attempt its runner stopped, and run again.
    pub(crate) async fn interrupted_with_runner(&self) -> AttemptOutcome {
        let message = "interrupted: its runner stopped while it ran; resumed by a new runner";
        let interrupted = self
            .shared
            .durably("recording an interrupted attempt", || {
                self.shared.store.interrupt_attempt(self.attempt, message)
            })
            .await;
        match interrupted {
            Ok(_) => AttemptOutcome::Lost {
                message: message.to_owned(),
            },
            Err(error) => self.store_failed("recording an interrupted attempt", error),
        }
    }

    /// Moves new events into the store and to subscribers while the step runs. A transient
    /// store error keeps the metrics for the next tick; Err is the attempt's end: its writes
    /// are refused (another runner owns it) or the store failed for good.
    pub(crate) async fn ingest(&self, tail: &mut EventTail) -> Result<(), AttemptOutcome> {
        let points = self.take_points(tail);
        match record_points(self.shared, self.step, self.attempt, &points).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_transient() => {
                tracing::warn!(step = %self.step, "could not record {} metrics yet: {error}", points.len());
                *self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = points;
                Ok(())
            }
            Err(error) => Err(self.store_failed("recording metrics", error)),
        }
    }

    /// Records every event still unrecorded once the step process has ended, retrying
    /// transient store errors.
    pub(crate) async fn flush(&self, tail: &mut EventTail) -> Result<(), AttemptOutcome> {
        let points = self.take_points(tail);
        self.shared
            .durably("recording metrics", || {
                record_points(self.shared, self.step, self.attempt, &points)
            })
            .await
            .map_err(|error| self.store_failed("recording metrics", error))
    }

    fn take_points(&self, tail: &mut EventTail) -> Vec<MetricPoint> {
        let mut points = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        match tail.read_new() {
            Ok(events) => points.extend(emit_events(self.shared, self.step, events)),
            Err(error) => tracing::warn!(step = %self.step, "cannot read events: {error}"),
        }
        points
    }

    fn store_failed(&self, what: &str, error: StoreError) -> AttemptOutcome {
        let what = format!("{what} of step {} (attempt {})", self.step, self.attempt);
        AttemptOutcome::from_store_error(what, error)
    }

    pub(crate) async fn fail(
        &self,
        class: FailureClass,
        message: String,
        exit_code: Option<i32>,
        retry: bool,
    ) -> AttemptOutcome {
        let end = AttemptEnd {
            status: AttemptStatus::Failed,
            step_status: if retry {
                StepStatus::Pending
            } else {
                StepStatus::Failed
            },
            exit_code,
            failure: Some((class.as_str().to_owned(), message.clone())),
            outputs: None,
            artifacts: outputs::log_artifact(self.log).into_iter().collect(),
            expect_failures: Vec::new(),
        };
        let finished = self
            .shared
            .durably("recording a failed attempt", || {
                self.shared.store.finish_attempt(self.attempt, &end)
            })
            .await;
        if let Err(error) = finished {
            return self.store_failed("recording the failure", error);
        }
        AttemptOutcome::Failed {
            failure: StepFailure::new(class, message),
            log: self.log.clone(),
        }
    }

    /// Records a successful attempt: checks the outputs against what the kind declared,
    /// records metric outputs, hashes path outputs into artifacts, evaluates `expect:` and
    /// ends the attempt with its outputs, in that order; any step failing fails the attempt.
    pub(crate) async fn succeed(
        &self,
        spec: &AttemptSpec,
        step_outputs: StepOutputs,
        elapsed: Duration,
    ) -> AttemptOutcome {
        match self.end_of_success(spec, &step_outputs).await {
            Ok(end) => self.finish_success(step_outputs, end, elapsed).await,
            Err(Ended::Failure(failure)) => {
                self.fail(failure.class, failure.message, Some(0), false)
                    .await
            }
            Err(Ended::Outcome(outcome)) => outcome,
        }
    }

    async fn end_of_success(
        &self,
        spec: &AttemptSpec,
        step_outputs: &StepOutputs,
    ) -> Result<AttemptEnd, Ended> {
        outputs::check_outputs(step_outputs, &spec.declared).map_err(Ended::Failure)?;
        let metric_outputs: Vec<MetricPoint> = step_outputs
            .values
            .iter()
            .filter_map(|(name, value)| match value {
                OutputValue::Metric(v) => Some(MetricPoint {
                    key: name.clone(),
                    index: 0,
                    value: *v,
                }),
                _ => None,
            })
            .collect();
        self.shared
            .durably("recording metric outputs", || {
                record_points(self.shared, self.step, self.attempt, &metric_outputs)
            })
            .await
            .map_err(|e| Ended::Outcome(self.store_failed("recording metric outputs", e)))?;
        let mut artifacts = self.artifacts(spec, step_outputs).await?;
        artifacts.extend(outputs::log_artifact(self.log));
        let expect_failures = self.expectations(spec, step_outputs).await?;
        let stored = serde_json::to_value(step_outputs).map_err(|error| {
            Ended::Failure(StepFailure::fatal(format!(
                "the outputs cannot be stored: {error}"
            )))
        })?;
        Ok(AttemptEnd {
            status: AttemptStatus::Succeeded,
            step_status: StepStatus::Succeeded,
            exit_code: Some(0),
            failure: None,
            outputs: Some(stored),
            artifacts,
            expect_failures,
        })
    }

    /// The path outputs hashed into artifact records, with their lineage.
    async fn artifacts(
        &self,
        spec: &AttemptSpec,
        step_outputs: &StepOutputs,
    ) -> Result<Vec<NewArtifact>, Ended> {
        let shared_cache = Arc::clone(&self.shared.hash_cache);
        let outputs = step_outputs.clone();
        let declared = spec.declared.clone();
        let lineage = spec.lineage.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            outputs::artifacts_for(&outputs, &declared, &lineage, &shared_cache)
        })
        .await;
        match hashed {
            Ok(Ok(artifacts)) => Ok(artifacts),
            Ok(Err(failure)) => Err(Ended::Failure(failure)),
            Err(join) => Err(Ended::Failure(StepFailure::unknown(format!(
                "hashing outputs: {join}"
            )))),
        }
    }

    /// The `expect:` checks that fail on the outputs and the metrics recorded so far.
    async fn expectations(
        &self,
        spec: &AttemptSpec,
        step_outputs: &StepOutputs,
    ) -> Result<Vec<String>, Ended> {
        if spec.step.expect.is_empty() {
            return Ok(Vec::new());
        }
        let filter = MetricFilter {
            step: Some(self.step.clone()),
            key: None,
        };
        let metrics = self
            .shared
            .durably("reading metrics for `expect:`", || {
                self.shared.store.metrics(&self.shared.run_id, &filter)
            })
            .await
            .map_err(|e| Ended::Outcome(self.store_failed("reading metrics for `expect:`", e)))?;
        Ok(outputs::evaluate_expectations(
            &spec.step.expect,
            step_outputs,
            &metrics,
        ))
    }

    async fn finish_success(
        &self,
        step_outputs: StepOutputs,
        end: AttemptEnd,
        elapsed: Duration,
    ) -> AttemptOutcome {
        let finished = self
            .shared
            .durably("recording a succeeded attempt", || {
                self.shared.store.finish_attempt(self.attempt, &end)
            })
            .await;
        if let Err(error) = finished {
            return self.store_failed("recording the result", error);
        }
        let expect_failures = end.expect_failures;
        self.shared.subscribers.emit(&EngineEvent::StepSucceeded {
            step: self.step.clone(),
            elapsed,
            expect_failures: expect_failures.clone(),
        });
        AttemptOutcome::Succeeded {
            outputs: step_outputs,
            expect_failures,
        }
    }
}

/// Why recording a success stopped short: the step's outputs are wrong (the attempt fails),
/// or the attempt already has its outcome (a store failure, a lost lease).
enum Ended {
    Failure(StepFailure),
    Outcome(AttemptOutcome),
}

/// Sends events to subscribers and returns the metric points among them.
pub(crate) fn emit_events(
    shared: &Shared,
    step: &StepId,
    events: Vec<StepEvent>,
) -> Vec<MetricPoint> {
    let mut points = Vec::new();
    for event in events {
        match event {
            StepEvent::Metric { key, index, value } => {
                shared.subscribers.emit(&EngineEvent::StepMetric {
                    step: step.clone(),
                    key: key.clone(),
                    index,
                    value,
                });
                points.push(MetricPoint { key, index, value });
            }
            StepEvent::Progress {
                phase,
                position,
                total,
            } => {
                shared.subscribers.emit(&EngineEvent::StepProgress {
                    step: step.clone(),
                    phase,
                    position,
                    total,
                });
            }
        }
    }
    points
}

/// Records metric points of an attempt in one batch.
pub(crate) async fn record_points(
    shared: &Shared,
    step: &StepId,
    attempt: &AttemptId,
    points: &[MetricPoint],
) -> Result<(), StoreError> {
    shared
        .store
        .record_metrics(&shared.run_id, step, attempt, points)
        .await
        .map(|_| ())
}
