//! How a scheduler pass ended: failed, skipped and interrupted steps, `expect:` failures, and
//! why the run stopped (cancellation, a lost lease, a store failure).

use crate::context::RunContext;
use crate::control::StopLevel;
use erebor_core::StepId;
use erebor_store::StoreError;

/// How a scheduler pass ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Steps that failed (after retries).
    pub failed: Vec<StepId>,
    /// Steps skipped because an upstream step failed.
    pub skipped: Vec<StepId>,
    /// Steps interrupted by cancellation.
    pub interrupted: Vec<StepId>,
    /// Failed `expect:` checks, as `step: check`.
    pub expect_failures: Vec<String>,
    /// The run was cancelled.
    pub cancelled: bool,
    /// Another runner took the run over.
    pub lost_lease: bool,
    /// A store write failed for good (not a transient error): the run stopped and can be
    /// resumed once the store works again.
    pub store_failure: Option<String>,
}

impl Summary {
    /// Records the first store failure and stops the run: running steps are asked to stop
    /// (they checkpoint), no new step starts.
    pub(crate) fn store_failed(&mut self, ctx: &RunContext, what: &str, error: &StoreError) {
        tracing::error!("{what}: the store refused the write: {error}");
        if self.store_failure.is_none() {
            self.store_failure = Some(format!("{what}: {error}"));
        }
        ctx.control.stop(StopLevel::Graceful);
    }
}
