//! What the scheduler hands an attempt (`AttemptSpec`) and what it gets back
//! (`AttemptOutcome`); shared by the attempt and its recorder.

use erebor_core::{OutputType, StepFailure, StepOutputs};
use erebor_store::StoreError;
use erebor_workflow::PlannedStep;
use std::path::PathBuf;

/// How an attempt ended, for the scheduler.
#[derive(Debug)]
pub(crate) enum AttemptOutcome {
    /// The step succeeded.
    Succeeded {
        /// Its outputs.
        outputs: StepOutputs,
        /// `expect:` checks that failed.
        expect_failures: Vec<String>,
    },
    /// It failed.
    Failed {
        /// Why.
        failure: StepFailure,
        /// The log file.
        log: PathBuf,
    },
    /// The executor lost it (or it ended with the runner that started it): the step runs
    /// again without using a retry.
    Lost {
        /// Why.
        message: String,
    },
    /// The run was cancelled while it ran.
    Interrupted,
    /// Another runner took the run over; this one must stop.
    LostLease,
    /// The store refused a write for good; the run must stop (and can be resumed).
    StoreFailed {
        /// The write.
        what: String,
        /// Why.
        error: StoreError,
    },
}

impl AttemptOutcome {
    /// The outcome of a store write that failed: a stale attempt means another runner took
    /// over; anything else stops the run.
    pub(crate) fn from_store_error(what: String, error: StoreError) -> Self {
        match error {
            StoreError::StaleAttempt { .. } => AttemptOutcome::LostLease,
            error => AttemptOutcome::StoreFailed { what, error },
        }
    }
}

/// What the scheduler knows when it starts an attempt.
pub(crate) struct AttemptSpec {
    /// The step.
    pub step: PlannedStep,
    /// Its `with:` with upstream outputs substituted.
    pub with: serde_json::Value,
    /// Attempt number within the run.
    pub number: u32,
    /// GPU slots.
    pub gpus: Vec<u32>,
    /// Whether a retryable failure will be retried.
    pub retries_left: u32,
    /// Inputs for lineage: (path, sha256, producing artifact).
    pub lineage: Vec<(String, String, Option<String>)>,
    /// Outputs the kind declares for this config.
    pub declared: Vec<(String, OutputType)>,
}
