//! Runs: create, look up, list, finish, and the runner's lease (host, pid, heartbeat).

use crate::db::{Store, now_ms, with_pool};
use crate::error::{Result, StoreError};
use crate::records::{NewRun, NewStep, RunRecord, RunStatus};
use erebor_core::RunId;
use sqlx::Row;

const RUN_COLUMNS: &str = "id, workflow_name, workflow_file, workflow_text, workflow_hash, params, options, \
     status, error, created_at, finished_at, host, runner_pid, heartbeat_at, git_commit, git_dirty, \
     erebor_version, run_dir";

macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let params: String = row.try_get("params")?;
        let options: String = row.try_get("options")?;
        let git_dirty: Option<i64> = row.try_get("git_dirty")?;
        RunRecord {
            id: crate::error::id_column("runs", "id", row.try_get("id")?)?,
            workflow_name: row.try_get("workflow_name")?,
            workflow_file: row.try_get("workflow_file")?,
            workflow_text: row.try_get("workflow_text")?,
            workflow_hash: row.try_get("workflow_hash")?,
            params: crate::error::json_column("runs", "params", &params)?,
            options: crate::error::json_column("runs", "options", &options)?,
            status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
            host: row.try_get("host")?,
            runner_pid: row.try_get("runner_pid")?,
            heartbeat_at: row.try_get("heartbeat_at")?,
            git_commit: row.try_get("git_commit")?,
            git_dirty: git_dirty.map(|d| d != 0),
            erebor_version: row.try_get("erebor_version")?,
            run_dir: row.try_get("run_dir")?,
        }
    }};
}

/// Filters for [`Store::list_runs`].
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only runs of this workflow name.
    pub workflow: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs created at or after this time (ms since epoch).
    pub since_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: Option<i64>,
}

impl Store {
    /// Records a new run as `running`, with the runner's lease, and its steps as `pending`, in
    /// one transaction: a runner killed at any moment leaves both or neither.
    pub async fn create_run(&self, run: &NewRun, steps: &[NewStep]) -> Result<()> {
        self.gate("create_run")?;
        let now = now_ms();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO runs (id, workflow_name, workflow_file, workflow_text, workflow_hash, params, \
                 options, status, created_at, host, runner_pid, heartbeat_at, git_commit, git_dirty, \
                 erebor_version, run_dir) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $8, $11, $12, $13, $14)",
            )
            .bind(run.id.as_str())
            .bind(&run.workflow_name)
            .bind(&run.workflow_file)
            .bind(&run.workflow_text)
            .bind(&run.workflow_hash)
            .bind(run.params.to_string())
            .bind(run.options.to_string())
            .bind(now)
            .bind(&run.host)
            .bind(i64::from(run.runner_pid))
            .bind(&run.git_commit)
            .bind(run.git_dirty.map(i64::from))
            .bind(&run.erebor_version)
            .bind(&run.run_dir)
            .execute(&mut *tx)
            .await?;
            crate::steps::insert_steps_in!(&mut *tx, run.id.as_str(), steps);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The run with this exact id.
    pub async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        Ok(with_pool!(self, |pool| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(run_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Looks a run up by what a user typed: the run whose id is `id` or, failing that, the
    /// one run whose id starts with it. The text is not a [`RunId`] (a prefix is not an id);
    /// the record returned carries the run's typed id. No match, or several, is
    /// [`StoreError::NotFound`] with a message for the user.
    pub async fn find_run(&self, id: &str) -> Result<RunRecord> {
        if let Some(run) = self.get_run(&RunId::from(id)).await? {
            return Ok(run);
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id LIKE $1 ORDER BY created_at DESC LIMIT 2"
        );
        let pattern = format!("{}%", id.replace(['%', '_'], ""));
        let mut runs: Vec<RunRecord> = with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(pattern)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::new();
            for row in &rows {
                out.push(run_from_row!(row));
            }
            out
        });
        match runs.len() {
            1 => Ok(runs.remove(0)),
            0 => Err(StoreError::NotFound(format!(
                "no run `{id}` in {} (see `erebor runs list`)",
                self.url()
            ))),
            _ => Err(StoreError::NotFound(format!(
                "`{id}` matches several runs; give more of the id (see `erebor runs list`)"
            ))),
        }
    }

    /// Runs matching the filter, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs \
             WHERE ($1 IS NULL OR workflow_name = $1) AND ($2 IS NULL OR status = $2) \
               AND ($3 IS NULL OR created_at >= $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let limit = filter.limit.unwrap_or(i64::MAX);
        let status = filter.status.map(|s| s.as_str().to_owned());
        Ok(with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&filter.workflow)
                .bind(&status)
                .bind(filter.since_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::new();
            for row in &rows {
                out.push(run_from_row!(row));
            }
            out
        }))
    }

    /// Sets a run's final (or resumed) status.
    pub async fn set_run_status(
        &self,
        id: &RunId,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        self.gate("set_run_status")?;
        let finished = (status != RunStatus::Running).then(now_ms);
        with_pool!(self, |pool| {
            sqlx::query("UPDATE runs SET status = $2, error = $3, finished_at = $4 WHERE id = $1")
                .bind(id.as_str())
                .bind(status.as_str())
                .bind(error)
                .bind(finished)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Renews the runner's lease; false when another runner has taken the run over.
    pub async fn heartbeat(&self, id: &RunId, host: &str, pid: u32) -> Result<bool> {
        self.gate("heartbeat")?;
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET heartbeat_at = $4 WHERE id = $1 AND host = $2 AND runner_pid = $3",
            )
            .bind(id.as_str())
            .bind(host)
            .bind(i64::from(pid))
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Takes over a run for a new runner if its lease is still the one `seen` (compare and
    /// swap, so two resumes cannot both win). Sets it `running` again.
    pub async fn claim_run(&self, seen: &RunRecord, host: &str, pid: u32) -> Result<bool> {
        self.gate("claim_run")?;
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET host = $2, runner_pid = $3, heartbeat_at = $4, status = 'running', \
                 error = NULL, finished_at = NULL \
                 WHERE id = $1 AND host = $5 AND runner_pid IS NOT DISTINCT FROM $6 \
                   AND heartbeat_at IS NOT DISTINCT FROM $7 AND status = $8",
            )
            .bind(seen.id.as_str())
            .bind(host)
            .bind(i64::from(pid))
            .bind(now_ms())
            .bind(&seen.host)
            .bind(seen.runner_pid)
            .bind(seen.heartbeat_at)
            .bind(seen.status.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }
}
