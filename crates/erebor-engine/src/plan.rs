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

/// Why a step runs instead of reusing a cached result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanReason {
    /// An input named in `with:` cannot be hashed (the step fails when it starts).
    Unhashable(String),
    /// The step says `cache: false`.
    CacheDisabled,
    /// `--no-cache`.
    NoCache,
    /// `--force` selects it.
    Forced,
    /// No earlier run of the workflow finished this step.
    NeverFinished {
        /// The workflow name.
        workflow: String,
    },
    /// The last result's path outputs are gone from disk.
    OutputsGone {
        /// The run that produced it.
        run: String,
    },
    /// Something in the fingerprint changed since that run.
    Changed {
        /// What (config key, input file, kind version, upstream step).
        what: String,
        /// The run whose step differs.
        since_run: String,
        /// Whether it is an upstream step's fingerprint that changed.
        upstream: bool,
    },
    /// That run recorded no fingerprint details to compare with.
    NoDetails {
        /// The run.
        run: String,
    },
    /// Upstream steps run first (so this one's inputs are not known yet).
    UpstreamRuns(Vec<String>),
    /// It needs more GPU slots than the runner has.
    TooFewGpus {
        /// Slots it needs.
        wanted: usize,
        /// Slots the runner has.
        available: usize,
    },
}

impl PlanReason {
    /// Whether the reason is about upstream steps (a changed or re-running upstream).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            PlanReason::UpstreamRuns(_) | PlanReason::Changed { upstream: true, .. }
        )
    }
}

impl std::fmt::Display for PlanReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanReason::Unhashable(error) => write!(f, "an input cannot be hashed: {error}"),
            PlanReason::CacheDisabled => f.write_str("`cache: false`"),
            PlanReason::NoCache => f.write_str("--no-cache"),
            PlanReason::Forced => f.write_str("--force"),
            PlanReason::NeverFinished { workflow } => {
                write!(f, "no earlier run of `{workflow}` finished this step")
            }
            PlanReason::OutputsGone { run } => {
                write!(f, "the outputs of run {run} are gone from disk")
            }
            PlanReason::Changed {
                what, since_run, ..
            } => write!(f, "{what} since run {since_run}"),
            PlanReason::NoDetails { run } => {
                write!(f, "run {run} recorded no fingerprint details")
            }
            PlanReason::UpstreamRuns(steps) => {
                write!(f, "upstream {} will run first", steps.join(", "))
            }
            PlanReason::TooFewGpus { wanted, available } => write!(
                f,
                "needs {wanted} GPU(s) but only {available} are available: it will fail"
            ),
        }
    }
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
    pub reasons: Vec<PlanReason>,
    /// GPU slots it would get.
    pub gpus: Vec<u32>,
    /// The kind's notes.
    pub notes: Vec<String>,
    /// Why the kind refuses to run the step here (e.g. memory), before anything runs. Only a
    /// step that will run is refused: a cached step's refusal becomes a note (see
    /// `refusal_of_cached`).
    pub refusal: Option<String>,
}

/// The refusals of a plan as `step ID: why`, in plan order: what `erebor plan` and `erebor run`
/// refuse the workflow on. Cached steps never appear (their refusal is a note).
pub fn refusals(entries: &[PlanEntry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| Some(format!("step {}: {}", e.step.id, e.refusal.as_ref()?)))
        .collect()
}

/// A kind's refusal of a step the plan reuses from the cache: nothing is refused (the step
/// does not run, so the hardware it would need does not matter), and the note says what would
/// be refused if it ran (`--force`, `--no-cache`, a changed input).
fn refusal_of_cached(
    status: &PlanStatus,
    refusal: Option<String>,
    notes: &mut Vec<String>,
) -> Option<String> {
    match (status, refusal) {
        (PlanStatus::Cached { from_run }, Some(why)) => {
            notes.push(format!(
                "not refused: reused from run {from_run}; running it here would be refused: {why}"
            ));
            None
        }
        (_, refusal) => refusal,
    }
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
        let mut notes = kind.plan_notes(&step.with, &workflow.base_dir);
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
            .map(erebor_core::StepId::as_str)
            .collect();
        let (fingerprint, status) = match computed {
            Err(error) => {
                reasons.push(PlanReason::Unhashable(error.to_string()));
                (None, PlanStatus::Run)
            }
            Ok(fp) => {
                fingerprints.insert(step.id.to_string(), fp.hash.clone());
                let status = if !step.cache {
                    reasons.push(PlanReason::CacheDisabled);
                    PlanStatus::Run
                } else if limits.no_cache {
                    reasons.push(PlanReason::NoCache);
                    PlanStatus::Run
                } else if forced {
                    reasons.push(PlanReason::Forced);
                    PlanStatus::Run
                } else if let Some((hit, _)) = cached_result(store, &fp.hash).await? {
                    PlanStatus::Cached {
                        from_run: hit.run_id.to_string(),
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
            && !reasons.iter().any(PlanReason::is_upstream)
        {
            let steps = upstream_runs.iter().map(|s| (*s).to_owned()).collect();
            reasons.push(PlanReason::UpstreamRuns(steps));
        }
        let refusal = kind.plan_refusal(&step.with, &workflow.base_dir);
        let refusal = refusal_of_cached(&status, refusal, &mut notes);
        entries.push(PlanEntry {
            step: step.clone(),
            fingerprint,
            status,
            reasons,
            gpus: Vec::new(),
            notes,
            refusal,
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
) -> Result<Vec<PlanReason>, erebor_store::StoreError> {
    let Some(last) = store.last_finished_step(&workflow.name, &step.id).await? else {
        return Ok(vec![PlanReason::NeverFinished {
            workflow: workflow.name.clone(),
        }]);
    };
    let old: Option<FingerprintInputs> = last
        .fingerprint_inputs
        .and_then(|value| serde_json::from_value(value).ok());
    let source = last.cached_from_run.unwrap_or(last.run_id).to_string();
    Ok(match old {
        Some(old) => {
            let differences = inputs.differences(&old);
            if differences.is_empty() {
                return Ok(vec![PlanReason::OutputsGone { run: source }]);
            }
            // The differences that remain with the old upstream fingerprints are the step's
            // own; the others come from its upstream steps.
            let own = FingerprintInputs {
                upstream: old.upstream.clone(),
                ..inputs.clone()
            }
            .differences(&old);
            differences
                .into_iter()
                .map(|what| PlanReason::Changed {
                    upstream: !own.contains(&what),
                    what,
                    since_run: source.clone(),
                })
                .collect()
        }
        None => vec![PlanReason::NoDetails { run: source }],
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
                entries[i].reasons.push(PlanReason::TooFewGpus {
                    wanted: want,
                    available: limits.gpus.len(),
                });
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
