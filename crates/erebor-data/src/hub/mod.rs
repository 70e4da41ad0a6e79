//! `hf://datasets/OWNER/NAME[@REVISION]/PATH` sources, resolved through the Hugging Face Hub
//! HTTP API and downloaded once into a cache.
//!
//! - The path may be a glob (`data/train-*.parquet`, `**/*.jsonl`): the repository tree under
//!   the glob's literal prefix is listed (`GET /api/datasets/OWNER/NAME/tree/REV/DIR?recursive=true`,
//!   following `Link: rel="next"` pages) and matched.
//! - Each file is fetched from `/datasets/OWNER/NAME/resolve/REV/PATH`, streamed to a `.part`
//!   file while hashed, checked against the listed size and (for LFS files) the listed sha256,
//!   then renamed into place with a `.sha256` file beside it.
//! - 429, 5xx, dropped connections and truncated bodies are retried with exponential backoff;
//!   404 and 401/403 are not.
//! - The resolved file list of each URI is cached too, so a second run needs no network. Pin a
//!   commit (`@<sha>`) for reproducible data; a branch is resolved once, then reused until
//!   [`HubClient::refresh`] is set.
//! - `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) is read from the environment and sent as a bearer
//!   token; it is never logged or written anywhere. `HF_ENDPOINT` overrides the Hub's address.

mod cache;
mod http;
mod uri;

pub use uri::HubUri;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The Hub's public address, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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

/// One downloaded file of an `hf://` source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubFile {
    /// `hf://datasets/OWNER/NAME@REV/PATH` of this file.
    pub uri: String,
    /// The cached local copy.
    pub local_path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Talks to a Hugging Face Hub (or a server that answers like it) and keeps a download cache.
#[derive(Clone, Debug)]
pub struct HubClient {
    /// Base URL, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// Bearer token; never logged.
    token: Option<String>,
    /// Root of the download cache; files go under `hf/datasets/OWNER/NAME/REV/`.
    pub cache_dir: PathBuf,
    /// Retries after the first attempt of each request.
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Re-resolve URIs even when a resolved file list is cached.
    pub refresh: bool,
}

impl HubClient {
    /// A client for `endpoint` caching under `cache_dir`, with 4 retries starting at 1 s and
    /// no token.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            token: None,
            cache_dir: cache_dir.into(),
            retries: 4,
            backoff: Duration::from_secs(1),
            refresh: false,
        }
    }

    /// A client configured from the environment: `HF_ENDPOINT` (default [`DEFAULT_ENDPOINT`])
    /// and `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN`.
    pub fn from_env(cache_dir: impl Into<PathBuf>) -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let token = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
        Self::new(endpoint, cache_dir).with_token(token)
    }

    /// Sets (or clears) the bearer token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Resolves `uri` (a file or a glob) and makes sure every file it names is in the cache,
    /// downloading what is missing. Files come back sorted by path.
    pub fn fetch(&self, uri: &str) -> Result<Vec<HubFile>, HubError> {
        let parsed = HubUri::parse(uri)?;
        let client = self.clone();
        // Own thread and runtime: callers may already be inside a tokio runtime.
        std::thread::scope(|scope| {
            scope
                .spawn(move || http::fetch_blocking(&client, &parsed))
                .join()
                .unwrap_or_else(|_| {
                    Err(HubError::Protocol {
                        uri: uri.to_owned(),
                        message: "the download thread panicked".into(),
                    })
                })
        })
    }

    /// The files of `uri` (a file or a glob) already in the cache's layout,
    /// `<cache_dir>/hf/datasets/OWNER/NAME/REV/PATH`, without any network: a download cache,
    /// or a mirror copied into that layout. Sorted by path; empty when nothing matches. The
    /// sha256 comes from the `.sha256` file a download leaves beside each file, else from the
    /// bytes.
    pub fn mirrored(&self, uri: &str) -> Result<Vec<HubFile>, HubError> {
        cache::mirrored(self, &HubUri::parse(uri)?)
    }

    fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}
