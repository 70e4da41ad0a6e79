//! [`HubClient`]: the Hub's address, token, retries and download cache; [`HubFile`]: one file
//! it fetched.

use super::{HubError, HubUri, cache, http};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The Hub's public address, used when `HF_ENDPOINT` is not set.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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

    /// A client configured from the environment: `HF_ENDPOINT` (default `DEFAULT_ENDPOINT`)
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
    #[must_use]
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

    pub(super) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}
