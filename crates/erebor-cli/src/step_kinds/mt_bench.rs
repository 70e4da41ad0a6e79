//! The `mt-bench` step kind's judgment cache: the run store's `judgments` table.
//!
//! A step runs in its own process; the runner hands it the store URL in `EREBOR_DB` (as for
//! `report`), and the step opens its own connection to that store. Each judge reply is
//! written the moment it arrives, so a step killed mid-judging, or any later step or workflow
//! asking the same request of the same endpoint, finds it there. erebor-eval defines the
//! [`JudgmentCache`] trait; this module implements it, so erebor-eval never sees the store.

use std::sync::Arc;

use erebor_eval::mt_bench::cache::CacheFuture;
use erebor_eval::mt_bench::{CacheKey, CacheProvider, CachedReply, JudgmentCache, MtBenchKind};
use erebor_store::{JudgmentKey, Store};

/// The `mt-bench` kind with its cache in the store named by `EREBOR_DB`.
pub fn kind() -> MtBenchKind {
    MtBenchKind::new(Arc::new(StoreProvider::FromEnv))
}

/// Where the store is.
#[derive(Clone, Debug)]
pub enum StoreProvider {
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
                    std::env::var(erebor_engine::protocol::DB_ENV).map_err(|_| {
                        "mt-bench keeps judgments in the run store, but EREBOR_DB is not set \
                         for the step process"
                            .to_owned()
                    })?
                }
            };
            let store = Store::open(&url).await.map_err(|e| {
                format!(
                    "opening the run store {}: {e}",
                    erebor_store::redact_url(&url)
                )
            })?;
            let cache: Arc<dyn JudgmentCache> = Arc::new(StoreCache(store));
            Ok(cache)
        })
    }
}

/// Judgments in the run store.
#[derive(Clone, Debug)]
pub struct StoreCache(pub Store);

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
            let found = self
                .0
                .judgment(&store_key(key))
                .await
                .map_err(|e| e.to_string())?;
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
            self.0
                .put_judgment(
                    &store_key(key),
                    body,
                    reply.model.as_deref(),
                    &reply.content,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
