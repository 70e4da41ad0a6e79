//! Steps of a run: inserted when the run starts, updated as they are fingerprinted, cached,
//! started and finished; and the cache lookup by fingerprint.

use crate::db::{Store, now_ms, with_pool};
use crate::error::Result;
use crate::records::{NewStep, StepRecord, StepStatus};
use erebor_core::{RunId, StepId};
use sqlx::Row;

const STEP_COLUMNS: &str = "run_id, step_id, base_id, arm, kind, position, needs, config, status, \
     fingerprint, fingerprint_inputs, cached_from_run, reused_from_step, outputs, failure_class, \
     failure_message, expect_failures, started_at, finished_at";

macro_rules! step_from_row {
    ($row:expr) => {{
        let row = $row;
        let arm: String = row.try_get("arm")?;
        let needs: String = row.try_get("needs")?;
        let config: String = row.try_get("config")?;
        let status: String = row.try_get("status")?;
        let fingerprint_inputs: Option<String> = row.try_get("fingerprint_inputs")?;
        let outputs: Option<String> = row.try_get("outputs")?;
        let expect_failures: Option<String> = row.try_get("expect_failures")?;
        StepRecord {
            run_id: crate::error::id_column("steps", "run_id", row.try_get("run_id")?)?,
            step_id: crate::error::id_column("steps", "step_id", row.try_get("step_id")?)?,
            base_id: row.try_get("base_id")?,
            arm: crate::error::json_column("steps", "arm", &arm)?,
            kind: row.try_get("kind")?,
            position: row.try_get("position")?,
            needs: serde_json::from_str(&needs).map_err(|source| crate::StoreError::Json {
                table: "steps",
                column: "needs",
                source,
            })?,
            config: crate::error::json_column("steps", "config", &config)?,
            status: StepStatus::parse(&status).unwrap_or(StepStatus::Failed),
            fingerprint: row.try_get("fingerprint")?,
            fingerprint_inputs: fingerprint_inputs
                .map(|text| crate::error::json_column("steps", "fingerprint_inputs", &text))
                .transpose()?,
            cached_from_run: crate::error::optional_id_column(
                "steps",
                "cached_from_run",
                row.try_get("cached_from_run")?,
            )?,
            reused_from_step: crate::error::optional_id_column(
                "steps",
                "reused_from_step",
                row.try_get("reused_from_step")?,
            )?,
            outputs: outputs
                .map(|text| crate::error::json_column("steps", "outputs", &text))
                .transpose()?,
            failure_class: row.try_get("failure_class")?,
            failure_message: row.try_get("failure_message")?,
            expect_failures: expect_failures
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default(),
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }
    }};
}

/// A finished result that a step with the same fingerprint can reuse.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedResult {
    /// The run that produced it.
    pub run_id: RunId,
    /// The step in that run.
    pub step_id: StepId,
    /// Its outputs (JSON of `StepOutputs`).
    pub outputs: serde_json::Value,
}

/// Inserts steps as `pending` on a connection or transaction (existing rows are kept).
macro_rules! insert_steps_in {
    ($conn:expr, $run_id:expr, $steps:expr) => {
        for step in $steps {
            sqlx::query(
                "INSERT INTO steps (run_id, step_id, base_id, arm, kind, position, needs, config, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending') \
                 ON CONFLICT (run_id, step_id) DO NOTHING",
            )
            .bind($run_id)
            .bind(step.step_id.as_str())
            .bind(&step.base_id)
            .bind(step.arm.to_string())
            .bind(&step.kind)
            .bind(step.position)
            .bind(serde_json::to_string(&step.needs).unwrap_or_else(|_| "[]".into()))
            .bind(step.config.to_string())
            .execute($conn)
            .await?;
        }
    };
}
pub(crate) use insert_steps_in;

impl Store {
    /// Inserts steps of a run as `pending` (existing rows, on resume, are kept).
    pub async fn insert_steps(&self, run_id: &RunId, steps: &[NewStep]) -> Result<()> {
        self.gate("insert_steps")?;
        let run_id = run_id.as_str();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_steps_in!(&mut *tx, run_id, steps);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The steps of a run in plan order.
    pub async fn steps_of(&self, run_id: &RunId) -> Result<Vec<StepRecord>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY position, step_id"
        );
        Ok(with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id.as_str())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(step_from_row!(row));
            }
            out
        }))
    }

    /// One step of a run.
    pub async fn get_step(&self, run_id: &RunId, step_id: &StepId) -> Result<Option<StepRecord>> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 AND step_id = $2");
        Ok(with_pool!(self, |pool| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id.as_str())
                .bind(step_id.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(step_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Records a step's fingerprint and what it was made of.
    pub async fn set_fingerprint(
        &self,
        run_id: &RunId,
        step_id: &StepId,
        fingerprint: &str,
        inputs: &serde_json::Value,
    ) -> Result<()> {
        self.gate("set_fingerprint")?;
        let (run_id, step_id) = (run_id.as_str(), step_id.as_str());
        with_pool!(self, |pool| {
            sqlx::query("UPDATE steps SET fingerprint = $3, fingerprint_inputs = $4 WHERE run_id = $1 AND step_id = $2")
                .bind(run_id)
                .bind(step_id)
                .bind(fingerprint)
                .bind(inputs.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Sets a step's status (for `pending`, `skipped`, `interrupted` and `failed` without an
    /// attempt); other transitions go through attempts.
    pub async fn set_step_status(
        &self,
        run_id: &RunId,
        step_id: &StepId,
        status: StepStatus,
        failure: Option<(&str, &str)>,
    ) -> Result<()> {
        self.gate("set_step_status")?;
        let (run_id, step_id) = (run_id.as_str(), step_id.as_str());
        let finished = matches!(
            status,
            StepStatus::Failed | StepStatus::Skipped | StepStatus::Interrupted
        )
        .then(now_ms);
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE steps SET status = $3, failure_class = $4, failure_message = $5, finished_at = $6 \
                 WHERE run_id = $1 AND step_id = $2",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(status.as_str())
            .bind(failure.map(|f| f.0))
            .bind(failure.map(|f| f.1))
            .bind(finished)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a step as reused from `source`: it links to the producing run and step (its
    /// outputs are copied, being what later steps of this run consume; its metrics are not).
    pub async fn mark_cached(
        &self,
        run_id: &RunId,
        step_id: &StepId,
        source: &CachedResult,
    ) -> Result<()> {
        self.gate("mark_cached")?;
        let (run_id, step_id) = (run_id.as_str(), step_id.as_str());
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE steps SET status = 'cached', cached_from_run = $3, reused_from_step = $6, \
                 outputs = $4, started_at = $5, finished_at = $5, failure_class = NULL, \
                 failure_message = NULL WHERE run_id = $1 AND step_id = $2",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(source.run_id.as_str())
            .bind(source.outputs.to_string())
            .bind(now)
            .bind(source.step_id.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest finished results with this fingerprint, reused ones followed back to the run
    /// and step that produced them.
    pub async fn find_cached(&self, fingerprint: &str) -> Result<Vec<CachedResult>> {
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COALESCE(cached_from_run, run_id), COALESCE(reused_from_step, step_id), outputs \
                 FROM steps WHERE fingerprint = $1 AND status IN ('succeeded', 'cached') \
                 ORDER BY finished_at DESC LIMIT 20",
            )
            .bind(fingerprint)
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::new();
        for (run_id, step_id, outputs) in rows {
            let Some(outputs) = outputs else { continue };
            out.push(CachedResult {
                run_id: crate::error::id_column("steps", "cached_from_run or run_id", run_id)?,
                step_id: crate::error::id_column("steps", "reused_from_step or step_id", step_id)?,
                outputs: crate::error::json_column("steps", "outputs", &outputs)?,
            });
        }
        Ok(out)
    }

    /// The most recent finished record of `step_id` in runs of `workflow`, for `plan` to say
    /// why a step is not cached.
    pub async fn last_finished_step(
        &self,
        workflow: &str,
        step_id: &StepId,
    ) -> Result<Option<StepRecord>> {
        let sql = format!(
            "SELECT {} FROM steps s JOIN runs r ON r.id = s.run_id \
             WHERE r.workflow_name = $1 AND s.step_id = $2 AND s.status IN ('succeeded', 'cached') \
               AND s.fingerprint_inputs IS NOT NULL \
             ORDER BY s.finished_at DESC LIMIT 1",
            STEP_COLUMNS
                .split(", ")
                .map(|c| format!("s.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(with_pool!(self, |pool| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(workflow)
                .bind(step_id.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(step_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Records failed `expect:` checks of a step.
    pub async fn set_expect_failures(
        &self,
        run_id: &RunId,
        step_id: &StepId,
        failures: &[String],
    ) -> Result<()> {
        self.gate("set_expect_failures")?;
        let (run_id, step_id) = (run_id.as_str(), step_id.as_str());
        with_pool!(self, |pool| {
            sqlx::query("UPDATE steps SET expect_failures = $3 WHERE run_id = $1 AND step_id = $2")
                .bind(run_id)
                .bind(step_id)
                .bind(serde_json::to_string(failures).unwrap_or_else(|_| "[]".into()))
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
