//! Schedules: named, recurring runs of a workflow (cron expression in a time zone, params,
//! policies), and their ticks: one row per (schedule, tick time), inserted with `ON CONFLICT DO
//! NOTHING` before the run starts, so whoever inserts it fires the tick and nobody else does.
//!
//! The store keeps the policies as the text the CLI parses (`skip`, `all:3`, ...); what they
//! mean lives in the CLI's scheduler. [`Store::schedule_history`] is the plain history of a
//! schedule (ticks joined with their runs) for tables and charts.

use crate::db::{Store, now_ms, with_pool};
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// A stored schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Schedule {
    /// Unique name.
    pub name: String,
    /// Workflow file to run (absolute).
    pub workflow_file: String,
    /// Cron expression (5 fields, or 6 with seconds first).
    pub cron: String,
    /// `--set` values (JSON object of name to text).
    pub params: serde_json::Value,
    /// Whether it fires (false: paused).
    pub enabled: bool,
    /// The run it last started.
    pub last_run_id: Option<String>,
    /// When it fires next (ms since epoch), as last computed by a scheduler.
    pub next_run_at: Option<i64>,
    /// IANA time zone the cron expression is read in (`UTC` by default).
    pub tz: String,
    /// Missed-tick policy: `skip`, `latest` or `all:N`.
    pub missed: String,
    /// Overlap policy: `skip`, `queue` or `allow`.
    pub overlap: String,
    /// Steps that must not come from the cache; `["*"]` is every step.
    pub fresh: Vec<String>,
    /// Name of the environment variable that holds the webhook URL (the URL itself is a
    /// secret and never stored).
    pub notify_env: Option<String>,
    /// Width of the regression band in MADs.
    pub regression_k: f64,
    /// Ticks at or before this time (ms) have been considered by a scheduler.
    pub seen_until: Option<i64>,
}

/// The state of a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickState {
    /// Inserted; its run has not started yet (its owner starts it, or a scheduler that finds
    /// the owner dead re-drives it).
    Claimed,
    /// Its run was created.
    Started,
    /// It could not start a run (the workflow no longer loads, ...): `error` says why.
    Failed,
    /// Not fired: missed while no scheduler ran, or an earlier run was still going.
    Skipped,
}

impl TickState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            TickState::Claimed => "claimed",
            TickState::Started => "started",
            TickState::Failed => "failed",
            TickState::Skipped => "skipped",
        }
    }

    /// Parses the stored text (unknown text reads as failed).
    pub fn parse(text: &str) -> Self {
        match text {
            "claimed" => TickState::Claimed,
            "started" => TickState::Started,
            "skipped" => TickState::Skipped,
            _ => TickState::Failed,
        }
    }
}

/// A stored tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TickRecord {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's time (ms since epoch).
    pub tick_at: i64,
    /// Its state.
    pub state: TickState,
    /// The run it started (chosen when the tick was claimed).
    pub run_id: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Host of the scheduler that owns it.
    pub owner_host: String,
    /// Pid of that scheduler.
    pub owner_pid: i64,
    /// When that scheduler last said it is alive (ms).
    pub owner_seen_at: i64,
    /// When its run was evaluated (after it ended).
    pub evaluated_at: Option<i64>,
    /// Whether the run measured anything (its fresh steps ran, none reused).
    pub fresh: Option<bool>,
    /// `step/key` to the value of each `expect:` metric of steps that ran.
    pub measurements: BTreeMap<String, f64>,
    /// Whether the run regressed.
    pub regressed: bool,
    /// Why: `expect:` misses and metrics outside the band.
    pub reasons: Vec<String>,
    /// When the webhook notice was sent (or tried).
    pub notified_at: Option<i64>,
    /// Why the notice could not be delivered.
    pub notify_error: Option<String>,
}

/// A tick to claim.
#[derive(Clone, Debug)]
pub struct NewTick<'a> {
    /// The schedule's name.
    pub schedule: &'a str,
    /// The tick's time (ms).
    pub tick_at: i64,
    /// `Claimed` (with a run id) or `Skipped` (with a reason in `error`).
    pub state: TickState,
    /// The run id the tick will start.
    pub run_id: Option<&'a str>,
    /// Why it is skipped.
    pub error: Option<&'a str>,
    /// This scheduler's host.
    pub host: &'a str,
    /// This scheduler's pid.
    pub pid: u32,
}

/// The evaluation of a tick's finished run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickEvaluation {
    /// Whether the run measured anything.
    pub fresh: bool,
    /// `step/key` to value.
    pub measurements: BTreeMap<String, f64>,
    /// Whether it regressed.
    pub regressed: bool,
    /// Why.
    pub reasons: Vec<String>,
}

/// One line of a schedule's history: a tick with its run. Plain data for tables and charts
/// (`erebor schedule history`, reports).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleHistoryEntry {
    /// The tick.
    pub tick: TickRecord,
    /// Its run's status (`running`, `succeeded`, ...), when it has a run.
    pub run_status: Option<String>,
    /// The run's workflow sha256, to attribute drift to a changed file.
    pub workflow_hash: Option<String>,
    /// The erebor version that ran it.
    pub erebor_version: Option<String>,
}

const TICK_COLUMNS: &str = "schedule, tick_at, state, run_id, error, owner_host, owner_pid, owner_seen_at, \
     evaluated_at, fresh, measurements, regressed, reasons, notified_at, notify_error";

const SCHEDULE_COLUMNS: &str = "name, workflow_file, cron, params, enabled, last_run_id, next_run_at, tz, \
     missed, overlap, fresh, notify_env, regression_k, seen_until";

macro_rules! tick_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let state: String = row.try_get("state")?;
        let fresh: Option<i64> = row.try_get("fresh")?;
        let regressed: Option<i64> = row.try_get("regressed")?;
        let measurements: Option<String> = row.try_get("measurements")?;
        let reasons: Option<String> = row.try_get("reasons")?;
        TickRecord {
            schedule: row.try_get("schedule")?,
            tick_at: row.try_get("tick_at")?,
            state: TickState::parse(&state),
            run_id: row.try_get("run_id")?,
            error: row.try_get("error")?,
            owner_host: row.try_get("owner_host")?,
            owner_pid: row.try_get("owner_pid")?,
            owner_seen_at: row.try_get("owner_seen_at")?,
            evaluated_at: row.try_get("evaluated_at")?,
            fresh: fresh.map(|f| f != 0),
            measurements: match measurements {
                Some(text) => serde_json::from_value(crate::error::json_column(
                    "schedule_ticks",
                    "measurements",
                    &text,
                )?)
                .unwrap_or_default(),
                None => BTreeMap::new(),
            },
            regressed: regressed == Some(1),
            reasons: match reasons {
                Some(text) => serde_json::from_value(crate::error::json_column(
                    "schedule_ticks",
                    "reasons",
                    &text,
                )?)
                .unwrap_or_default(),
                None => Vec::new(),
            },
            notified_at: row.try_get("notified_at")?,
            notify_error: row.try_get("notify_error")?,
        }
    }};
}

macro_rules! schedule_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let params: String = row.try_get("params")?;
        let fresh: String = row.try_get("fresh")?;
        let enabled: i64 = row.try_get("enabled")?;
        Schedule {
            name: row.try_get("name")?,
            workflow_file: row.try_get("workflow_file")?,
            cron: row.try_get("cron")?,
            params: crate::error::json_column("schedules", "params", &params)?,
            enabled: enabled != 0,
            last_run_id: row.try_get("last_run_id")?,
            next_run_at: row.try_get("next_run_at")?,
            tz: row.try_get("tz")?,
            missed: row.try_get("missed")?,
            overlap: row.try_get("overlap")?,
            fresh: serde_json::from_value(crate::error::json_column("schedules", "fresh", &fresh)?)
                .unwrap_or_default(),
            notify_env: row.try_get("notify_env")?,
            regression_k: row.try_get("regression_k")?,
            seen_until: row.try_get("seen_until")?,
        }
    }};
}

impl Store {
    /// Creates or replaces a schedule.
    pub async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        self.gate("put_schedule")?;
        let fresh = serde_json::to_string(&schedule.fresh).unwrap_or_else(|_| "[]".into());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO schedules (name, workflow_file, cron, params, enabled, last_run_id, next_run_at, \
                 created_at, tz, missed, overlap, fresh, notify_env, regression_k, seen_until) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (name) DO UPDATE SET workflow_file = $2, cron = $3, params = $4, enabled = $5, \
                 last_run_id = $6, next_run_at = $7, tz = $9, missed = $10, overlap = $11, fresh = $12, \
                 notify_env = $13, regression_k = $14, seen_until = $15",
            )
            .bind(&schedule.name)
            .bind(&schedule.workflow_file)
            .bind(&schedule.cron)
            .bind(schedule.params.to_string())
            .bind(i64::from(schedule.enabled))
            .bind(&schedule.last_run_id)
            .bind(schedule.next_run_at)
            .bind(now_ms())
            .bind(&schedule.tz)
            .bind(&schedule.missed)
            .bind(&schedule.overlap)
            .bind(fresh)
            .bind(&schedule.notify_env)
            .bind(schedule.regression_k)
            .bind(schedule.seen_until)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name");
        Ok(with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::new();
            for row in &rows {
                out.push(schedule_from_row!(row));
            }
            out
        }))
    }

    /// The schedule called `name`.
    pub async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = $1");
        Ok(with_pool!(self, |pool| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(name)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(schedule_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Pauses or resumes a schedule; resuming moves `seen_until` to `now` so ticks that passed
    /// while it was paused do not fire. False if there is no such schedule.
    pub async fn set_schedule_enabled(&self, name: &str, enabled: bool, now: i64) -> Result<bool> {
        self.gate("set_schedule_enabled")?;
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedules SET enabled = $2, \
                 seen_until = CASE WHEN $2 = 1 AND enabled = 0 THEN $3 ELSE seen_until END \
                 WHERE name = $1",
            )
            .bind(name)
            .bind(i64::from(enabled))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Moves a schedule's `seen_until` forward to `until` (never back), and records when it
    /// fires next.
    pub async fn advance_schedule(
        &self,
        name: &str,
        until: i64,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        self.gate("advance_schedule")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedules SET seen_until = $2, next_run_at = $3 \
                 WHERE name = $1 AND (seen_until IS NULL OR seen_until < $2)",
            )
            .bind(name)
            .bind(until)
            .bind(next_run_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes a schedule (its ticks stay, as history of its runs); false if there was none.
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

impl Store {
    /// Inserts a tick unless one exists for (schedule, tick time): `INSERT ... ON CONFLICT DO
    /// NOTHING`. True when this call inserted it, i.e. when the caller fires (or skips) it.
    pub async fn claim_tick(&self, tick: &NewTick<'_>) -> Result<bool> {
        self.gate("claim_tick")?;
        let now = now_ms();
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO schedule_ticks (schedule, tick_at, state, run_id, error, owner_host, owner_pid, \
                 owner_seen_at, claimed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (schedule, tick_at) DO NOTHING",
            )
            .bind(tick.schedule)
            .bind(tick.tick_at)
            .bind(tick.state.as_str())
            .bind(tick.run_id)
            .bind(tick.error)
            .bind(tick.host)
            .bind(i64::from(tick.pid))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Moves a claimed tick to `started` (its run exists) or `failed` (with the error), and
    /// for `started` records the run as the schedule's last.
    pub async fn set_tick_state(
        &self,
        schedule: &str,
        tick_at: i64,
        state: TickState,
        error: Option<&str>,
    ) -> Result<()> {
        self.gate("set_tick_state")?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE schedule_ticks SET state = $3, error = $4, \
                 started_at = CASE WHEN $3 = 'started' THEN $5 ELSE started_at END \
                 WHERE schedule = $1 AND tick_at = $2",
            )
            .bind(schedule)
            .bind(tick_at)
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            if state == TickState::Started {
                sqlx::query(
                    "UPDATE schedules SET last_run_id = \
                     (SELECT run_id FROM schedule_ticks WHERE schedule = $1 AND tick_at = $2) \
                     WHERE name = $1",
                )
                .bind(schedule)
                .bind(tick_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Renews the lease of every unfinished tick (claimed, or started and not yet evaluated)
    /// that this scheduler owns.
    pub async fn heartbeat_ticks(&self, host: &str, pid: u32) -> Result<()> {
        self.gate("heartbeat_ticks")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedule_ticks SET owner_seen_at = $3 \
                 WHERE owner_host = $1 AND owner_pid = $2 AND evaluated_at IS NULL \
                   AND state IN ('claimed', 'started')",
            )
            .bind(host)
            .bind(i64::from(pid))
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Ticks not yet done with: claimed, or started and not evaluated, oldest first.
    pub async fn open_ticks(&self) -> Result<Vec<TickRecord>> {
        let sql = format!(
            "SELECT {TICK_COLUMNS} FROM schedule_ticks \
             WHERE state = 'claimed' OR (state = 'started' AND evaluated_at IS NULL) \
             ORDER BY tick_at, schedule"
        );
        self.ticks_where(sql, None).await
    }

    /// Takes a tick over from a scheduler that died, if its lease is still the one `seen`
    /// (compare and swap: two schedulers cannot both take it).
    pub async fn take_over_tick(&self, seen: &TickRecord, host: &str, pid: u32) -> Result<bool> {
        self.gate("take_over_tick")?;
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedule_ticks SET owner_host = $3, owner_pid = $4, owner_seen_at = $5 \
                 WHERE schedule = $1 AND tick_at = $2 AND owner_host = $6 AND owner_pid = $7 \
                   AND owner_seen_at = $8",
            )
            .bind(&seen.schedule)
            .bind(seen.tick_at)
            .bind(host)
            .bind(i64::from(pid))
            .bind(now_ms())
            .bind(&seen.owner_host)
            .bind(seen.owner_pid)
            .bind(seen.owner_seen_at)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Every tick of a schedule, oldest first.
    pub async fn ticks_of(&self, schedule: &str) -> Result<Vec<TickRecord>> {
        let sql = format!(
            "SELECT {TICK_COLUMNS} FROM schedule_ticks WHERE schedule = $1 ORDER BY tick_at"
        );
        self.ticks_where(sql, Some(schedule)).await
    }

    /// The tick that started `run_id`, if a schedule started it.
    pub async fn tick_of_run(&self, run_id: &str) -> Result<Option<TickRecord>> {
        let sql = format!("SELECT {TICK_COLUMNS} FROM schedule_ticks WHERE run_id = $1");
        Ok(self
            .ticks_where(sql, Some(run_id))
            .await?
            .into_iter()
            .next())
    }

    async fn ticks_where(&self, sql: String, bind: Option<&str>) -> Result<Vec<TickRecord>> {
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(value) = bind {
                query = query.bind(value);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::new();
            for row in &rows {
                out.push(tick_from_row!(row));
            }
            out
        }))
    }

    /// Records the evaluation of a tick's finished run.
    pub async fn record_tick_evaluation(
        &self,
        schedule: &str,
        tick_at: i64,
        evaluation: &TickEvaluation,
    ) -> Result<()> {
        self.gate("record_tick_evaluation")?;
        let measurements = serde_json::to_string(&evaluation.measurements).unwrap_or_default();
        let reasons = serde_json::to_string(&evaluation.reasons).unwrap_or_default();
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedule_ticks SET evaluated_at = $3, fresh = $4, measurements = $5, \
                 regressed = $6, reasons = $7 WHERE schedule = $1 AND tick_at = $2",
            )
            .bind(schedule)
            .bind(tick_at)
            .bind(now_ms())
            .bind(i64::from(evaluation.fresh))
            .bind(measurements)
            .bind(i64::from(evaluation.regressed))
            .bind(reasons)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Claims the right to send a tick's notice (compare and swap on `notified_at`): true for
    /// exactly one caller, so a notice is sent at most once.
    pub async fn claim_notice(&self, schedule: &str, tick_at: i64) -> Result<bool> {
        self.gate("claim_notice")?;
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedule_ticks SET notified_at = $3 \
                 WHERE schedule = $1 AND tick_at = $2 AND notified_at IS NULL",
            )
            .bind(schedule)
            .bind(tick_at)
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Records why a notice could not be delivered (the message must not hold the URL).
    pub async fn set_notify_error(&self, schedule: &str, tick_at: i64, error: &str) -> Result<()> {
        self.gate("set_notify_error")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE schedule_ticks SET notify_error = $3 WHERE schedule = $1 AND tick_at = $2",
            )
            .bind(schedule)
            .bind(tick_at)
            .bind(error)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A schedule's history: its ticks, oldest first, each with its run's status, workflow
    /// sha256 and erebor version.
    pub async fn schedule_history(&self, schedule: &str) -> Result<Vec<ScheduleHistoryEntry>> {
        let ticks = self.ticks_of(schedule).await?;
        let mut out = Vec::with_capacity(ticks.len());
        for tick in ticks {
            let run: Option<(String, String, String)> = match &tick.run_id {
                Some(run_id) => with_pool!(self, |pool| {
                    sqlx::query_as(
                        "SELECT status, workflow_hash, erebor_version FROM runs WHERE id = $1",
                    )
                    .bind(run_id)
                    .fetch_optional(pool)
                    .await?
                }),
                None => None,
            };
            let (run_status, workflow_hash, erebor_version) = match run {
                Some((status, hash, version)) => (Some(status), Some(hash), Some(version)),
                None => (None, None, None),
            };
            out.push(ScheduleHistoryEntry {
                tick,
                run_status,
                workflow_hash,
                erebor_version,
            });
        }
        Ok(out)
    }
}
