//! What `erebor plan` shows: for each expanded step in order, whether a cached result will be
//! reused or why not (new, changed input, changed config, changed upstream), its fingerprint,
//! the GPU slots it would get, and the kind's own notes (e.g. a memory estimate).

use crate::prepare::cached_result;
use crate::scheduler::Limits;
use erebor_store::Store;
use erebor_workflow::fingerprint::{self, FingerprintInputs};
use erebor_workflow::{HashCache, KindRegistry, PlannedStep, Workflow};
use std::collections::BTreeMap;

/// Whether a step will run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanStatus {
    /// A finished result from this run will be reused.
    Cached {
        /// The run that produced it.
        from_run: String,
    },
    /// It will run.
    Run,
}

/// One line of the plan.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// The step.
    pub step: PlannedStep,
    /// Its fingerprint (None when an input cannot be hashed).
    pub fingerprint: Option<String>,
    /// Cached or run.
    pub status: PlanStatus,
    /// Why it runs.
    pub reasons: Vec<String>,
    /// GPU slots it would get.
    pub gpus: Vec<u32>,
    /// The kind's notes.
    pub notes: Vec<String>,
}

/// Plans a workflow against the store's history.
pub async fn plan(
    workflow: &Workflow,
    registry: &KindRegistry,
    store: &Store,
    hash_cache: &HashCache,
    limits: &Limits,
) -> Result<Vec<PlanEntry>, erebor_store::StoreError> {
    let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
    let mut entries: Vec<PlanEntry> = Vec::new();
    for step in &workflow.steps {
        let Some(kind) = registry.get(&step.kind) else {
            continue;
        };
        let notes = kind.plan_notes(&step.with, &workflow.base_dir);
        let computed = fingerprint::compute(
            step,
            kind.as_ref(),
            &workflow.base_dir,
            &fingerprints,
            hash_cache,
        );
        let mut reasons = Vec::new();
        let forced = limits
            .force
            .iter()
            .any(|f| workflow.select(f).iter().any(|s| s.id == step.id));
        let upstream_runs: Vec<&str> = step
            .needs
            .iter()
            .filter(|need| {
                entries
                    .iter()
                    .any(|e| &e.step.id == *need && e.status == PlanStatus::Run)
            })
            .map(|need| need.as_str())
            .collect();
        let (fingerprint, status) = match computed {
            Err(error) => {
                reasons.push(format!("an input cannot be hashed: {error}"));
                (None, PlanStatus::Run)
            }
            Ok(fp) => {
                fingerprints.insert(step.id.to_string(), fp.hash.clone());
                let status = if !step.cache {
                    reasons.push("`cache: false`".to_owned());
                    PlanStatus::Run
                } else if limits.no_cache {
                    reasons.push("--no-cache".to_owned());
                    PlanStatus::Run
                } else if forced {
                    reasons.push("--force".to_owned());
                    PlanStatus::Run
                } else if let Some((hit, _)) = cached_result(store, &fp.hash).await? {
                    PlanStatus::Cached {
                        from_run: hit.run_id,
                    }
                } else {
                    reasons.extend(why_not_cached(store, workflow, step, &fp.inputs).await?);
                    PlanStatus::Run
                };
                (Some(fp.hash), status)
            }
        };
        if status == PlanStatus::Run
            && !upstream_runs.is_empty()
            && reasons.iter().all(|r| !r.contains("upstream"))
        {
            reasons.push(format!(
                "upstream {} will run first",
                upstream_runs.join(", ")
            ));
        }
        entries.push(PlanEntry {
            step: step.clone(),
            fingerprint,
            status,
            reasons,
            gpus: Vec::new(),
            notes,
        });
    }
    assign_gpus(&mut entries, limits);
    Ok(entries)
}

async fn why_not_cached(
    store: &Store,
    workflow: &Workflow,
    step: &PlannedStep,
    inputs: &FingerprintInputs,
) -> Result<Vec<String>, erebor_store::StoreError> {
    let Some(last) = store
        .last_finished_step(&workflow.name, step.id.as_str())
        .await?
    else {
        return Ok(vec![format!(
            "no earlier run of `{}` finished this step",
            workflow.name
        )]);
    };
    let old: Option<FingerprintInputs> = last
        .fingerprint_inputs
        .and_then(|value| serde_json::from_value(value).ok());
    let source = last.cached_from_run.unwrap_or(last.run_id);
    Ok(match old {
        Some(old) => {
            let differences = inputs.differences(&old);
            if differences.is_empty() {
                vec![format!("the outputs of run {source} are gone from disk")]
            } else {
                differences
                    .into_iter()
                    .map(|d| format!("{d} since run {source}"))
                    .collect()
            }
        }
        None => vec![format!("run {source} recorded no fingerprint details")],
    })
}

/// Simulates the scheduler with unit-length steps: in each round every step whose upstream
/// finished in an earlier round starts if a job and its GPUs are free; slots are the lowest free
/// ids, as the runner assigns them.
fn assign_gpus(entries: &mut [PlanEntry], limits: &Limits) {
    let count = entries.len();
    let mut finished_round: Vec<Option<usize>> = vec![None; count];
    let mut round = 0;
    while finished_round.iter().any(Option::is_none) && round <= count {
        let mut jobs_used = 0;
        let mut gpus_used = 0usize;
        for i in 0..count {
            if finished_round[i].is_some() {
                continue;
            }
            let ready = entries[i].step.needs.iter().all(|need| {
                entries
                    .iter()
                    .position(|e| &e.step.id == need)
                    .is_none_or(|p| {
                        finished_round[p].is_some_and(|r| {
                            r < round || (r == round && entries[p].status != PlanStatus::Run)
                        })
                    })
            });
            if !ready {
                continue;
            }
            if entries[i].status != PlanStatus::Run {
                finished_round[i] = Some(round);
                continue;
            }
            let want = entries[i].step.gpus as usize;
            if want > limits.gpus.len() {
                entries[i].reasons.push(format!(
                    "needs {want} GPU(s) but only {} are available: it will fail",
                    limits.gpus.len()
                ));
                finished_round[i] = Some(round);
                continue;
            }
            if jobs_used >= limits.jobs.max(1) || gpus_used + want > limits.gpus.len() {
                continue;
            }
            entries[i].gpus = limits.gpus[gpus_used..gpus_used + want].to_vec();
            gpus_used += want;
            jobs_used += 1;
            finished_round[i] = Some(round);
        }
        round += 1;
    }
}
