//! What a step needs before it starts: its upstream state, its fingerprint, a cached result
//! to reuse, and the inputs it consumes (for artifact lineage).

use crate::context::RunContext as Shared;
use crate::events::EngineEvent;
use crate::summary::Summary;
use erebor_core::{FailureClass, OutputValue, StepOutputs};
use erebor_store::{CachedResult, StepRecord, StepStatus, Store, StoreError};
use erebor_workflow::{PlannedStep, Workflow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a step could not be prepared.
pub(crate) enum Prepared {
    /// Its input is wrong: the step fails without an attempt.
    BadInput(String),
    /// The store refused a write: the run stops.
    Store(String, StoreError),
}

/// The outputs of a finished step as stored, or why they cannot be used (a step marked done
/// without readable outputs is run again rather than trusted with none).
pub(crate) fn stored_outputs(record: &StepRecord) -> Result<StepOutputs, String> {
    let Some(value) = &record.outputs else {
        return Err(format!(
            "step {} is marked {} but has no stored outputs",
            record.step_id, record.status
        ));
    };
    serde_json::from_value(value.clone()).map_err(|error| {
        format!(
            "the stored outputs of step {} cannot be read: {error}",
            record.step_id
        )
    })
}

/// Fails a step that cannot start (bad input: too many GPUs, an unknown kind, an unreadable
/// input, an unresolvable reference) without an attempt: in the store, for the subscribers and
/// in the `failed` list of the summary.
pub(crate) async fn fail_without_attempt(
    shared: &Shared,
    step: &PlannedStep,
    message: &str,
    summary: &mut Summary,
) {
    let class = FailureClass::BadInput;
    summary.failed.push(step.id.clone());
    let written = shared
        .durably("recording a failed step", || {
            shared.store.set_step_status(
                &shared.run_id,
                &step.id,
                StepStatus::Failed,
                Some((class.as_str(), message)),
            )
        })
        .await;
    if let Err(error) = written {
        summary.store_failed(
            shared,
            &format!("recording that {} failed", step.id),
            &error,
        );
    }
    shared.subscribers.emit(&EngineEvent::StepFailed {
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
) -> Result<(String, BTreeMap<String, String>), Prepared> {
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
    .map_err(|e| Prepared::BadInput(format!("fingerprinting: {e}")))?
    .map_err(|e| Prepared::BadInput(format!("an input named in `with:` cannot be hashed: {e}")))?;
    let inputs = serde_json::to_value(&fingerprint.inputs)
        .map_err(|e| Prepared::BadInput(format!("fingerprint inputs: {e}")))?;
    shared
        .durably("recording a fingerprint", || {
            shared
                .store
                .set_fingerprint(&shared.run_id, &step.id, &fingerprint.hash, &inputs)
        })
        .await
        .map_err(|e| Prepared::Store(format!("recording the fingerprint of {}", step.id), e))?;
    Ok((fingerprint.hash, fingerprint.inputs.inputs))
}

/// Evaluates a step's `expect:` checks on a reused result (its outputs and the metrics of the
/// run that produced it) and records the failures on the step.
pub(crate) async fn cached_expectations(
    shared: &Shared,
    step: &PlannedStep,
    hit: &CachedResult,
    outputs: &StepOutputs,
) -> Result<Vec<String>, StoreError> {
    if step.expect.is_empty() {
        return Ok(Vec::new());
    }
    let filter = erebor_store::MetricFilter {
        step: Some(hit.step_id.clone()),
        key: None,
    };
    let metrics = shared
        .durably("reading the metrics of a reused result", || {
            shared.store.metrics(&hit.run_id, &filter)
        })
        .await?;
    let failures = crate::outputs::evaluate_expectations(&step.expect, outputs, &metrics);
    shared
        .durably("recording `expect:` failures", || {
            shared
                .store
                .set_expect_failures(&shared.run_id, &step.id, &failures)
        })
        .await?;
    Ok(failures)
}

/// A finished result for this fingerprint whose outputs are readable and whose path outputs
/// are all still on disk, with those outputs.
pub(crate) async fn cached_result(
    store: &Store,
    fingerprint: &str,
) -> Result<Option<(CachedResult, StepOutputs)>, StoreError> {
    let hits = store.find_cached(fingerprint).await?;
    Ok(hits.into_iter().find_map(|hit| {
        let outputs: StepOutputs = match serde_json::from_value(hit.outputs.clone()) {
            Ok(outputs) => outputs,
            Err(error) => {
                tracing::warn!(run = %hit.run_id, step = %hit.step_id, "stored outputs unreadable, not reused: {error}");
                return None;
            }
        };
        let present = outputs.values.values().all(|value| match value {
            OutputValue::Path(path) => path.exists(),
            _ => true,
        });
        present.then_some((hit, outputs))
    }))
}

/// The inputs a step consumes, for artifact lineage: files named in its config (with their
/// hashes) and the path outputs of its upstream steps that its resolved config uses.
pub(crate) async fn lineage(
    shared: &Shared,
    upstream: &[&StepOutputs],
    with: &serde_json::Value,
    files: &BTreeMap<String, String>,
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    let mut inputs = Vec::new();
    let text = with.to_string();
    for outputs in upstream {
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
                    .durably("finding an input's producer", || {
                        shared.store.artifact_by_sha(&hash.sha256)
                    })
                    .await?;
                inputs.push((shown, hash.sha256, producer));
            }
        }
    }
    for (path, sha) in files {
        let producer = shared
            .durably("finding an input's producer", || {
                shared.store.artifact_by_sha(sha)
            })
            .await?;
        inputs.push((path.clone(), sha.clone(), producer));
    }
    Ok(inputs)
}
