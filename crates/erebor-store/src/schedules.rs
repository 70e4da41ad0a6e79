//! Schedules: named, recurring runs of a workflow (cron expression, params).

use crate::db::{Store, now_ms, with_pool};
use crate::error::Result;
use serde::Serialize;

/// A stored schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    /// Unique name.
    pub name: String,
    /// Workflow file to run.
    pub workflow_file: String,
    /// Cron expression (5 fields).
    pub cron: String,
    /// `--set` values (JSON object).
    pub params: serde_json::Value,
    /// Whether it fires.
    pub enabled: bool,
    /// The run it last started.
    pub last_run_id: Option<String>,
    /// When it fires next (ms since epoch).
    pub next_run_at: Option<i64>,
}

/// name, file, cron, params, enabled, last run, next run.
type ScheduleRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

impl Store {
    /// Creates or replaces a schedule.
    pub async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        self.gate("put_schedule")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO schedules (name, workflow_file, cron, params, enabled, last_run_id, next_run_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name) DO UPDATE SET workflow_file = $2, cron = $3, params = $4, enabled = $5, \
                 last_run_id = $6, next_run_at = $7",
            )
            .bind(&schedule.name)
            .bind(&schedule.workflow_file)
            .bind(&schedule.cron)
            .bind(schedule.params.to_string())
            .bind(i64::from(schedule.enabled))
            .bind(&schedule.last_run_id)
            .bind(schedule.next_run_at)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let rows: Vec<ScheduleRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, workflow_file, cron, params, enabled, last_run_id, next_run_at FROM schedules ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(name, workflow_file, cron, params, enabled, last_run_id, next_run_at)| {
                    Ok(Schedule {
                        name,
                        workflow_file,
                        cron,
                        params: crate::error::json_column("schedules", "params", &params)?,
                        enabled: enabled != 0,
                        last_run_id,
                        next_run_at,
                    })
                },
            )
            .collect()
    }

    /// Deletes a schedule; false if there was none.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool> {
        self.gate("delete_schedule")?;
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM schedules WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
                == 1
        }))
    }
}
