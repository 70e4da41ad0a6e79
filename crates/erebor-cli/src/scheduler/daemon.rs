//! The scheduler loop. Each pass (every `--poll`):
//! 1. renews the lease of the ticks this daemon owns;
//! 2. for each enabled schedule, takes the ticks between its `seen_until` and now, decides by
//!    lateness and `--missed` which fire, and claims each with `INSERT ... ON CONFLICT DO
//!    NOTHING` (the run id is chosen here): the daemon whose insert lands fires the tick, so
//!    two daemons on one store fire it once; skipped ticks are recorded the same way;
//! 3. drives the open ticks it owns, adopting those of a dead daemon (same host: its pid is
//!    gone; another host: its lease is older than the engine's lease timeout) by compare and
//!    swap: a tick whose run does not exist yet is started (after a kill between claim and
//!    start the run starts now, with the id chosen at claim time), a run that was interrupted
//!    is resumed, a finished one is evaluated (fresh? regressed?) and notified.
//!
//! Runs execute in this process (each an [`Engine`] in a task, its steps child processes as in
//! `erebor run`), so the daemon knows when each ends. On SIGTERM/SIGINT it stops planning and
//! starting ticks and lets the running steps checkpoint: their runs end cancelled with steps
//! interrupted, and the next daemon that starts resumes them (a second signal kills steps).
//!
//! Test hook: with `EREBOR_TEST_SCHEDULER_STALL_AFTER_CLAIM=1` the daemon stalls forever right
//! after it claimed a tick, before the run starts (tests kill it there with SIGKILL).

use super::FRESH_ALL;
use super::clock::Clock;
use super::cron::CronSpec;
use super::evaluate::{DEFAULT_K, evaluate, fresh_steps_of};
use super::policy::{Missed, Overlap, due_ticks, may_start};
use crate::commands::resume::stored_params_as_overrides;
use crate::commands::run::ExecutorChoice;
use anyhow::Context;
use erebor_engine::{
    Engine, EngineOptions, Limits, RunControl, RunSummary, StopLevel, Subscribers,
};
use erebor_store::{
    NewTick, RunRecord, RunStatus, Schedule, Store, StoreError, TickRecord, TickState,
};
use erebor_workflow::{KindRegistry, LoadOptions, MissingParams, Workflow};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// At most this many ticks of one schedule are considered in one pass (older ones are
/// skipped without a record, with a log line).
const MAX_TICKS_PER_PASS: usize = 1000;

/// The environment variable of the test hook (module docs).
pub(crate) const STALL_AFTER_CLAIM_ENV: &str = "EREBOR_TEST_SCHEDULER_STALL_AFTER_CLAIM";

/// How the daemon runs.
#[derive(Clone, Debug)]
pub(crate) struct DaemonOptions {
    /// Time between passes.
    pub(crate) poll: Duration,
    /// A tick seen later than this after its time was missed.
    pub(crate) late_after: Duration,
    /// Steps running at once in each run (default: the CPU count).
    pub(crate) jobs: usize,
    /// GPU slots.
    pub(crate) gpus: Vec<u32>,
    /// Where steps run (None: each workflow's `executor:`, else local).
    pub(crate) executor: Option<ExecutorChoice>,
    /// Time a stopped step gets to checkpoint.
    pub(crate) stop_grace: Duration,
}

/// What every task of the daemon shares.
pub(crate) struct Daemon {
    store: Store,
    registry: KindRegistry,
    home: PathBuf,
    db_url: String,
    options: DaemonOptions,
    control: RunControl,
    clock: Clock,
    host: String,
    pid: u32,
    http: reqwest::Client,
}

type Active = HashMap<(String, i64), JoinHandle<()>>;

impl Daemon {
    /// A daemon over `store`; `control` stops it (and its runs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Store,
        registry: KindRegistry,
        home: PathBuf,
        db_url: String,
        options: DaemonOptions,
        control: RunControl,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            home,
            db_url,
            options,
            control,
            clock,
            host: erebor_engine::process::hostname(),
            pid: std::process::id(),
            http: reqwest::Client::new(),
        })
    }

    /// Runs passes until stopped, then waits for the running runs to wind down.
    pub(crate) async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let mut active = Active::new();
        let mut stop = self.control.subscribe();
        tracing::info!(pid = self.pid, store = %self.store.url(), "scheduler started");
        while self.control.level() == StopLevel::Run {
            if let Err(error) = Arc::clone(&self).pass(&mut active).await {
                tracing::warn!("scheduler pass failed (retrying next pass): {error:#}");
            }
            tokio::select! {
                () = tokio::time::sleep(self.options.poll) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!(
            running = active.len(),
            "scheduler stopping: no new ticks; running steps checkpoint and their runs are left interrupted"
        );
        for (_, handle) in active {
            let _ = handle.await;
        }
        Ok(())
    }

    async fn pass(self: Arc<Self>, active: &mut Active) -> anyhow::Result<()> {
        active.retain(|_, handle| !handle.is_finished());
        let now = self.clock.now_ms()?;
        self.store.heartbeat_ticks(&self.host, self.pid).await?;
        for schedule in self.store.schedules().await? {
            if !schedule.enabled || self.control.level() != StopLevel::Run {
                continue;
            }
            if let Err(error) = self.plan(&schedule, now).await {
                tracing::warn!(schedule = %schedule.name, "planning ticks failed: {error:#}");
            }
        }
        self.drive(active).await
    }

    /// Claims (or records as skipped) the ticks of `schedule` up to `now` (module docs, 2).
    async fn plan(&self, schedule: &Schedule, now: i64) -> anyhow::Result<()> {
        let spec = CronSpec::parse(&schedule.cron, &schedule.tz)?;
        let missed: Missed = schedule.missed.parse().map_err(anyhow::Error::msg)?;
        let overlap: Overlap = schedule.overlap.parse().map_err(anyhow::Error::msg)?;
        let Some(seen) = schedule.seen_until.filter(|seen| *seen < now) else {
            if schedule.seen_until.is_none() {
                self.store
                    .advance_schedule(&schedule.name, now, spec.next_after(now))
                    .await?;
            }
            return Ok(());
        };
        let (ticks, left_out) = spec.ticks_between(seen, now, MAX_TICKS_PER_PASS);
        if left_out {
            tracing::warn!(schedule = %schedule.name, "older missed ticks skipped without a record");
        }
        let late_after = crate::format::millis(self.options.late_after);
        let due = due_ticks(&ticks, now, late_after, missed);
        for (tick, reason) in &due.skip {
            self.claim(&schedule.name, *tick, None, Some(reason))
                .await?;
        }
        let mut busy = overlap == Overlap::Skip && self.unfinished(&schedule.name).await?;
        for tick in due.fire {
            if busy {
                let reason =
                    "overlap: an earlier run of the schedule is unfinished (--overlap skip)";
                self.claim(&schedule.name, tick, None, Some(reason)).await?;
                continue;
            }
            let run_id = erebor_engine::engine::new_run_id();
            if self
                .claim(&schedule.name, tick, Some(run_id.as_str()), None)
                .await?
            {
                busy = overlap == Overlap::Skip;
                if std::env::var(STALL_AFTER_CLAIM_ENV).as_deref() == Ok("1") {
                    tracing::warn!("{STALL_AFTER_CLAIM_ENV}=1: stalling after the claim");
                    std::future::pending::<()>().await;
                }
            }
        }
        self.store
            .advance_schedule(&schedule.name, now, spec.next_after(now))
            .await?;
        Ok(())
    }

    /// Inserts a tick row (claimed with a run id, or skipped with a reason); true when this
    /// daemon inserted it.
    async fn claim(
        &self,
        schedule: &str,
        tick_at: i64,
        run_id: Option<&str>,
        skipped: Option<&str>,
    ) -> anyhow::Result<bool> {
        let state = if skipped.is_some() {
            TickState::Skipped
        } else {
            TickState::Claimed
        };
        let inserted = self
            .store
            .claim_tick(&NewTick {
                schedule,
                tick_at,
                state,
                run_id,
                error: skipped,
                host: &self.host,
                pid: self.pid,
            })
            .await?;
        if inserted {
            let at = super::notify::rfc3339(tick_at);
            match skipped {
                Some(reason) => tracing::info!(schedule, tick = %at, "tick skipped: {reason}"),
                None => tracing::info!(schedule, tick = %at, run = ?run_id, "tick claimed"),
            }
        }
        Ok(inserted)
    }

    /// Whether the schedule has a tick whose run has not ended and been evaluated.
    async fn unfinished(&self, schedule: &str) -> anyhow::Result<bool> {
        Ok(self
            .store
            .open_ticks()
            .await?
            .iter()
            .any(|t| t.schedule == schedule))
    }

    /// Drives the open ticks this daemon owns or adopts (module docs, 3).
    async fn drive(self: Arc<Self>, active: &mut Active) -> anyhow::Result<()> {
        let open = self.store.open_ticks().await?;
        let mut schedules: HashMap<String, Option<Schedule>> = HashMap::new();
        for tick in &open {
            if self.control.level() != StopLevel::Run {
                break;
            }
            let key = (tick.schedule.clone(), tick.tick_at);
            if active.contains_key(&key) || !self.owns_or_adopts(tick).await? {
                continue;
            }
            if !schedules.contains_key(&tick.schedule) {
                let schedule = self.store.get_schedule(&tick.schedule).await?;
                schedules.insert(tick.schedule.clone(), schedule);
            }
            let schedule = schedules[&tick.schedule].clone();
            let earlier_unfinished = open
                .iter()
                .any(|t| t.schedule == tick.schedule && t.tick_at < tick.tick_at);
            if let Some(handle) = Arc::clone(&self)
                .handle(tick.clone(), schedule, earlier_unfinished)
                .await?
            {
                active.insert(key, handle);
            }
        }
        Ok(())
    }

    /// True when this daemon owns the tick, or took it over from a dead daemon just now.
    async fn owns_or_adopts(&self, tick: &TickRecord) -> anyhow::Result<bool> {
        if tick.owner_host == self.host && tick.owner_pid == i64::from(self.pid) {
            return Ok(true);
        }
        let dead = if tick.owner_host == self.host {
            !u32::try_from(tick.owner_pid).is_ok_and(erebor_engine::process::is_alive)
        } else {
            let lease = crate::format::millis(erebor_engine::engine::LEASE_TIMEOUT);
            erebor_store::now_ms() - tick.owner_seen_at > lease
        };
        if !dead
            || !self
                .store
                .take_over_tick(tick, &self.host, self.pid)
                .await?
        {
            return Ok(false);
        }
        tracing::warn!(
            schedule = %tick.schedule,
            tick = %super::notify::rfc3339(tick.tick_at),
            dead_pid = tick.owner_pid,
            dead_host = %tick.owner_host,
            "taking over a tick whose scheduler died"
        );
        Ok(true)
    }

    /// Starts, resumes or evaluates one owned open tick; the task, if one was started.
    async fn handle(
        self: Arc<Self>,
        tick: TickRecord,
        schedule: Option<Schedule>,
        earlier_unfinished: bool,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        let Some(run_id) = tick.run_id.clone() else {
            return Ok(None);
        };
        let run = match self.store.find_run(&run_id).await {
            Ok(run) if run.id.as_str() == run_id => Some(run),
            Ok(_) | Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let Some(run) = run else {
            let Some(schedule) = schedule else {
                self.store
                    .set_tick_state(
                        &tick.schedule,
                        tick.tick_at,
                        TickState::Failed,
                        Some("the schedule was removed before its run started"),
                    )
                    .await?;
                return Ok(None);
            };
            let overlap: Overlap = schedule.overlap.parse().unwrap_or(Overlap::Skip);
            if !may_start(overlap, earlier_unfinished) {
                return Ok(None);
            }
            return Ok(Some(tokio::spawn(self.start(tick, schedule))));
        };
        if tick.state == TickState::Claimed {
            self.store
                .set_tick_state(&tick.schedule, tick.tick_at, TickState::Started, None)
                .await?;
        }
        let task = match run.status {
            RunStatus::Succeeded | RunStatus::Failed => {
                tokio::spawn(async move { self.evaluate_stored(tick, run).await })
            }
            RunStatus::Running if crate::history::display_status(&run) == "running" => {
                return Ok(None);
            }
            RunStatus::Running | RunStatus::Cancelled => tokio::spawn(self.resume(tick, run)),
        };
        Ok(Some(task))
    }

    /// Starts the run of a claimed tick (the workflow is loaded now: one that no longer
    /// validates fails the tick with the error, and the daemon goes on).
    async fn start(self: Arc<Self>, tick: TickRecord, schedule: Schedule) {
        let name = tick.schedule.clone();
        let workflow = match self.load(&schedule) {
            Ok(workflow) => workflow,
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!(schedule = %name, "tick failed: {message}");
                Self::log_error(
                    self.store
                        .set_tick_state(&name, tick.tick_at, TickState::Failed, Some(&message))
                        .await,
                );
                return;
            }
        };
        let result = async {
            self.store
                .set_tick_state(&name, tick.tick_at, TickState::Started, None)
                .await?;
            let engine = self.engine(&workflow, &schedule.fresh)?;
            let tags = serde_json::json!({
                "schedule": name,
                "tick_at": tick.tick_at,
                "tick": super::notify::rfc3339(tick.tick_at),
                "fresh": schedule.fresh,
            });
            let run_id = erebor_store::RunId::from(tick.run_id.as_deref().unwrap_or_default());
            tracing::info!(schedule = %name, run = %run_id.as_str(), "starting the tick's run");
            Ok::<_, anyhow::Error>(engine.run_as(run_id, &workflow, tags).await?)
        }
        .await;
        self.finished(tick, result, &workflow).await;
    }

    /// Resumes the interrupted run of a tick.
    async fn resume(self: Arc<Self>, tick: TickRecord, run: RunRecord) {
        let result = async {
            let workflow = self.stored_workflow(&run)?;
            let engine = self.engine(&workflow, &fresh_steps_of(&run))?;
            tracing::info!(schedule = %tick.schedule, run = %run.id.as_str(), "resuming the tick's interrupted run");
            let summary = engine.resume(&run, &workflow).await?;
            Ok::<_, anyhow::Error>((summary, workflow))
        }
        .await;
        match result {
            Ok((summary, workflow)) => self.finished(tick, Ok(summary), &workflow).await,
            Err(error) => tracing::warn!(schedule = %tick.schedule, "resuming failed: {error:#}"),
        }
    }

    /// After a run returned: evaluate it if it ended (an interrupted one waits for a resume).
    async fn finished(
        &self,
        tick: TickRecord,
        result: anyhow::Result<RunSummary>,
        workflow: &Workflow,
    ) {
        match result {
            Ok(summary) if matches!(summary.status, RunStatus::Succeeded | RunStatus::Failed) => {
                let outcome = async {
                    let run = self.store.find_run(summary.run_id.as_str()).await?;
                    self.evaluate_run(&tick, &run, workflow).await
                }
                .await;
                Self::log_error(outcome);
            }
            Ok(summary) => tracing::info!(
                schedule = %tick.schedule,
                run = %summary.run_id,
                status = %summary.status,
                "the tick's run was interrupted; a scheduler resumes it when it starts"
            ),
            Err(error) => {
                tracing::warn!(schedule = %tick.schedule, "the tick's run failed to run: {error:#}");
            }
        }
    }

    /// Evaluates a run that had ended before this daemon saw it (after a restart).
    async fn evaluate_stored(&self, tick: TickRecord, run: RunRecord) {
        let outcome = async {
            let workflow = self.stored_workflow(&run)?;
            self.evaluate_run(&tick, &run, &workflow).await
        }
        .await;
        Self::log_error(outcome);
    }

    /// Records the evaluation of a finished run and notifies a regression.
    async fn evaluate_run(
        &self,
        tick: &TickRecord,
        run: &RunRecord,
        workflow: &Workflow,
    ) -> anyhow::Result<()> {
        let schedule = self.store.get_schedule(&tick.schedule).await?;
        let k = schedule.as_ref().map_or(DEFAULT_K, |s| s.regression_k);
        let evaluation = evaluate(&self.store, tick, run, workflow, k).await?;
        self.store
            .record_tick_evaluation(&tick.schedule, tick.tick_at, &evaluation)
            .await?;
        if !evaluation.regressed {
            tracing::info!(schedule = %tick.schedule, run = %run.id.as_str(), fresh = evaluation.fresh, "tick evaluated: no regression");
            return Ok(());
        }
        tracing::warn!(schedule = %tick.schedule, run = %run.id.as_str(), reasons = ?evaluation.reasons, "run regressed");
        let (Some(schedule), Some(stored)) =
            (schedule, self.store.tick_of_run(run.id.as_str()).await?)
        else {
            return Ok(());
        };
        super::notify::send_once(&self.store, &self.http, &schedule, &stored, run).await
    }

    fn log_error(result: Result<impl Sized, impl Into<anyhow::Error>>) {
        if let Err(error) = result {
            let error: anyhow::Error = error.into();
            tracing::warn!("scheduler: {error:#}");
        }
    }

    /// Loads the schedule's workflow file with its `--set` values.
    fn load(&self, schedule: &Schedule) -> anyhow::Result<Workflow> {
        let overrides = stored_params_as_overrides(&schedule.params);
        let options = LoadOptions {
            overrides,
            missing: MissingParams::Error,
            ..LoadOptions::default()
        };
        let workflow = erebor_workflow::load_file(
            Path::new(&schedule.workflow_file),
            &self.registry,
            &options,
        )?;
        crate::telemetry::add_secrets(workflow.params.secret_values());
        Ok(workflow)
    }

    /// Loads a run's stored workflow text with its stored params (as `erebor resume` does).
    fn stored_workflow(&self, run: &RunRecord) -> anyhow::Result<Workflow> {
        let (text, file, base_dir) = Engine::resume_workflow_text(run);
        let options = LoadOptions {
            overrides: stored_params_as_overrides(&run.params),
            missing: MissingParams::Error,
            ..LoadOptions::default()
        };
        let workflow = erebor_workflow::load_str(&file, &text, &base_dir, &self.registry, &options)
            .with_context(|| format!("reloading the workflow of run {}", run.id.as_str()))?;
        crate::telemetry::add_secrets(workflow.params.secret_values());
        Ok(workflow)
    }

    /// An engine for `workflow` whose cache policy runs `fresh` (`*`: everything) anew.
    fn engine(&self, workflow: &Workflow, fresh: &[String]) -> anyhow::Result<Engine> {
        let all = fresh.iter().any(|s| s == FRESH_ALL);
        let executors = crate::executors::build(self.options.executor, workflow, &self.registry)?;
        let options = EngineOptions {
            home: self.home.clone(),
            limits: Limits {
                jobs: self.options.jobs,
                gpus: self.options.gpus.clone(),
                force: if all { Vec::new() } else { fresh.to_vec() },
                no_cache: all,
            },
            executor: executors.default,
            other_executors: executors.others,
            db_url: self.db_url.clone(),
            stop_grace: self.options.stop_grace,
            tick: Duration::from_millis(200),
            store_retry: erebor_engine::StoreRetry::default(),
        };
        let mut subscribers = Subscribers::new();
        subscribers.add(Arc::new(erebor_engine::TracingSubscriber));
        Ok(Engine::new(
            self.store.clone(),
            self.registry.clone(),
            options,
            subscribers,
            self.control.clone(),
        )
        .with_run_data(Arc::new(crate::step_kinds::report::ReportRunData)))
    }
}
