//! Artifacts (files and folders steps produced, with hashes and lineage) and interruption of
//! attempts.

use crate::db::{Store, now_ms, with_pool};
use crate::error::{Result, id_column};
use crate::records::{ArtifactRecord, LIVE_ATTEMPT_STATUSES};
use erebor_core::{AttemptId, RunId};

/// id, run, step, attempt, name, type, path, sha256, bytes, created.
type ArtifactRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

/// Decodes an artifact row, parsing its ids.
fn artifact_from_row(row: ArtifactRow) -> Result<ArtifactRecord> {
    let (id, run_id, step_id, attempt_id, name, output_type, path, sha256, bytes, created_at) = row;
    Ok(ArtifactRecord {
        id,
        run_id: id_column("artifacts", "run_id", run_id)?,
        step_id: id_column("artifacts", "step_id", step_id)?,
        attempt_id: id_column("artifacts", "attempt_id", attempt_id)?,
        name,
        output_type,
        path,
        sha256,
        bytes,
        created_at,
    })
}

impl Store {
    /// The artifacts of a run (every attempt), oldest first.
    pub async fn artifacts_of(&self, run_id: &RunId) -> Result<Vec<ArtifactRecord>> {
        let rows: Vec<ArtifactRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, run_id, step_id, attempt_id, name, output_type, path, sha256, bytes, created_at \
                 FROM artifacts WHERE run_id = $1 ORDER BY created_at, step_id, name",
            )
            .bind(run_id.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(artifact_from_row).collect()
    }

    /// The inputs an artifact was made from: (path, sha256, producing artifact id).
    pub async fn artifact_inputs(
        &self,
        artifact_id: &str,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT input_path, input_sha256, input_artifact_id FROM artifact_inputs \
                 WHERE artifact_id = $1 ORDER BY input_path",
            )
            .bind(artifact_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The newest artifact with this content hash, to link lineage to its producer.
    pub async fn artifact_by_sha(&self, sha256: &str) -> Result<Option<String>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM artifacts WHERE sha256 = $1 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Marks a live attempt and its step `interrupted` (cancellation, a dead runner). Returns
    /// false when the attempt had ended already.
    pub async fn interrupt_attempt(&self, attempt_id: &AttemptId, message: &str) -> Result<bool> {
        self.gate("interrupt_attempt")?;
        let attempt_id = attempt_id.as_str();
        let now = now_ms();
        let sql = format!(
            "UPDATE attempts SET status = 'interrupted', finished_at = $2, failure_class = 'cancelled', \
             failure_message = $3 WHERE id = $1 AND status IN {LIVE_ATTEMPT_STATUSES} RETURNING run_id, step_id"
        );
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(attempt_id)
                .bind(now)
                .bind(message)
                .fetch_optional(&mut *tx)
                .await?;
            let changed = row.is_some();
            if let Some((run_id, step_id)) = row {
                sqlx::query(
                    "UPDATE steps SET status = 'interrupted', failure_class = 'cancelled', failure_message = $3, \
                     finished_at = $4 WHERE run_id = $1 AND step_id = $2",
                )
                .bind(&run_id)
                .bind(&step_id)
                .bind(message)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            changed
        }))
    }
}
