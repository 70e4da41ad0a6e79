//! The context every part of a run shares: the store (with its retry policy), the run's
//! folders, the executor, subscribers and cancellation. The scheduler, attempts, preparation
//! and recording all take it; it depends on none of them.

use crate::control::RunControl;
use crate::events::Subscribers;
use crate::executor::Executor;
use crate::poller::Poller;
use crate::retry::StoreRetry;
use erebor_core::RunId;
use erebor_store::{Store, StoreError};
use erebor_workflow::{HashCache, PlannedStep};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What every attempt of a run shares.
pub struct RunContext {
    /// The store.
    pub store: Store,
    /// The run.
    pub run_id: RunId,
    /// The run's folder.
    pub run_dir: PathBuf,
    /// The workflow's folder.
    pub base_dir: PathBuf,
    /// Cache folder shared by runs.
    pub cache_dir: PathBuf,
    /// This host.
    pub host: String,
    /// Starts step processes.
    pub executor: Arc<dyn Executor>,
    /// Event subscribers.
    pub subscribers: Subscribers,
    /// Cancellation.
    pub control: RunControl,
    /// Environment for step processes (secrets, store URL).
    pub child_env: Vec<(String, String)>,
    /// Time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// How often events files are read.
    pub tick: Duration,
    /// File hashes.
    pub hash_cache: Arc<HashCache>,
    /// How transient store errors are retried.
    pub retry: StoreRetry,
    /// Polls the executor for every attempt being followed, in one call per tick.
    pub poller: Poller,
    /// Gathers the run's data for kinds that need it ([`crate::run_data`]); None: such kinds
    /// fail as bad input.
    pub run_data: Option<Arc<dyn crate::run_data::RunDataSource>>,
    /// The kinds whose steps get the run's data gathered (`needs_run_data`).
    pub run_data_kinds: BTreeSet<String>,
    /// The same run with the other executors steps may choose (`executor:` of a step), each
    /// with its own poller; their `others` are empty.
    pub others: Vec<Arc<RunContext>>,
}

impl RunContext {
    /// The run's context for the executor named `name` (this one's, or one of `others`).
    pub(crate) fn for_executor(self: &Arc<Self>, name: &str) -> Option<Arc<RunContext>> {
        if self.executor.name() == name {
            return Some(Arc::clone(self));
        }
        self.others
            .iter()
            .find(|other| other.executor.name() == name)
            .cloned()
    }

    /// The context whose executor runs `step`: its own `executor:` when it names one this
    /// runner has, else the run's.
    pub(crate) fn for_step(self: &Arc<Self>, step: &PlannedStep) -> Arc<RunContext> {
        match step.executor {
            Some(kind) => self.for_executor(kind.as_str()).unwrap_or_else(|| {
                tracing::warn!(step = %step.id, executor = kind.as_str(), "this runner has no such executor; the step runs on the run's");
                Arc::clone(self)
            }),
            None => Arc::clone(self),
        }
    }

    /// Runs a store call the run depends on, retrying transient errors with backoff; any other
    /// error is returned for the caller to fail the run. `what` names it in logs.
    pub(crate) async fn durably<T, F, Fut>(&self, what: &str, operation: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retry.run(what, operation).await
    }
}
