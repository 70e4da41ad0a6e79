//! Reading run history: a step's metrics (a reused step's through its `reused_from` link to
//! the run and step that produced them, marked as such), final values, and the display status
//! of runs whose runner died.

use erebor_store::{MetricRow, RunRecord, RunStatus, StepLink, StepRecord, Store, merge_attempts};
use std::collections::BTreeMap;

/// The metric rows of one step, and for a reused step the link they were read through.
pub(crate) async fn step_metrics(
    store: &Store,
    step: &StepRecord,
    key: Option<&str>,
) -> anyhow::Result<(Vec<MetricRow>, Option<StepLink>)> {
    Ok(store.step_metrics(step, key).await?)
}

/// The merged series per key of a step (latest attempt wins per index), and its reuse link.
pub(crate) async fn step_series(
    store: &Store,
    step: &StepRecord,
) -> anyhow::Result<(BTreeMap<String, Vec<(i64, f64)>>, Option<StepLink>)> {
    let (rows, link) = step_metrics(store, step, None).await?;
    Ok((merge_attempts(&rows), link))
}

/// The last value of each key of a step, and its reuse link.
pub(crate) async fn final_values(
    store: &Store,
    step: &StepRecord,
) -> anyhow::Result<(BTreeMap<String, f64>, Option<StepLink>)> {
    let (series, link) = step_series(store, step).await?;
    let finals = series
        .into_iter()
        .filter_map(|(key, series)| series.last().map(|(_, value)| (key, *value)))
        .collect();
    Ok((finals, link))
}

/// How a value read through a reuse link is marked: `0.98 (reused from RUN:STEP)`.
pub(crate) fn mark_reused(value: String, link: Option<&StepLink>) -> String {
    match link {
        Some(link) => format!("{value} (reused from {link})"),
        None => value,
    }
}

/// The status to show: a `running` run whose runner is gone shows as `killed`.
pub(crate) fn display_status(run: &RunRecord) -> String {
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
            erebor_store::now_ms() - beat
                < crate::format::millis(erebor_engine::engine::LEASE_TIMEOUT)
        })
    };
    if alive {
        "running".to_owned()
    } else {
        "killed".to_owned()
    }
}

/// Steps of a run selected by `selector`: an exact id, or a matrix base (every arm).
pub(crate) fn select_steps<'a>(steps: &'a [StepRecord], selector: &str) -> Vec<&'a StepRecord> {
    let normalised = erebor_workflow::matrix::normalise_id(selector);
    steps
        .iter()
        .filter(|s| s.step_id.as_str() == normalised || s.base_id == normalised)
        .collect()
}
