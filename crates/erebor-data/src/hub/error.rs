//! [`HubError`]: what can fail resolving or downloading an `hf://` source.

use std::path::PathBuf;

/// A failure to resolve or download an `hf://` source.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The URI is not of the form `hf://datasets/OWNER/NAME[@REV]/PATH`.
    #[error("{uri}: {message}")]
    BadUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        message: String,
    },
    /// The repository, revision or file does not exist (HTTP 404), or a glob matched nothing.
    #[error("{uri}: not found on the Hub ({detail})")]
    NotFound {
        /// The URI as given.
        uri: String,
        /// The URL or pattern that found nothing.
        detail: String,
    },
    /// The Hub refused access (HTTP 401/403).
    #[error(
        "{uri}: access denied (HTTP {status}); a gated or private dataset needs HF_TOKEN in the environment"
    )]
    Denied {
        /// The URI as given.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// A retryable failure persisted through every attempt.
    #[error("{uri}: {message} (after {attempts} attempts)")]
    Transient {
        /// The URI as given.
        uri: String,
        /// The last failure.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// Another HTTP status, or an answer that is not what the Hub sends.
    #[error("{uri}: {message}")]
    Protocol {
        /// The URI as given.
        uri: String,
        /// What came back.
        message: String,
    },
    /// The cache could not be written or read.
    #[error("{path}: {source}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    /// Whether a later retry of the whole step may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, HubError::Transient { .. })
    }
}
