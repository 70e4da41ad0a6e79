//! The judgment cache interface: replies kept by (endpoint, sha256 of the exact request body,
//! repeat index), so that a re-run, a resume or another workflow asking the same judgment does
//! not pay for it again.
//!
//! erebor-eval knows no store: the `erebor` binary implements [`JudgmentCache`] over the run
//! store (table `judgments`), and [`MemoryCache`] serves tests and runs without one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// A boxed future of a cache operation.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CacheError>> + Send + 'a>>;

/// Why the judgment cache failed: what it was doing and the underlying error (the store's), kept
/// as the source and shown after the context.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct CacheError {
    /// What the cache was doing (`opening the run store sqlite:runs.db`).
    pub doing: String,
    /// The error that stopped it.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl CacheError {
    /// `source` while `doing` something.
    pub fn new(
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CacheError {
            doing: doing.into(),
            source: source.into(),
        }
    }
}

/// What identifies a judgment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The full chat-completions URL.
    pub endpoint: String,
    /// Hex sha256 of the request body bytes.
    pub request_sha256: String,
    /// 0 for the first judgment of a request; repeats count on.
    pub repeat_index: u32,
}

impl CacheKey {
    /// The key of `body` sent to `endpoint` for repeat `repeat_index`.
    pub fn new(endpoint: &str, body: &str, repeat_index: u32) -> Self {
        CacheKey {
            endpoint: endpoint.to_owned(),
            request_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            repeat_index,
        }
    }
}

/// A stored reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedReply {
    /// The reply's `model` field.
    pub model: Option<String>,
    /// The message content.
    pub content: String,
}

/// Where judgments are kept. Implementations must keep the first reply stored for a key.
pub trait JudgmentCache: Send + Sync {
    /// The reply stored for `key`.
    fn get<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, Option<CachedReply>>;
    /// Stores `reply` to the request `body` under `key` (ignored if the key is stored).
    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        body: &'a str,
        reply: &'a CachedReply,
    ) -> CacheFuture<'a, ()>;
}

/// Opens the cache inside the runtime that will use it (a database pool belongs to one).
pub trait CacheProvider: Send + Sync {
    /// The cache, or why it cannot be opened.
    fn open(&self) -> CacheFuture<'_, Arc<dyn JudgmentCache>>;
}

/// A cache in memory (for tests, and for runs that keep nothing).
#[derive(Debug, Default)]
pub struct MemoryCache {
    replies: Mutex<HashMap<CacheKey, CachedReply>>,
}

impl MemoryCache {
    /// How many replies it holds.
    pub fn len(&self) -> usize {
        self.replies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl JudgmentCache for MemoryCache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, Option<CachedReply>> {
        let found = self
            .replies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        _body: &'a str,
        reply: &'a CachedReply,
    ) -> CacheFuture<'a, ()> {
        self.replies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| reply.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Provides one shared [`MemoryCache`].
#[derive(Clone, Debug, Default)]
pub struct MemoryProvider(pub Arc<MemoryCache>);

impl CacheProvider for MemoryProvider {
    fn open(&self) -> CacheFuture<'_, Arc<dyn JudgmentCache>> {
        let cache: Arc<dyn JudgmentCache> = self.0.clone();
        Box::pin(async move { Ok(cache) })
    }
}
