//! Attempts: each try of a step. Only a `running` attempt may write; finishing or interrupting
//! it is a guarded transition, so a stale attempt's writes are refused.

use crate::db::{Store, now_ms, with_pool};
use crate::error::{Result, StoreError};
use crate::records::{
    AttemptEnd, AttemptRecord, AttemptStatus, LIVE_ATTEMPT_STATUSES, NewAttempt, StepStatus,
};
use erebor_core::{AttemptId, RunId, StepId};
use sqlx::Row;

/// Ends the attempt's step: status, outputs (kept when none are given), failure and `expect:`
/// failures.
const END_STEP_SQL: &str = "UPDATE steps SET status = $3, outputs = COALESCE($4, outputs), \
     failure_class = $5, failure_message = $6, finished_at = $7, expect_failures = $8 \
     WHERE run_id = $1 AND step_id = $2";

/// Records one artifact of a finished attempt.
const INSERT_ARTIFACT_SQL: &str = "INSERT INTO artifacts (id, run_id, step_id, attempt_id, name, \
     output_type, path, sha256, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Records one input of an artifact (its lineage); an input listed twice is kept once.
const INSERT_ARTIFACT_INPUT_SQL: &str = "INSERT INTO artifact_inputs (artifact_id, input_path, \
     input_sha256, input_artifact_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

const ATTEMPT_COLUMNS: &str = "id, run_id, step_id, number, status, executor, external_id, host, dir, \
     gpus, started_at, submitted_at, finished_at, exit_code, failure_class, failure_message";

macro_rules! attempt_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let gpus: String = row.try_get("gpus")?;
        AttemptRecord {
            id: crate::error::id_column("attempts", "id", row.try_get("id")?)?,
            run_id: crate::error::id_column("attempts", "run_id", row.try_get("run_id")?)?,
            step_id: crate::error::id_column("attempts", "step_id", row.try_get("step_id")?)?,
            number: row.try_get("number")?,
            status: AttemptStatus::parse(&status).unwrap_or(AttemptStatus::Interrupted),
            executor: row.try_get("executor")?,
            external_id: row.try_get("external_id")?,
            submitted_at: row.try_get("submitted_at")?,
            host: row.try_get("host")?,
            dir: row.try_get("dir")?,
            gpus: serde_json::from_str(&gpus).unwrap_or_default(),
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            exit_code: row.try_get("exit_code")?,
            failure_class: row.try_get("failure_class")?,
            failure_message: row.try_get("failure_message")?,
        }
    }};
}

impl Store {
    /// The number the next attempt of a step gets (1 + the highest so far).
    pub async fn next_attempt_number(&self, run_id: &RunId, step_id: &StepId) -> Result<i64> {
        let max: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MAX(number) FROM attempts WHERE run_id = $1 AND step_id = $2",
            )
            .bind(run_id.as_str())
            .bind(step_id.as_str())
            .fetch_one(pool)
            .await?
        });
        Ok(max.unwrap_or(0) + 1)
    }

    /// Records a new attempt as `recorded` (before it is submitted) and sets its step
    /// `running`.
    pub async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        self.gate("start_attempt")?;
        let now = now_ms();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO attempts (id, run_id, step_id, number, status, executor, host, dir, gpus, started_at) \
                 VALUES ($1, $2, $3, $4, 'recorded', $5, $6, $7, $8, $9)",
            )
            .bind(attempt.id.as_str())
            .bind(attempt.run_id.as_str())
            .bind(attempt.step_id.as_str())
            .bind(attempt.number)
            .bind(&attempt.executor)
            .bind(&attempt.host)
            .bind(&attempt.dir)
            .bind(serde_json::to_string(&attempt.gpus).unwrap_or_else(|_| "[]".into()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE steps SET status = 'running', started_at = COALESCE(started_at, $3), \
                 failure_class = NULL, failure_message = NULL, finished_at = NULL, \
                 cached_from_run = NULL, reused_from_step = NULL \
                 WHERE run_id = $1 AND step_id = $2",
            )
            .bind(attempt.run_id.as_str())
            .bind(attempt.step_id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records that the executor accepted a `recorded` attempt: its external id (a pid, a job
    /// id) and the state the executor reported (`submitted`, `queued` or `running`). Refused
    /// with [`StoreError::StaleAttempt`] if the attempt is not `recorded`.
    pub async fn set_attempt_submitted(
        &self,
        attempt_id: &AttemptId,
        external_id: &str,
        status: AttemptStatus,
    ) -> Result<()> {
        self.gate("set_attempt_submitted")?;
        let attempt = attempt_id.as_str();
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE attempts SET external_id = $2, status = $3, submitted_at = $4 \
                 WHERE id = $1 AND status = 'recorded'",
            )
            .bind(attempt)
            .bind(external_id)
            .bind(status.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(self.stale_error(attempt_id).await);
        }
        Ok(())
    }

    /// Moves a live attempt to `queued` or `running` as its executor reports. Refused with
    /// [`StoreError::StaleAttempt`] if the attempt has ended.
    pub async fn set_attempt_status(
        &self,
        attempt_id: &AttemptId,
        status: AttemptStatus,
    ) -> Result<()> {
        self.gate("set_attempt_status")?;
        let attempt = attempt_id.as_str();
        let sql = format!(
            "UPDATE attempts SET status = $2 WHERE id = $1 AND status IN {LIVE_ATTEMPT_STATUSES}"
        );
        let updated = with_pool!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(attempt)
                .bind(status.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(self.stale_error(attempt_id).await);
        }
        Ok(())
    }

    /// Ends a live attempt and updates its step, with outputs and artifacts, in one
    /// transaction. Refused with [`StoreError::StaleAttempt`] if the attempt has ended.
    pub async fn finish_attempt(&self, attempt_id: &AttemptId, end: &AttemptEnd) -> Result<()> {
        self.gate("finish_attempt")?;
        let attempt = attempt_id.as_str();
        let now = now_ms();
        let (class, message) = end
            .failure
            .as_ref()
            .map(|(class, message)| (class.as_str(), message.as_str()))
            .unzip();
        let finish = format!(
            "UPDATE attempts SET status = $2, finished_at = $3, exit_code = $4, failure_class = $5, \
             failure_message = $6 WHERE id = $1 AND status IN {LIVE_ATTEMPT_STATUSES} RETURNING run_id, step_id"
        );
        let stale = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(finish))
                .bind(attempt)
                .bind(end.status.as_str())
                .bind(now)
                .bind(end.exit_code.map(i64::from))
                .bind(class)
                .bind(message)
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                None => true,
                Some((run_id, step_id)) => {
                    sqlx::query(END_STEP_SQL)
                        .bind(&run_id)
                        .bind(&step_id)
                        .bind(end.step_status.as_str())
                        .bind(end.outputs.as_ref().map(ToString::to_string))
                        .bind(class)
                        .bind(message)
                        .bind((end.step_status != StepStatus::Running).then_some(now))
                        .bind(
                            serde_json::to_string(&end.expect_failures)
                                .unwrap_or_else(|_| "[]".into()),
                        )
                        .execute(&mut *tx)
                        .await?;
                    for artifact in &end.artifacts {
                        let id = uuid::Uuid::now_v7().to_string();
                        sqlx::query(INSERT_ARTIFACT_SQL)
                            .bind(&id)
                            .bind(&run_id)
                            .bind(&step_id)
                            .bind(attempt)
                            .bind(&artifact.name)
                            .bind(&artifact.output_type)
                            .bind(&artifact.path)
                            .bind(&artifact.sha256)
                            .bind(i64::try_from(artifact.bytes).unwrap_or(i64::MAX))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        for (path, sha, source) in &artifact.inputs {
                            sqlx::query(INSERT_ARTIFACT_INPUT_SQL)
                                .bind(&id)
                                .bind(path)
                                .bind(sha)
                                .bind(source)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    tx.commit().await?;
                    false
                }
            }
        });
        if stale {
            return Err(self.stale_error(attempt_id).await);
        }
        Ok(())
    }

    pub(crate) async fn stale_error(&self, attempt_id: &AttemptId) -> StoreError {
        match self.get_attempt(attempt_id).await {
            Ok(Some(attempt)) => StoreError::StaleAttempt {
                attempt: attempt_id.to_string(),
                step: attempt.step_id.to_string(),
                status: attempt.status.to_string(),
            },
            Ok(None) => StoreError::StaleAttempt {
                attempt: attempt_id.to_string(),
                step: "?".to_owned(),
                status: "unknown attempt".to_owned(),
            },
            Err(error) => error,
        }
    }

    /// One attempt.
    pub async fn get_attempt(&self, attempt_id: &AttemptId) -> Result<Option<AttemptRecord>> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = $1");
        Ok(with_pool!(self, |pool| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(attempt_id.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(attempt_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Every attempt of a run, by step and number.
    pub async fn attempts_of(&self, run_id: &RunId) -> Result<Vec<AttemptRecord>> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = $1 ORDER BY started_at, number"
        );
        Ok(with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id.as_str())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(attempt_from_row!(row));
            }
            out
        }))
    }
}
