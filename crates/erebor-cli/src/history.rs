//! Reading run history: a step's metrics (following cached results to the run that produced
//! them), final values, and the display status of runs whose runner died.

use erebor_store::{
    MetricFilter, MetricRow, RunRecord, RunStatus, StepRecord, Store, merge_attempts,
};
use std::collections::BTreeMap;

/// The metric rows of one step; a cached step's rows come from the run that produced them.
pub async fn step_metrics(
    store: &Store,
    step: &StepRecord,
    key: Option<&str>,
) -> anyhow::Result<Vec<MetricRow>> {
    let run = step.cached_from_run.as_deref().unwrap_or(&step.run_id);
    let filter = MetricFilter {
        step: Some(step.step_id.clone()),
        key: key.map(str::to_owned),
    };
    Ok(store.metrics(run, &filter).await?)
}

/// The merged series per key of a step (latest attempt wins per index).
pub async fn step_series(
    store: &Store,
    step: &StepRecord,
) -> anyhow::Result<BTreeMap<String, Vec<(i64, f64)>>> {
    Ok(merge_attempts(&step_metrics(store, step, None).await?))
}

/// The last value of each key of a step.
pub async fn final_values(
    store: &Store,
    step: &StepRecord,
) -> anyhow::Result<BTreeMap<String, f64>> {
    Ok(step_series(store, step)
        .await?
        .into_iter()
        .filter_map(|(key, series)| series.last().map(|(_, value)| (key, *value)))
        .collect())
}

/// The status to show: a `running` run whose runner is gone shows as `killed`.
pub fn display_status(run: &RunRecord) -> String {
    if run.status != RunStatus::Running {
        return run.status.to_string();
    }
    let here = erebor_engine::process::hostname();
    let alive = if run.host == here {
        run.runner_pid
            .and_then(|pid| u32::try_from(pid).ok())
            .is_some_and(erebor_engine::process::is_alive)
    } else {
        run.heartbeat_at.is_some_and(|beat| {
            erebor_store::now_ms() - beat < erebor_engine::engine::LEASE_TIMEOUT.as_millis() as i64
        })
    };
    if alive {
        "running".to_owned()
    } else {
        "killed".to_owned()
    }
}

/// Steps of a run selected by `selector`: an exact id, or a matrix base (every arm).
pub fn select_steps<'a>(steps: &'a [StepRecord], selector: &str) -> Vec<&'a StepRecord> {
    let normalised = erebor_workflow::matrix::normalise_id(selector);
    steps
        .iter()
        .filter(|s| s.step_id == normalised || s.base_id == normalised)
        .collect()
}
