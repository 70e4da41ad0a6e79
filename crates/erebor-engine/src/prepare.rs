//! What a step needs before it starts: its upstream state, its fingerprint, a cached result
//! to reuse, and the inputs it consumes (for artifact lineage).

use crate::events::EngineEvent;
use crate::scheduler::{Shared, State};
use erebor_core::{FailureClass, OutputValue, StepId, StepOutputs};
use erebor_store::{CachedResult, StepStatus, Store};
use erebor_workflow::{PlannedStep, Workflow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether a step's dependencies allow it to start.
pub(crate) enum Upstream {
    /// All finished.
    Ready,
    /// Some are still to run.
    NotReady,
    /// One failed or was skipped.
    Blocked(erebor_core::StepId),
}

pub(crate) fn upstream_state(needs: &[usize], steps: &[PlannedStep], states: &[State]) -> Upstream {
    let mut ready = true;
    for &position in needs {
        match states[position] {
            State::Done(_) => {}
            State::Failed | State::Skipped => return Upstream::Blocked(steps[position].id.clone()),
            State::Interrupted | State::Waiting { .. } | State::Running => ready = false,
        }
    }
    if ready {
        Upstream::Ready
    } else {
        Upstream::NotReady
    }
}

/// Fails a step that cannot start (bad input: too many GPUs, an unknown kind, an unreadable
/// input, an unresolvable reference) without an attempt: in the store, for the subscribers, in
/// the scheduler's `state` and in the `failed` list of its summary.
pub(crate) async fn fail_without_attempt(
    shared: &Shared,
    step: &PlannedStep,
    message: &str,
    state: &mut State,
    failed: &mut Vec<StepId>,
) {
    let class = FailureClass::BadInput;
    *state = State::Failed;
    failed.push(step.id.clone());
    let _ = shared
        .store
        .set_step_status(
            shared.run_id.as_str(),
            step.id.as_str(),
            StepStatus::Failed,
            Some((class.as_str(), message)),
        )
        .await;
    shared.subscribers.emit(EngineEvent::StepFailed {
        step: step.id.clone(),
        class,
        message: message.to_owned(),
        log: String::new(),
    });
}

pub(crate) async fn fingerprint_step(
    shared: &Arc<Shared>,
    workflow: &Workflow,
    step: &PlannedStep,
    kind: Arc<dyn erebor_core::StepKind>,
    upstream: BTreeMap<String, String>,
) -> Result<(String, BTreeMap<String, String>), String> {
    let step_owned = step.clone();
    let base_dir = workflow.base_dir.clone();
    let cache = Arc::clone(&shared.hash_cache);
    let fingerprint = tokio::task::spawn_blocking(move || {
        erebor_workflow::fingerprint::compute(
            &step_owned,
            kind.as_ref(),
            &base_dir,
            &upstream,
            &cache,
        )
    })
    .await
    .map_err(|e| format!("fingerprinting: {e}"))?
    .map_err(|e| format!("an input named in `with:` cannot be hashed: {e}"))?;
    let inputs = serde_json::to_value(&fingerprint.inputs).unwrap_or_default();
    let _ = shared
        .store
        .set_fingerprint(
            shared.run_id.as_str(),
            step.id.as_str(),
            &fingerprint.hash,
            &inputs,
        )
        .await;
    Ok((fingerprint.hash, fingerprint.inputs.inputs))
}

/// Evaluates a step's `expect:` checks on a reused result (its outputs and the metrics of the
/// run that produced it) and records the failures on the step.
pub(crate) async fn cached_expectations(
    shared: &Shared,
    step: &PlannedStep,
    hit: &CachedResult,
    outputs: &StepOutputs,
) -> Vec<String> {
    if step.expect.is_empty() {
        return Vec::new();
    }
    let filter = erebor_store::MetricFilter {
        step: Some(hit.step_id.clone()),
        key: None,
    };
    let metrics = shared
        .store
        .metrics(&hit.run_id, &filter)
        .await
        .unwrap_or_default();
    let failures = crate::outputs::evaluate_expectations(&step.expect, outputs, &metrics);
    let _ = shared
        .store
        .set_expect_failures(shared.run_id.as_str(), step.id.as_str(), &failures)
        .await;
    failures
}

/// A finished result for this fingerprint whose path outputs are all still on disk.
pub async fn cached_result(store: &Store, fingerprint: &str) -> Option<CachedResult> {
    let hits = store.find_cached(fingerprint).await.ok()?;
    hits.into_iter().find(|hit| {
        let outputs: StepOutputs = serde_json::from_value(hit.outputs.clone()).unwrap_or_default();
        outputs.values.values().all(|value| match value {
            OutputValue::Path(path) => path.exists(),
            _ => true,
        })
    })
}

/// The inputs a step consumes, for artifact lineage: files named in its config (with their
/// hashes) and upstream path outputs its resolved config uses.
pub(crate) async fn lineage(
    shared: &Shared,
    needs: &[usize],
    with: &serde_json::Value,
    states: &[State],
    files: &BTreeMap<String, String>,
) -> Vec<(String, String, Option<String>)> {
    let mut inputs = Vec::new();
    let text = with.to_string();
    for &position in needs {
        let State::Done(outputs) = &states[position] else {
            continue;
        };
        for value in outputs.values.values() {
            let OutputValue::Path(path) = value else {
                continue;
            };
            let shown = path.display().to_string();
            if !text.contains(shown.as_str()) {
                continue;
            }
            if let Ok(hash) = shared.hash_cache.hash(path) {
                let producer = shared
                    .store
                    .artifact_by_sha(&hash.sha256)
                    .await
                    .ok()
                    .flatten();
                inputs.push((shown, hash.sha256, producer));
            }
        }
    }
    for (path, sha) in files {
        let producer = shared.store.artifact_by_sha(sha).await.ok().flatten();
        inputs.push((path.clone(), sha.clone(), producer));
    }
    inputs
}
