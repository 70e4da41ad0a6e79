//! Errors of evaluation, each naming what it concerns.

use std::path::PathBuf;

/// Everything that can go wrong while building or scoring an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A data file has a bad row (missing field, wrong type, invalid JSON).
    #[error("{path}:{line}: {message}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An `hf://datasets/...` data source could not be resolved from the Hub cache or
    /// downloaded.
    #[error("{uri}: {message}")]
    Hub {
        /// The reference as given.
        uri: String,
        /// What went wrong.
        message: String,
        /// Whether a later retry may succeed (a network failure).
        transient: bool,
    },
    /// A task name, task file or task option is invalid.
    #[error("task {task}: {message}")]
    Task {
        /// The task's name (or the task file's path).
        task: String,
        /// What is wrong.
        message: String,
    },
    /// A document's responses cannot be turned into metrics.
    #[error("task {task}, document {doc_id}: {message}")]
    Document {
        /// The task's name.
        task: String,
        /// The document's index in its split file.
        doc_id: usize,
        /// What is wrong.
        message: String,
    },
    /// The model failed to score or generate.
    #[error(transparent)]
    Model(#[from] erebor_model::ModelError),
    /// The evaluation was stopped on request; finished documents are in the resume cache.
    #[error("evaluation cancelled during task {task}")]
    Cancelled {
        /// The task being evaluated.
        task: String,
    },
}

/// Result with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Tokenizer and chat-template failures (erebor-text) arrive as the model error they are
/// within erebor-model.
impl From<erebor_model::TextError> for EvalError {
    fn from(error: erebor_model::TextError) -> Self {
        EvalError::Model(error.into())
    }
}
