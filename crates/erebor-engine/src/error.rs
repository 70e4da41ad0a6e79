//! The engine's error type.

use erebor_store::StoreError;
use std::path::PathBuf;

/// Engine errors (the run itself failing is a [`crate::RunSummary`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or folder could not be written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The run cannot be resumed.
    #[error("{0}")]
    CannotResume(String),
    /// The stored workflow no longer loads.
    #[error("the workflow stored with run {run} does not load: {errors}")]
    Workflow {
        /// Run id.
        run: String,
        /// The errors.
        errors: Box<erebor_workflow::WorkflowErrors>,
    },
}
