//! After a tick's run has ended: whether it measured anything (its fresh steps ran instead of
//! being reused), the value of each `expect:` metric of the steps that ran, and whether it
//! regressed (an `expect:` miss, or a metric outside the band of the earlier fresh runs).
//!
//! Fresh means: every step the schedule names with `--fresh` (every step with `--fresh-all`)
//! ran in this run and succeeded; a schedule without `--fresh` counts a run as fresh only when
//! no step was reused. Runs that are not fresh are not measurements: their metrics are neither
//! checked against the band nor part of later bands (their `expect:` misses still count).

use super::FRESH_ALL;
use super::regression::regression_reasons;
use erebor_store::{
    RunRecord, RunStatus, StepRecord, StepStatus, Store, TickEvaluation, TickRecord,
};
use erebor_workflow::Workflow;
use std::collections::BTreeMap;

/// Default band width when the schedule is gone.
pub(crate) const DEFAULT_K: f64 = 3.0;

/// Evaluates the finished run of `tick` (k: the band width in MADs).
pub(crate) async fn evaluate(
    store: &Store,
    tick: &TickRecord,
    run: &RunRecord,
    workflow: &Workflow,
    k: f64,
) -> anyhow::Result<TickEvaluation> {
    let steps = store
        .steps_of(&erebor_store::RunId::from(run.id.as_str()))
        .await?;
    let fresh_list = fresh_steps_of(run);
    let fresh = run.status == RunStatus::Succeeded && is_fresh(&steps, &fresh_list, workflow);
    let measurements = measure(store, &steps, workflow).await?;
    let expect_failures: Vec<String> = steps
        .iter()
        .flat_map(|s| {
            s.expect_failures
                .iter()
                .map(move |f| format!("{}: {f}", s.step_id.as_str()))
        })
        .collect();
    let earlier: Vec<BTreeMap<String, f64>> = store
        .ticks_of(&tick.schedule)
        .await?
        .into_iter()
        .filter(|t| t.tick_at < tick.tick_at && t.fresh == Some(true))
        .map(|t| t.measurements)
        .collect();
    let checked = if fresh {
        measurements.clone()
    } else {
        BTreeMap::new()
    };
    let reasons = regression_reasons(&expect_failures, &checked, &earlier, k);
    Ok(TickEvaluation {
        fresh,
        measurements: if fresh { measurements } else { BTreeMap::new() },
        regressed: !reasons.is_empty(),
        reasons,
    })
}

/// The fresh-step selectors the run was started with (stored in its options' tags).
pub(crate) fn fresh_steps_of(run: &RunRecord) -> Vec<String> {
    run.options
        .pointer("/tags/fresh")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a step ran in this run (not reused) and succeeded.
fn ran_here(step: &StepRecord) -> bool {
    step.status == StepStatus::Succeeded && step.cached_from_run.is_none()
}

/// Whether the run's fresh steps all ran here (see the module docs).
fn is_fresh(steps: &[StepRecord], fresh: &[String], workflow: &Workflow) -> bool {
    if fresh.is_empty() || fresh.iter().any(|s| s == FRESH_ALL) {
        return !steps.is_empty() && steps.iter().all(ran_here);
    }
    let wanted: Vec<&str> = fresh
        .iter()
        .flat_map(|selector| workflow.select(selector))
        .map(|s| s.id.as_str())
        .collect();
    !wanted.is_empty()
        && wanted.iter().all(|id| {
            steps
                .iter()
                .any(|s| s.step_id.as_str() == *id && ran_here(s))
        })
}

/// `step/key` to the value of each `expect:` key of the steps that ran here.
async fn measure(
    store: &Store,
    steps: &[StepRecord],
    workflow: &Workflow,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for planned in workflow.steps.iter().filter(|s| !s.expect.is_empty()) {
        let Some(step) = steps
            .iter()
            .find(|s| s.step_id.as_str() == planned.id.as_str() && ran_here(s))
        else {
            continue;
        };
        let (finals, _) = crate::history::final_values(store, step).await?;
        for check in &planned.expect {
            if let Some(value) = finals.get(&check.key) {
                out.insert(format!("{}/{}", planned.id.as_str(), check.key), *value);
            }
        }
    }
    Ok(out)
}
