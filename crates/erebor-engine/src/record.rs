//! Recording an attempt: its events (metrics in batches, progress to subscribers) while it
//! runs, and its end (outputs, artifacts, `expect:` results) when it stops.

use crate::attempt::{AttemptOutcome, AttemptSpec};
use crate::events::EngineEvent;
use crate::outputs;
use crate::scheduler::Shared;
use crate::tail::EventTail;
use erebor_core::{
    AttemptId, FailureClass, OutputValue, StepEvent, StepFailure, StepId, StepOutputs,
};
use erebor_store::{
    AttemptEnd, AttemptStatus, MetricFilter, MetricPoint, NewArtifact, StepStatus, StoreError,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Writes one attempt's events and end to the store.
pub(crate) struct Recorder<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) step: &'a StepId,
    pub(crate) attempt: &'a AttemptId,
    pub(crate) log: &'a PathBuf,
    /// Metrics a passing database error kept out; retried with the next batch.
    pub(crate) pending: std::sync::Mutex<Vec<MetricPoint>>,
}

impl Recorder<'_> {
    /// Moves new events into the store and to subscribers. Err means the attempt's writes are
    /// refused (another runner owns it).
    pub(crate) async fn ingest(&self, tail: &mut EventTail) -> Result<(), StoreError> {
        let events = match tail.read_new() {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(step = %self.step, "cannot read events: {error}");
                return Ok(());
            }
        };
        let mut points =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        points.extend(emit_events(self.shared, self.step, events));
        match record_points(self.shared, self.step, self.attempt, &points).await {
            Ok(()) => Ok(()),
            Err(error @ StoreError::StaleAttempt { .. }) => Err(error),
            Err(error) => {
                tracing::warn!(step = %self.step, "could not record {} metrics yet: {error}", points.len());
                *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = points;
                Ok(())
            }
        }
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
        if let Err(StoreError::StaleAttempt { .. }) = self
            .shared
            .store
            .finish_attempt(self.attempt.as_str(), &end)
            .await
        {
            return AttemptOutcome::LostLease;
        }
        AttemptOutcome::Failed {
            failure: StepFailure::new(class, message),
            log: self.log.clone(),
        }
    }

    pub(crate) async fn succeed(
        &self,
        spec: &AttemptSpec,
        step_outputs: StepOutputs,
        elapsed: Duration,
    ) -> AttemptOutcome {
        if let Err(failure) = outputs::check_outputs(&step_outputs, &spec.declared) {
            return self
                .fail(failure.class, failure.message, Some(0), false)
                .await;
        }
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
        if !metric_outputs.is_empty()
            && let Err(StoreError::StaleAttempt { .. }) = self
                .shared
                .store
                .record_metrics(
                    self.shared.run_id.as_str(),
                    self.step.as_str(),
                    self.attempt.as_str(),
                    &metric_outputs,
                )
                .await
        {
            return AttemptOutcome::LostLease;
        }
        let hashed = {
            let shared_cache = Arc::clone(&self.shared.hash_cache);
            let outputs = step_outputs.clone();
            let declared = spec.declared.clone();
            let lineage = spec.lineage.clone();
            tokio::task::spawn_blocking(move || {
                outputs::artifacts_for(&outputs, &declared, &lineage, &shared_cache)
            })
            .await
        };
        let mut artifacts: Vec<NewArtifact> = match hashed {
            Ok(Ok(artifacts)) => artifacts,
            Ok(Err(failure)) => {
                return self
                    .fail(failure.class, failure.message, Some(0), false)
                    .await;
            }
            Err(join) => {
                return self
                    .fail(
                        FailureClass::Unknown,
                        format!("hashing outputs: {join}"),
                        Some(0),
                        false,
                    )
                    .await;
            }
        };
        artifacts.extend(outputs::log_artifact(self.log));
        let metrics = if spec.step.expect.is_empty() {
            Vec::new()
        } else {
            self.shared
                .store
                .metrics(
                    self.shared.run_id.as_str(),
                    &MetricFilter {
                        step: Some(self.step.to_string()),
                        key: None,
                    },
                )
                .await
                .unwrap_or_default()
        };
        let expect_failures =
            outputs::evaluate_expectations(&spec.step.expect, &step_outputs, &metrics);
        let end = AttemptEnd {
            status: AttemptStatus::Succeeded,
            step_status: StepStatus::Succeeded,
            exit_code: Some(0),
            failure: None,
            outputs: serde_json::to_value(&step_outputs).ok(),
            artifacts,
            expect_failures: expect_failures.clone(),
        };
        match self
            .shared
            .store
            .finish_attempt(self.attempt.as_str(), &end)
            .await
        {
            Ok(()) => {}
            Err(StoreError::StaleAttempt { .. }) => return AttemptOutcome::LostLease,
            Err(error) => {
                return AttemptOutcome::Failed {
                    failure: StepFailure::unknown(format!("recording the result: {error}")),
                    log: self.log.clone(),
                };
            }
        }
        self.shared.subscribers.emit(EngineEvent::StepSucceeded {
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

/// Sends events to subscribers and returns the metric points among them.
pub fn emit_events(shared: &Shared, step: &StepId, events: Vec<StepEvent>) -> Vec<MetricPoint> {
    let mut points = Vec::new();
    for event in events {
        match event {
            StepEvent::Metric { key, index, value } => {
                shared.subscribers.emit(EngineEvent::StepMetric {
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
                shared.subscribers.emit(EngineEvent::StepProgress {
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
pub async fn record_points(
    shared: &Shared,
    step: &StepId,
    attempt: &AttemptId,
    points: &[MetricPoint],
) -> Result<(), StoreError> {
    shared
        .store
        .record_metrics(
            shared.run_id.as_str(),
            step.as_str(),
            attempt.as_str(),
            points,
        )
        .await
        .map(|_| ())
}
