//! Metrics: written in batches, exactly one row per (run, step, attempt, key, index), and only
//! from a running attempt. Readable while the run goes on.

use crate::db::{Backend, Store, now_ms, with_pool};
use crate::error::{Result, StoreError, id_column};
use crate::records::{AttemptStatus, MetricPoint, MetricRow, StepLink, StepRecord};
use erebor_core::{AttemptId, RunId, StepId};
use sqlx::{AssertSqlSafe, Row};

/// Rows per SQLite statement: preparing one grows faster than linearly with its size, and 64
/// rows measured fastest (BENCHMARKS.md).
const SQLITE_ROWS_PER_STATEMENT: usize = 64;

/// Which metrics to read.
#[derive(Clone, Debug, Default)]
pub struct MetricFilter {
    /// Only this step (exact id).
    pub step: Option<StepId>,
    /// Only this key.
    pub key: Option<String>,
}

/// The point's index as the store's `idx` column holds it; one above `i64::MAX` is
/// [`StoreError::MetricIndex`] instead of wrapping to a negative index.
fn stored_index(point: &MetricPoint) -> Result<i64> {
    i64::try_from(point.index).map_err(|_| StoreError::MetricIndex {
        key: point.key.clone(),
        index: point.index,
    })
}

impl Store {
    /// Records a batch of metrics from a live attempt. Points already recorded (same key and
    /// index) are ignored; a batch from an attempt that has ended is refused with
    /// [`crate::StoreError::StaleAttempt`]. Returns the number of new rows.
    pub async fn record_metrics(
        &self,
        run_id: &RunId,
        step_id: &StepId,
        attempt_id: &AttemptId,
        points: &[MetricPoint],
    ) -> Result<u64> {
        if points.is_empty() {
            return Ok(0);
        }
        self.gate("record_metrics")?;
        let (run, step, attempt) = (run_id.as_str(), step_id.as_str(), attempt_id.as_str());
        let now = now_ms();
        let inserted = match &self.backend {
            Backend::Postgres(pool) => {
                let keys: Vec<&str> = points.iter().map(|p| p.key.as_str()).collect();
                let indexes = points
                    .iter()
                    .map(stored_index)
                    .collect::<Result<Vec<i64>>>()?;
                let values: Vec<f64> = points.iter().map(|p| p.value).collect();
                sqlx::query(
                    "INSERT INTO metrics (run_id, step_id, attempt_id, key, idx, value, recorded_at) \
                     SELECT $1, $2, $3, u.key, u.idx, u.value, $4 \
                     FROM UNNEST($5::text[], $6::bigint[], $7::float8[]) AS u(key, idx, value) \
                     WHERE EXISTS (SELECT 1 FROM attempts a WHERE a.id = $3 AND a.status IN ('recorded', 'submitted', 'queued', 'running')) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(run)
                .bind(step)
                .bind(attempt)
                .bind(now)
                .bind(&keys)
                .bind(&indexes)
                .bind(&values)
                .execute(pool)
                .await?
                .rows_affected()
            }
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut inserted = 0;
                for chunk in points.chunks(SQLITE_ROWS_PER_STATEMENT) {
                    let mut sql = String::with_capacity(64 + chunk.len() * 24);
                    // Numbered `?NNN` placeholders: SQLite looks named ones (`$N`) up in a
                    // list, which makes statements with thousands of them quadratic to prepare.
                    sql.push_str(
                        "INSERT INTO metrics (run_id, step_id, attempt_id, key, idx, value, recorded_at) \
                         SELECT ?1, ?2, ?3, v.column1, v.column2, v.column3, ?4 FROM (VALUES ",
                    );
                    for i in 0..chunk.len() {
                        let base = 5 + i * 3;
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push_str(&format!("(?{},?{},?{})", base, base + 1, base + 2));
                    }
                    sql.push_str(
                        ") AS v WHERE EXISTS (SELECT 1 FROM attempts a WHERE a.id = ?3 AND a.status IN ('recorded', 'submitted', 'queued', 'running')) \
                         ON CONFLICT DO NOTHING",
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql))
                        .bind(run)
                        .bind(step)
                        .bind(attempt)
                        .bind(now);
                    for point in chunk {
                        // SQLite stores NaN as NULL; reading maps NULL back to NaN.
                        let value = (!point.value.is_nan()).then_some(point.value);
                        query = query
                            .bind(point.key.as_str())
                            .bind(stored_index(point)?)
                            .bind(value);
                    }
                    inserted += query.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                inserted
            }
        };
        if inserted == 0 && !self.attempt_is_running(attempt_id).await? {
            return Err(self.stale_error(attempt_id).await);
        }
        Ok(inserted)
    }

    async fn attempt_is_running(&self, attempt_id: &AttemptId) -> Result<bool> {
        let status: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT status FROM attempts WHERE id = $1")
                .bind(attempt_id.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(status
            .as_deref()
            .and_then(AttemptStatus::parse)
            .is_some_and(AttemptStatus::is_live))
    }

    /// Every metric row of a run (all attempts), by step, key, index and attempt time.
    pub async fn metrics(&self, run_id: &RunId, filter: &MetricFilter) -> Result<Vec<MetricRow>> {
        Ok(with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT m.run_id, m.step_id, m.attempt_id, m.key, m.idx, m.value, m.recorded_at \
                 FROM metrics m JOIN attempts a ON a.id = m.attempt_id \
                 WHERE m.run_id = $1 AND ($2 IS NULL OR m.step_id = $2) AND ($3 IS NULL OR m.key = $3) \
                 ORDER BY m.step_id, m.key, m.idx, a.number",
            )
            .bind(run_id.as_str())
            .bind(filter.step.as_ref().map(StepId::as_str))
            .bind(&filter.key)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let value: Option<f64> = row.try_get("value")?;
                out.push(MetricRow {
                    run_id: id_column("metrics", "run_id", row.try_get("run_id")?)?,
                    step_id: id_column("metrics", "step_id", row.try_get("step_id")?)?,
                    attempt_id: id_column("metrics", "attempt_id", row.try_get("attempt_id")?)?,
                    key: row.try_get("key")?,
                    index: row.try_get("idx")?,
                    value: value.unwrap_or(f64::NAN),
                    recorded_at: row.try_get("recorded_at")?,
                });
            }
            out
        }))
    }

    /// The metric rows of one step of a run, following a reused step's `reused_from` link to
    /// the run and step that produced them; the link is returned with them, so callers can
    /// mark the values as reused.
    pub async fn step_metrics(
        &self,
        step: &StepRecord,
        key: Option<&str>,
    ) -> Result<(Vec<MetricRow>, Option<StepLink>)> {
        let link = step.reused_from();
        let (run, step_id) = match &link {
            Some(link) => (&link.run_id, link.step_id.clone()),
            None => (&step.run_id, step.step_id.clone()),
        };
        let filter = MetricFilter {
            step: Some(step_id),
            key: key.map(str::to_owned),
        };
        Ok((self.metrics(run, &filter).await?, link))
    }

    /// The number of metric rows of a run.
    pub async fn metric_count(&self, run_id: &RunId) -> Result<i64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM metrics WHERE run_id = $1")
                .bind(run_id.as_str())
                .fetch_one(pool)
                .await?
        }))
    }
}

/// Merges the rows of a step's attempts into one series per key: for each (key, index) the
/// value from the latest attempt wins (a resumed attempt continues and may redo indexes).
pub fn merge_attempts(rows: &[MetricRow]) -> std::collections::BTreeMap<String, Vec<(i64, f64)>> {
    let mut merged: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, f64>> =
        std::collections::BTreeMap::new();
    // Rows come ordered by attempt number within (key, idx), so later attempts overwrite.
    for row in rows {
        merged
            .entry(row.key.clone())
            .or_default()
            .insert(row.index, row.value);
    }
    merged
        .into_iter()
        .map(|(key, points)| (key, points.into_iter().collect()))
        .collect()
}
