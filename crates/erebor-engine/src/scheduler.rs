//! The scheduler: starts ready steps within `--jobs` and the GPU slots, reuses cached results,
//! retries with exponential backoff, and stops cleanly when the run is cancelled.

use crate::attempt::{AttemptOutcome, AttemptSpec, run_attempt};
use crate::control::{RunControl, StopLevel};
use crate::events::{EngineEvent, Subscribers};
use crate::executor::Executor;
use crate::prepare::{
    Upstream, cached_expectations, cached_result, fail_without_attempt, fingerprint_step, lineage,
    upstream_state,
};
use erebor_core::{OutputValue, RunId, StepId, StepOutputs};
use erebor_store::{StepRecord, StepStatus, Store};
use erebor_workflow::{HashCache, KindRegistry, Workflow};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What every attempt of a run shares.
pub struct Shared {
    /// The store.
    pub store: Store,
    /// The run.
    pub run_id: RunId,
    /// The run's folder.
    pub run_dir: PathBuf,
    /// The workflow's folder.
    pub base_dir: PathBuf,
    /// Cache folder shared by runs.
    pub cache_dir: PathBuf,
    /// This host.
    pub host: String,
    /// Starts step processes.
    pub executor: Arc<dyn Executor>,
    /// Event subscribers.
    pub subscribers: Subscribers,
    /// Cancellation.
    pub control: RunControl,
    /// Environment for step processes (secrets, store URL).
    pub child_env: Vec<(String, String)>,
    /// Time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// How often events files are read.
    pub tick: Duration,
    /// File hashes.
    pub hash_cache: Arc<HashCache>,
}

/// Scheduling limits and cache policy.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Steps running at once.
    pub jobs: usize,
    /// GPU slot ids available.
    pub gpus: Vec<u32>,
    /// Step selectors to run even when cached.
    pub force: Vec<String>,
    /// Never reuse cached results.
    pub no_cache: bool,
}

/// How a scheduler pass ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Steps that failed (after retries).
    pub failed: Vec<StepId>,
    /// Steps skipped because an upstream step failed.
    pub skipped: Vec<StepId>,
    /// Steps interrupted by cancellation.
    pub interrupted: Vec<StepId>,
    /// Failed `expect:` checks, as `step: check`.
    pub expect_failures: Vec<String>,
    /// The run was cancelled.
    pub cancelled: bool,
    /// Another runner took the run over.
    pub lost_lease: bool,
}

/// Where a step is in this scheduler pass.
#[derive(Clone, Debug)]
pub(crate) enum State {
    Waiting { not_before: Option<Instant> },
    Running,
    Done(StepOutputs),
    Failed,
    Skipped,
    Interrupted,
}

/// Runs the steps of `workflow` not yet done in `records`.
pub async fn schedule(
    shared: Arc<Shared>,
    workflow: &Workflow,
    registry: &KindRegistry,
    limits: &Limits,
    records: &[StepRecord],
) -> Summary {
    let steps = &workflow.steps;
    let mut summary = Summary::default();
    let mut states: Vec<State> = steps
        .iter()
        .map(|step| {
            let record = records.iter().find(|r| r.step_id == step.id.as_str());
            match record {
                Some(r) if r.status.is_done() => State::Done(
                    r.outputs
                        .clone()
                        .and_then(|o| serde_json::from_value(o).ok())
                        .unwrap_or_default(),
                ),
                _ => State::Waiting { not_before: None },
            }
        })
        .collect();
    let mut fingerprints: BTreeMap<String, String> = records
        .iter()
        .filter(|r| r.status.is_done())
        .filter_map(|r| r.fingerprint.clone().map(|f| (r.step_id.clone(), f)))
        .collect();
    let need_idx: Vec<Vec<usize>> = steps
        .iter()
        .map(|step| {
            step.needs
                .iter()
                .filter_map(|need| steps.iter().position(|s| &s.id == need))
                .collect()
        })
        .collect();
    let mut next_number: BTreeMap<String, u32> = BTreeMap::new();
    if let Ok(attempts) = shared.store.attempts_of(shared.run_id.as_str()).await {
        for attempt in attempts {
            let entry = next_number.entry(attempt.step_id).or_insert(1);
            *entry = (*entry).max(attempt.number as u32 + 1);
        }
    }
    let mut fingerprint_inputs: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    let mut attempts_used: Vec<u32> = vec![0; steps.len()];
    let mut free_gpus: BTreeSet<u32> = limits.gpus.iter().copied().collect();
    let mut held_gpus: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut running: JoinSet<(usize, AttemptOutcome)> = JoinSet::new();
    let mut control = shared.control.subscribe();

    loop {
        let stopping = shared.control.level() != StopLevel::Run;
        if !stopping {
            for index in 0..steps.len() {
                let State::Waiting { not_before } = states[index] else {
                    continue;
                };
                if not_before.is_some_and(|t| t > Instant::now())
                    || running.len() >= limits.jobs.max(1)
                {
                    continue;
                }
                let step = &steps[index];
                match upstream_state(&need_idx[index], steps, &states) {
                    Upstream::Blocked(because) => {
                        states[index] = State::Skipped;
                        summary.skipped.push(step.id.clone());
                        let _ = shared
                            .store
                            .set_step_status(
                                shared.run_id.as_str(),
                                step.id.as_str(),
                                StepStatus::Skipped,
                                Some((
                                    "skipped",
                                    &format!("upstream step {because} did not succeed"),
                                )),
                            )
                            .await;
                        shared.subscribers.emit(EngineEvent::StepSkipped {
                            step: step.id.clone(),
                            because,
                        });
                        continue;
                    }
                    Upstream::NotReady => continue,
                    Upstream::Ready => {}
                }
                if step.gpus as usize > limits.gpus.len() {
                    let message = format!(
                        "needs {} GPU slot(s) but this runner has {} (pass --gpus or set CUDA_VISIBLE_DEVICES)",
                        step.gpus,
                        limits.gpus.len()
                    );
                    let (state, failed) = (&mut states[index], &mut summary.failed);
                    fail_without_attempt(&shared, step, &message, state, failed).await;
                    continue;
                }
                if (step.gpus as usize) > free_gpus.len() {
                    continue;
                }
                let kind = registry.get(&step.kind).cloned();
                let Some(kind) = kind else {
                    let (state, failed) = (&mut states[index], &mut summary.failed);
                    fail_without_attempt(&shared, step, "unknown step kind", state, failed).await;
                    continue;
                };
                // Fingerprint once, when the upstream fingerprints are known.
                let fingerprint = match fingerprints.get(step.id.as_str()) {
                    Some(known) => Ok(known.clone()),
                    None => {
                        let upstream: BTreeMap<String, String> = step
                            .needs
                            .iter()
                            .filter_map(|n| {
                                fingerprints
                                    .get(n.as_str())
                                    .map(|f| (n.to_string(), f.clone()))
                            })
                            .collect();
                        fingerprint_step(&shared, workflow, step, kind.clone(), upstream)
                            .await
                            .map(|(hash, inputs)| {
                                fingerprint_inputs.insert(index, inputs);
                                hash
                            })
                    }
                };
                let fingerprint = match fingerprint {
                    Ok(fingerprint) => fingerprint,
                    Err(message) => {
                        let (state, failed) = (&mut states[index], &mut summary.failed);
                        fail_without_attempt(&shared, step, &message, state, failed).await;
                        continue;
                    }
                };
                fingerprints.insert(step.id.to_string(), fingerprint.clone());
                let forced = limits
                    .force
                    .iter()
                    .any(|f| workflow.select(f).iter().any(|s| s.id == step.id));
                if step.cache
                    && !limits.no_cache
                    && !forced
                    && attempts_used[index] == 0
                    && let Some(hit) = cached_result(&shared.store, &fingerprint).await
                {
                    let _ = shared
                        .store
                        .mark_cached(shared.run_id.as_str(), step.id.as_str(), &hit)
                        .await;
                    shared.subscribers.emit(EngineEvent::StepCached {
                        step: step.id.clone(),
                        from_run: hit.run_id.clone(),
                    });
                    let outputs: StepOutputs =
                        serde_json::from_value(hit.outputs.clone()).unwrap_or_default();
                    // `expect:` is not part of the fingerprint: check it against the reused result.
                    let failures = cached_expectations(&shared, step, &hit, &outputs).await;
                    summary
                        .expect_failures
                        .extend(failures.iter().map(|f| format!("{}: {f}", step.id)));
                    states[index] = State::Done(outputs);
                    continue;
                }
                let outputs_of = |id: &StepId, name: &str| -> Option<OutputValue> {
                    let position = steps.iter().position(|s| &s.id == id)?;
                    match &states[position] {
                        State::Done(outputs) => outputs.get(name).cloned(),
                        _ => None,
                    }
                };
                let with =
                    match erebor_workflow::runtime::substitute_outputs(&step.with, &outputs_of) {
                        Ok(with) => with,
                        Err(error) => {
                            let (state, failed) = (&mut states[index], &mut summary.failed);
                            let message = error.to_string();
                            fail_without_attempt(&shared, step, &message, state, failed).await;
                            continue;
                        }
                    };
                let gpus: Vec<u32> = free_gpus.iter().copied().take(step.gpus as usize).collect();
                for gpu in &gpus {
                    free_gpus.remove(gpu);
                }
                held_gpus.insert(index, gpus.clone());
                let counter = next_number.entry(step.id.to_string()).or_insert(1);
                let number = *counter;
                *counter += 1;
                let files = fingerprint_inputs.get(&index).cloned().unwrap_or_default();
                let lineage = lineage(&shared, &need_idx[index], &with, &states, &files).await;
                attempts_used[index] += 1;
                let spec = AttemptSpec {
                    step: step.clone(),
                    declared: kind.outputs_for(&with),
                    with,
                    number,
                    gpus,
                    retries_left: step.retries.saturating_sub(attempts_used[index] - 1),
                    lineage,
                };
                states[index] = State::Running;
                let task_shared = Arc::clone(&shared);
                let span = tracing::info_span!("step", step = %step.id, attempt = number);
                running.spawn(tracing::Instrument::instrument(
                    async move { (index, run_attempt(task_shared, spec).await) },
                    span,
                ));
            }
        }

        if running.is_empty() {
            let waiting_later = states.iter().any(|s| {
                matches!(
                    s,
                    State::Waiting {
                        not_before: Some(_)
                    }
                )
            });
            let ready_now = states.iter().enumerate().any(|(i, s)| {
                matches!(s, State::Waiting { .. })
                    && matches!(
                        upstream_state(&need_idx[i], steps, &states),
                        Upstream::Ready
                    )
            });
            if stopping || !(waiting_later || ready_now) {
                break;
            }
        }

        let next_retry = states
            .iter()
            .filter_map(|s| match s {
                State::Waiting {
                    not_before: Some(t),
                } => Some(*t),
                _ => None,
            })
            .min();
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let Ok((index, outcome)) = joined else { continue };
                if let Some(gpus) = held_gpus.remove(&index) {
                    free_gpus.extend(gpus);
                }
                let step = &steps[index];
                states[index] = match outcome {
                    AttemptOutcome::Succeeded { outputs, expect_failures } => {
                        summary.expect_failures.extend(expect_failures.iter().map(|f| format!("{}: {f}", step.id)));
                        State::Done(outputs)
                    }
                    AttemptOutcome::Failed { failure, log } => {
                        let retries_left = step.retries.saturating_sub(attempts_used[index] - 1);
                        if failure.class.is_retryable() && retries_left > 0 && !stopping {
                            let exponent = attempts_used[index].saturating_sub(1).min(16);
                            let delay = (step.retry_backoff * 2u32.pow(exponent)).min(Duration::from_secs(600));
                            shared.subscribers.emit(EngineEvent::StepRetrying {
                                step: step.id.clone(),
                                attempt: attempts_used[index],
                                delay,
                                message: failure.message.clone(),
                            });
                            State::Waiting { not_before: Some(Instant::now() + delay) }
                        } else {
                            shared.subscribers.emit(EngineEvent::StepFailed {
                                step: step.id.clone(),
                                class: failure.class,
                                message: failure.message.clone(),
                                log: log.display().to_string(),
                            });
                            summary.failed.push(step.id.clone());
                            State::Failed
                        }
                    }
                    AttemptOutcome::Interrupted => {
                        summary.interrupted.push(step.id.clone());
                        State::Interrupted
                    }
                    AttemptOutcome::LostLease => {
                        summary.lost_lease = true;
                        shared.control.stop(StopLevel::Immediate);
                        State::Interrupted
                    }
                };
            }
            _ = tokio::time::sleep_until(next_retry.unwrap_or(far)), if next_retry.is_some() => {}
            _ = control.changed() => {}
        }
    }
    summary.cancelled = shared.control.level() != StopLevel::Run;
    summary
}
