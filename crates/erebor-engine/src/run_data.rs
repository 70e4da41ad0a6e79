//! The run's recorded data for step kinds that need it (`report`): the runner, which has the
//! store open, gathers it before the attempt starts and writes it as JSON into the attempt's
//! folder; the request names the file (`crate::protocol::StepRequest::run_data`) and the step
//! reads it from its context, so its process never opens the store.
//!
//! What the data is belongs to the kind: the runner is handed a [`RunDataSource`] (the CLI's
//! knows the report's data model) and asks it only for kinds whose
//! [`StepKind::needs_run_data`](erebor_core::StepKind::needs_run_data) is true.

use erebor_core::{RunId, StepFailure, StepId};
use erebor_store::Store;
use std::future::Future;
use std::pin::Pin;

/// The step whose data is wanted.
#[derive(Clone, Copy, Debug)]
pub struct RunDataRequest<'a> {
    /// The run.
    pub run_id: &'a RunId,
    /// The step about to start.
    pub step_id: &'a StepId,
    /// Its kind (`uses:`).
    pub kind: &'a str,
    /// Its `with:` block with outputs substituted (secrets still templates).
    pub with: &'a serde_json::Value,
}

/// A future the gatherer returns.
pub type Gathering<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, StepFailure>> + Send + 'a>>;

/// Gathers the recorded data a step kind needs from the store.
pub trait RunDataSource: Send + Sync {
    /// The data for `request` as JSON. A failure fails the attempt with its class (a selector
    /// naming no step is bad input, a store error transient).
    fn gather<'a>(&'a self, store: &'a Store, request: RunDataRequest<'a>) -> Gathering<'a>;
}
