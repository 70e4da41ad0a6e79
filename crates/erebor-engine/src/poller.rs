//! One poller per run: every tick (and whenever the executor says something changed) it asks
//! the executor for the states of all attempts being followed in one call, and passes each
//! attempt's state to the task following it.

use crate::executor::{Executor, ExternalId, JobState};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

type Watched = Arc<Mutex<BTreeMap<ExternalId, watch::Sender<JobState>>>>;

/// Polls the executor for every followed attempt at once; stops when dropped.
pub struct Poller {
    watched: Watched,
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    /// Starts polling `executor` every `every` (call inside a tokio runtime).
    pub fn start(executor: Arc<dyn Executor>, every: Duration) -> Self {
        let watched: Watched = Arc::default();
        let wake = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(poll_loop(
            executor,
            Arc::clone(&watched),
            Arc::clone(&wake),
            every,
        ));
        Self {
            watched,
            wake,
            task,
        }
    }

    /// Follows an attempt: the receiver gets each new state the executor reports.
    pub(crate) fn watch(&self, id: &ExternalId, now: JobState) -> watch::Receiver<JobState> {
        let (sender, receiver) = watch::channel(now);
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), sender);
        self.wake.notify_one();
        receiver
    }

    /// Stops following an attempt.
    pub(crate) fn unwatch(&self, id: &ExternalId) {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop(
    executor: Arc<dyn Executor>,
    watched: Watched,
    wake: Arc<tokio::sync::Notify>,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = executor.changed() => {}
            () = wake.notified() => {}
        }
        let ids: Vec<ExternalId> = watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let states = executor.poll(&ids).await;
        let watched = watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, state) in ids.iter().zip(states) {
            if let Some(sender) = watched.get(id) {
                sender.send_if_modified(|current| {
                    let changed = *current != state;
                    *current = state;
                    changed
                });
            }
        }
    }
}
