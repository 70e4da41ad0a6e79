//! The webhook notice of a regressed run: a JSON POST to the URL in the environment variable
//! the schedule names (`--notify-env`). The URL may carry a token, so it is read from the
//! environment when the notice is sent and never stored, logged or printed.

use erebor_store::{Schedule, Store, TickRecord};
use std::time::Duration;

/// The body of a notice.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Notice<'a> {
    /// Always `erebor.schedule.regression`.
    pub(crate) event: &'static str,
    /// The schedule.
    pub(crate) schedule: &'a str,
    /// The tick time, RFC 3339 UTC.
    pub(crate) tick_at: String,
    /// The run.
    pub(crate) run_id: Option<&'a str>,
    /// The run's workflow name.
    pub(crate) workflow: &'a str,
    /// The workflow file's sha256 when the run started.
    pub(crate) workflow_sha256: &'a str,
    /// The erebor version that ran it.
    pub(crate) erebor_version: &'a str,
    /// Why it regressed.
    pub(crate) reasons: &'a [String],
    /// What it measured.
    pub(crate) measurements: &'a std::collections::BTreeMap<String, f64>,
}

/// Sends the notice for `tick` once (the store's `claim_notice` decides who sends), if the
/// schedule names a webhook. Delivery problems are recorded on the tick and logged without
/// the URL.
pub(crate) async fn send_once(
    store: &Store,
    http: &reqwest::Client,
    schedule: &Schedule,
    tick: &TickRecord,
    run: &erebor_store::RunRecord,
) -> anyhow::Result<()> {
    let Some(variable) = &schedule.notify_env else {
        return Ok(());
    };
    if !store.claim_notice(&tick.schedule, tick.tick_at).await? {
        return Ok(());
    }
    let notice = Notice {
        event: "erebor.schedule.regression",
        schedule: &tick.schedule,
        tick_at: rfc3339(tick.tick_at),
        run_id: tick.run_id.as_deref(),
        workflow: &run.workflow_name,
        workflow_sha256: &run.workflow_hash,
        erebor_version: &run.erebor_version,
        reasons: &tick.reasons,
        measurements: &tick.measurements,
    };
    let error = match std::env::var(variable) {
        Ok(url) if !url.is_empty() => post(http, &url, &notice).await.err(),
        _ => Some(format!(
            "the webhook's environment variable {variable} is not set in the scheduler's environment"
        )),
    };
    match error {
        None => {
            tracing::info!(schedule = %tick.schedule, run = ?tick.run_id, "regression notice sent");
        }
        Some(error) => {
            tracing::warn!(schedule = %tick.schedule, "regression notice not delivered: {error}");
            store
                .set_notify_error(&tick.schedule, tick.tick_at, &error)
                .await?;
        }
    }
    Ok(())
}

/// POSTs the notice; errors name the status or the transport problem, never the URL.
async fn post(http: &reqwest::Client, url: &str, notice: &Notice<'_>) -> Result<(), String> {
    let response = http
        .post(url)
        .timeout(Duration::from_secs(15))
        .json(notice)
        .send()
        .await
        .map_err(|e| format!("the webhook could not be reached: {}", e.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", response.status()))
    }
}

/// ms since the epoch as RFC 3339 UTC.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
