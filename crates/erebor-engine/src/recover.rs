//! Recovery of attempts a dead runner left `running`: stop any step process still alive, record
//! what its events file holds, then mark the attempt interrupted so it can never write again.

use crate::engine::EngineError;
use crate::process::{self, Signal};
use crate::protocol::AttemptFiles;
use crate::record::{emit_events, record_points};
use crate::scheduler::Shared;
use crate::tail::EventTail;
use erebor_core::{AttemptId, StepId};
use erebor_store::AttemptStatus;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Cleans up every attempt of the run that is still marked running.
pub async fn recover_attempts(shared: &Shared) -> Result<(), EngineError> {
    let attempts = shared.store.attempts_of(shared.run_id.as_str()).await?;
    for attempt in attempts
        .into_iter()
        .filter(|a| a.status == AttemptStatus::Running)
    {
        if attempt.host == shared.host
            && let Some(pid) = attempt
                .handle
                .as_deref()
                .and_then(|h| h.parse::<u32>().ok())
        {
            stop_leftover(pid, shared.stop_grace).await;
        }
        let step = StepId::new(attempt.step_id.clone());
        let id = AttemptId::new(attempt.id.clone());
        let files = AttemptFiles {
            dir: PathBuf::from(&attempt.dir),
        };
        let mut tail = EventTail::new(&files.events());
        match tail.read_new() {
            Ok(events) => {
                let points = emit_events(shared, &step, events);
                let recorded = points.len();
                record_points(shared, &step, &id, &points).await?;
                tracing::info!(step = %step, attempt = attempt.number, recorded, "recovered the metrics of an interrupted attempt");
            }
            Err(error) => {
                tracing::warn!(step = %step, "cannot read {}: {error}", files.events().display())
            }
        }
        shared
            .store
            .interrupt_attempt(
                &attempt.id,
                "interrupted: its runner stopped while it ran; resumed by a new runner",
            )
            .await?;
    }
    Ok(())
}

/// Waits for a step process of the dead runner to finish stopping (it got SIGTERM from its
/// parent-death signal and may be writing a checkpoint), then kills its process group.
async fn stop_leftover(pid: u32, grace: Duration) {
    if !process::is_alive(pid) {
        return;
    }
    tracing::warn!(
        pid,
        "a step process of the previous runner is still alive; stopping it"
    );
    let _ = process::signal_group(pid, Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && process::is_alive(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = process::signal_group(pid, Signal::Kill);
    while process::is_alive(pid) && Instant::now() < deadline + Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
