//! The `mt-bench` step kind's judgment cache: the run store's `judgments` table.
//!
//! A step runs in its own process; the runner hands it the store URL in `EREBOR_DB` (as for
//! `report`), and the step opens its own connection to that store. Each judge reply is
//! written the moment it arrives, so a step killed mid-judging, or any later step or workflow
//! asking the same request of the same endpoint, finds it there. erebor-eval defines the
//! [`JudgmentCache`] trait; this module implements it, so erebor-eval never sees the store.
//!
//! Reads and writes take the engine's store-retry policy ([`StoreRetry`]): a transient store
//! error (SQLite busy or locked, a Postgres serialization failure, a lost connection) is tried
//! again with backoff; any other error, or a transient one that outlasts the retries, is
//! returned, and the step fails with it. A judgment the judge was paid for is never dropped
//! silently.

use std::sync::Arc;

use erebor_engine::StoreRetry;
use erebor_eval::mt_bench::cache::{CacheError, CacheFuture};
use erebor_eval::mt_bench::{CacheKey, CacheProvider, CachedReply, JudgmentCache, MtBenchKind};
use erebor_store::{JudgmentKey, Store};

/// The `mt-bench` kind with its cache in the store named by `EREBOR_DB`.
pub(crate) fn kind() -> MtBenchKind {
    MtBenchKind::new(Arc::new(StoreProvider::FromEnv))
}

/// Where the store is.
#[derive(Clone, Debug)]
pub(crate) enum StoreProvider {
    /// The URL in `EREBOR_DB` (a step process).
    FromEnv,
    /// A URL (the `erebor mt-bench` command).
    Url(String),
}

impl CacheProvider for StoreProvider {
    fn open(&self) -> CacheFuture<'_, Arc<dyn JudgmentCache>> {
        Box::pin(async move {
            let url = match self {
                StoreProvider::Url(url) => url.clone(),
                StoreProvider::FromEnv => {
                    std::env::var(erebor_engine::protocol::DB_ENV).map_err(|e| {
                        CacheError::new(
                            "mt-bench keeps judgments in the run store, but EREBOR_DB is not \
                             usable in the step process",
                            e,
                        )
                    })?
                }
            };
            let store = Store::open(&url).await.map_err(|e| {
                CacheError::new(
                    format!("opening the run store {}", erebor_store::redact_url(&url)),
                    e,
                )
            })?;
            let cache: Arc<dyn JudgmentCache> = Arc::new(StoreCache::new(store));
            Ok(cache)
        })
    }
}

/// Judgments in the run store, read and written under a [`StoreRetry`] policy.
#[derive(Clone, Debug)]
pub(crate) struct StoreCache {
    store: Store,
    retry: StoreRetry,
}

impl StoreCache {
    /// The cache over `store` with the engine's default retry policy.
    pub(crate) fn new(store: Store) -> Self {
        Self::with_retry(store, StoreRetry::default())
    }

    /// The cache over `store` retrying transient errors as `retry` says.
    pub(crate) fn with_retry(store: Store, retry: StoreRetry) -> Self {
        Self { store, retry }
    }
}

fn store_key(key: &CacheKey) -> JudgmentKey {
    JudgmentKey {
        endpoint: key.endpoint.clone(),
        request_sha256: key.request_sha256.clone(),
        repeat_index: key.repeat_index,
    }
}

impl JudgmentCache for StoreCache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, Option<CachedReply>> {
        Box::pin(async move {
            let key = store_key(key);
            let found = self
                .retry
                .run("reading an MT-Bench judgment", || self.store.judgment(&key))
                .await
                .map_err(|e| CacheError::new("reading an MT-Bench judgment", e))?;
            Ok(found.map(|j| CachedReply {
                model: j.response_model,
                content: j.content,
            }))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        body: &'a str,
        reply: &'a CachedReply,
    ) -> CacheFuture<'a, ()> {
        Box::pin(async move {
            let key = store_key(key);
            let model = reply.model.as_deref();
            self.retry
                .run("storing an MT-Bench judgment", || {
                    self.store.put_judgment(&key, body, model, &reply.content)
                })
                .await
                .map(|_| ())
                .map_err(|e| CacheError::new("storing an MT-Bench judgment", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_store::{SqlxError, StoreError, WriteGate};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Fails the first `fail` judgment writes, with a lost connection (transient) or a
    /// protocol error (permanent); counts every judgment write it sees.
    struct FailingJudgmentWrites {
        fail: u32,
        transient: bool,
        writes: AtomicU32,
    }

    impl WriteGate for FailingJudgmentWrites {
        fn before_write(&self, operation: &'static str) -> erebor_store::Result<()> {
            if operation != "put_judgment" {
                return Ok(());
            }
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.fail {
                return Ok(());
            }
            Err(StoreError::Db(if self.transient {
                SqlxError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            } else {
                SqlxError::Protocol(format!("injected failure of judgment write {n}"))
            }))
        }
    }

    struct Fixture {
        cache: StoreCache,
        store: Store,
        gate: Arc<FailingJudgmentWrites>,
        _dir: tempfile::TempDir,
    }

    async fn fixture(fail: u32, transient: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("erebor.db").display());
        let store = Store::open(&url).await.unwrap();
        let gate = Arc::new(FailingJudgmentWrites {
            fail,
            transient,
            writes: AtomicU32::new(0),
        });
        let retry = StoreRetry {
            tries: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        };
        let gated = store.with_write_gate(gate.clone());
        Fixture {
            cache: StoreCache::with_retry(gated, retry),
            store,
            gate,
            _dir: dir,
        }
    }

    fn judgment() -> (CacheKey, &'static str, CachedReply) {
        let body = r#"{"model":"judge","messages":[]}"#;
        let reply = CachedReply {
            model: Some("judge-1".into()),
            content: "Rating: [[7]]".into(),
        };
        (
            CacheKey::new("http://judge/v1/chat/completions", body, 0),
            body,
            reply,
        )
    }

    async fn stored(fixture: &Fixture, key: &CacheKey) -> Option<String> {
        let found = fixture.store.judgment(&store_key(key)).await.unwrap();
        found.map(|j| j.content)
    }

    #[tokio::test]
    async fn transient_store_errors_are_retried_until_the_judgment_is_stored() {
        let fixture = fixture(2, true).await;
        let (key, body, reply) = judgment();
        fixture.cache.put(&key, body, &reply).await.unwrap();
        assert_eq!(fixture.gate.writes.load(Ordering::SeqCst), 3);
        assert_eq!(
            stored(&fixture, &key).await.as_deref(),
            Some("Rating: [[7]]")
        );
        let read = fixture.cache.get(&key).await.unwrap().unwrap();
        assert_eq!(read, reply);
    }

    #[tokio::test]
    async fn other_store_errors_fail_the_put_at_once() {
        let fixture = fixture(u32::MAX, false).await;
        let (key, body, reply) = judgment();
        let error = fixture.cache.put(&key, body, &reply).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("injected failure of judgment write 1"),
            "{error}"
        );
        assert_eq!(error.doing, "storing an MT-Bench judgment");
        assert_eq!(fixture.gate.writes.load(Ordering::SeqCst), 1, "not retried");
        assert_eq!(stored(&fixture, &key).await, None);
    }

    #[tokio::test]
    async fn a_transient_error_that_outlasts_the_retries_is_reported() {
        let fixture = fixture(u32::MAX, true).await;
        let (key, body, reply) = judgment();
        let error = fixture.cache.put(&key, body, &reply).await.unwrap_err();
        assert!(error.to_string().contains("database error"), "{error}");
        assert!(
            error.source.to_string().contains("database error"),
            "the store's error is kept as the source: {error}"
        );
        assert_eq!(
            fixture.gate.writes.load(Ordering::SeqCst),
            3,
            "every try used"
        );
        assert_eq!(stored(&fixture, &key).await, None);
    }
}
