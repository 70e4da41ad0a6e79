//! The MT-Bench judgment cache (issue 11): one row per judge reply, keyed by the endpoint, the
//! sha256 of the exact request body and the repeat index, with the `model` the reply named.
//!
//! Rows are written as replies arrive, so a step killed mid-judging loses none it paid for; a
//! re-run, a resume or another workflow that sends the same request body to the same endpoint
//! reads the row instead of asking again. Rows are never overwritten: the first reply stands.
//! API keys travel in request headers, never in the body, and are not stored.

use crate::db::{Store, now_ms, with_pool};
use crate::error::Result;
use sqlx::Row;

/// What identifies one judgment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JudgmentKey {
    /// The chat-completions URL the request went to.
    pub endpoint: String,
    /// Hex sha256 of the exact request body bytes.
    pub request_sha256: String,
    /// 0 for the first judgment of a request, 1.. for repeats (`repeats: N`).
    pub repeat_index: u32,
}

/// A stored judge reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredJudgment {
    /// The `model` field of the reply (the judge that actually answered), when it had one.
    pub response_model: Option<String>,
    /// The reply's message content (the judgment text).
    pub content: String,
    /// When it was stored, ms since the Unix epoch.
    pub created_at: i64,
}

impl Store {
    /// The stored reply for `key`, if any.
    pub async fn judgment(&self, key: &JudgmentKey) -> Result<Option<StoredJudgment>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT response_model, content, created_at FROM judgments \
                 WHERE endpoint = $1 AND request_sha256 = $2 AND repeat_index = $3",
            )
            .bind(&key.endpoint)
            .bind(&key.request_sha256)
            .bind(i64::from(key.repeat_index))
            .fetch_optional(pool)
            .await?
            .map(|row| StoredJudgment {
                response_model: row.get(0),
                content: row.get(1),
                created_at: row.get(2),
            })
        });
        Ok(row)
    }

    /// Stores a reply for `key` with the request body it answered. A key already stored keeps
    /// its first reply; returns whether this call inserted the row.
    pub async fn put_judgment(
        &self,
        key: &JudgmentKey,
        request_body: &str,
        response_model: Option<&str>,
        content: &str,
    ) -> Result<bool> {
        self.gate("put_judgment")?;
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO judgments (endpoint, request_sha256, repeat_index, request_body, \
                 response_model, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&key.endpoint)
            .bind(&key.request_sha256)
            .bind(i64::from(key.repeat_index))
            .bind(request_body)
            .bind(response_model)
            .bind(content)
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// How many replies are stored for `endpoint` (all endpoints when `None`).
    pub async fn judgment_count(&self, endpoint: Option<&str>) -> Result<i64> {
        let count: i64 = with_pool!(self, |pool| match endpoint {
            Some(endpoint) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM judgments WHERE endpoint = $1")
                    .bind(endpoint)
                    .fetch_one(pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM judgments")
                    .fetch_one(pool)
                    .await?
            }
        });
        Ok(count)
    }
}
