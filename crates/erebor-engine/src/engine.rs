//! Starting and resuming runs: the run record, the runner's lease and heartbeat, recovery of
//! attempts a killed runner left behind, and the final run status.

use crate::context::RunContext as Shared;
use crate::control::{RunControl, StopLevel};
pub use crate::error::EngineError;
use crate::events::{EngineEvent, Subscribers};
use crate::executor::Executor;
use crate::poller::Poller;
use crate::process;
use crate::protocol;
use crate::recover::Recovered;
use crate::recover::recover_attempts;
use crate::retry::StoreRetry;
use crate::run_data::RunDataSource;
use crate::scheduler::{Limits, Summary, schedule};
use erebor_core::RunId;
use erebor_store::{NewRun, NewStep, RunRecord, RunStatus, Store};
use erebor_workflow::{HashCache, KindRegistry, Workflow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A runner on another host is considered dead when its heartbeat is older than this.
pub const LEASE_TIMEOUT: Duration = Duration::from_mins(1);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// How the engine runs steps.
#[derive(Clone)]
pub struct EngineOptions {
    /// State folder (`.erebor`): runs under `runs/`, caches under `cache/`.
    pub home: PathBuf,
    /// Limits and cache policy.
    pub limits: Limits,
    /// Starts step processes.
    pub executor: Arc<dyn Executor>,
    /// Other executors a step may choose with its own `executor:` (e.g. `local` beside
    /// `slurm`), by [`Executor::name`].
    pub other_executors: Vec<Arc<dyn Executor>>,
    /// The store URL handed to step processes (for kinds that read the store).
    pub db_url: String,
    /// Time between SIGTERM and SIGKILL when stopping steps.
    pub stop_grace: Duration,
    /// How often events files are read.
    pub tick: Duration,
    /// How transient store errors are retried before the run fails.
    pub store_retry: StoreRetry,
}

/// The result of a run (or resume).
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Run id.
    pub run_id: RunId,
    /// Final status.
    pub status: RunStatus,
    /// Details.
    pub summary: Summary,
}

/// Runs workflows.
pub struct Engine {
    store: Store,
    registry: KindRegistry,
    options: EngineOptions,
    subscribers: Subscribers,
    control: RunControl,
    run_data: Option<Arc<dyn RunDataSource>>,
}

impl Engine {
    /// An engine over a store.
    pub fn new(
        store: Store,
        registry: KindRegistry,
        options: EngineOptions,
        subscribers: Subscribers,
        control: RunControl,
    ) -> Self {
        Self {
            store,
            registry,
            options,
            subscribers,
            control,
            run_data: None,
        }
    }

    /// This engine with `source` gathering the run's data for kinds that need it (`report`);
    /// without one their steps fail as bad input.
    #[must_use]
    pub fn with_run_data(mut self, source: Arc<dyn RunDataSource>) -> Self {
        self.run_data = Some(source);
        self
    }

    /// Runs a loaded workflow as a new run.
    pub async fn run(&self, workflow: &Workflow) -> Result<RunSummary, EngineError> {
        self.run_as(new_run_id(), workflow, serde_json::Value::Null)
            .await
    }

    /// Runs a loaded workflow as a new run with an id chosen beforehand (the scheduler records
    /// the id in its tick row before the run exists, so a restart can tell whether it started).
    /// `tags` (when not null) is stored in the run's options under `tags`: the scheduler puts
    /// the schedule's name, the tick time and the fresh steps there.
    pub async fn run_as(
        &self,
        run_id: RunId,
        workflow: &Workflow,
        tags: serde_json::Value,
    ) -> Result<RunSummary, EngineError> {
        let run_dir = self.options.home.join("runs").join(run_id.as_str());
        std::fs::create_dir_all(&run_dir).map_err(|source| EngineError::Io {
            what: "creating the run folder",
            path: run_dir.clone(),
            source,
        })?;
        let steps = new_steps(workflow);
        let (git_commit, git_dirty) = git_state(&workflow.base_dir);
        let workflow_file =
            std::path::absolute(&workflow.file).unwrap_or_else(|_| workflow.file.clone());
        let mut new_run = NewRun {
            id: run_id.clone(),
            workflow_name: workflow.name.clone(),
            workflow_file: workflow_file.display().to_string(),
            workflow_text: workflow.text.to_string(),
            workflow_hash: workflow.text_hash.clone(),
            params: serde_json::to_value(workflow.params.redacted()).unwrap_or_default(),
            options: serde_json::json!({
                "jobs": self.options.limits.jobs,
                "gpus": self.options.limits.gpus,
                "force": self.options.limits.force,
                "no_cache": self.options.limits.no_cache,
                "executor": self.options.executor.name(),
            }),
            host: process::hostname(),
            runner_pid: std::process::id(),
            git_commit,
            git_dirty,
            erebor_version: env!("CARGO_PKG_VERSION").to_owned(),
            run_dir: run_dir.display().to_string(),
        };
        if !tags.is_null()
            && let Some(options) = new_run.options.as_object_mut()
        {
            options.insert("tags".to_owned(), tags);
        }
        self.options
            .store_retry
            .run("recording the new run", || {
                self.store.create_run(&new_run, &steps)
            })
            .await?;
        tracing::info!(run = %run_id, workflow = %workflow.name, folder = %run_dir.display(), "run created");
        self.execute(run_id, run_dir, workflow, 0, Vec::new()).await
    }

    /// Continues a run: finished steps are reused, interrupted and failed ones run again.
    /// `workflow` must be loaded from the run's stored text (see [`Engine::resume_workflow_text`]).
    pub async fn resume(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
    ) -> Result<RunSummary, EngineError> {
        if run.status == RunStatus::Succeeded {
            return Err(EngineError::CannotResume(format!(
                "run {} already succeeded; nothing to resume",
                run.id
            )));
        }
        let host = process::hostname();
        if run.status == RunStatus::Running {
            let pid = run.runner_pid.and_then(|p| u32::try_from(p).ok());
            let same_host = run.host == host;
            let alive = match (same_host, pid) {
                (true, Some(pid)) => pid != std::process::id() && process::is_alive(pid),
                (true, None) => false,
                (false, _) => run
                    .heartbeat_at
                    .is_some_and(|beat| erebor_store::now_ms() - beat < lease_timeout_ms()),
            };
            if alive {
                return Err(EngineError::CannotResume(format!(
                    "run {} is still being run by pid {} on {}; stop it first (Ctrl-C / kill {0}) or wait for it",
                    run.id,
                    run.runner_pid.unwrap_or_default(),
                    run.host
                )));
            }
        }
        let retry = &self.options.store_retry;
        let claimed = retry
            .run("taking over the run", || {
                self.store.claim_run(run, &host, std::process::id())
            })
            .await?;
        if !claimed {
            return Err(EngineError::CannotResume(format!(
                "another runner took over run {} just now",
                run.id
            )));
        }
        let run_id = run.id.clone();
        let run_dir = PathBuf::from(&run.run_dir);
        // The run and its steps are created together; inserting again only fills a gap left by
        // a binary whose workflow expansion differs (existing rows are kept).
        let steps = new_steps(workflow);
        retry
            .run("recording the run's steps", || {
                self.store.insert_steps(&run_id, &steps)
            })
            .await?;
        let shared = self.shared(run_id.clone(), run_dir.clone(), workflow);
        let recovered = recover_attempts(&shared).await?;
        drop(shared);
        let done = self
            .store
            .steps_of(&run.id)
            .await?
            .iter()
            .filter(|r| r.status.is_done())
            .count();
        tracing::info!(run = %run_id, already_done = done, "resuming run");
        self.execute(run_id, run_dir, workflow, done, recovered)
            .await
    }

    /// The workflow text and folder a resume must load.
    pub fn resume_workflow_text(run: &RunRecord) -> (String, PathBuf, PathBuf) {
        let file = PathBuf::from(&run.workflow_file);
        let base = file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (run.workflow_text.clone(), file, base)
    }

    fn shared(&self, run_id: RunId, run_dir: PathBuf, workflow: &Workflow) -> Arc<Shared> {
        let others = self
            .options
            .other_executors
            .iter()
            .map(|executor| {
                let context = self.context(run_id.clone(), run_dir.clone(), workflow, executor);
                Arc::new(context)
            })
            .collect();
        let mut shared = self.context(run_id, run_dir, workflow, &self.options.executor);
        shared.others = others;
        Arc::new(shared)
    }

    /// The run's context with `executor` (and no others).
    fn context(
        &self,
        run_id: RunId,
        run_dir: PathBuf,
        workflow: &Workflow,
        executor: &Arc<dyn Executor>,
    ) -> Shared {
        let cache_dir = self.options.home.join("cache");
        let mut child_env = vec![(protocol::DB_ENV.to_owned(), self.options.db_url.clone())];
        let secrets = workflow.params.secrets();
        if !secrets.is_empty() {
            child_env.push((
                protocol::SECRETS_ENV.to_owned(),
                serde_json::to_string(&secrets).unwrap_or_default(),
            ));
        }
        Shared {
            store: self.store.clone(),
            run_id,
            run_dir,
            base_dir: workflow.base_dir.clone(),
            hash_cache: Arc::new(HashCache::open(&cache_dir.join("file-hashes.json"))),
            cache_dir,
            host: process::hostname(),
            executor: Arc::clone(executor),
            subscribers: self.subscribers.clone(),
            control: self.control.clone(),
            child_env,
            stop_grace: self.options.stop_grace,
            tick: self.options.tick,
            retry: self.options.store_retry.clone(),
            poller: Poller::start(Arc::clone(executor), self.options.tick),
            run_data: self.run_data.clone(),
            run_data_kinds: self
                .registry
                .iter()
                .filter(|kind| kind.needs_run_data())
                .map(|kind| kind.info().name.to_owned())
                .collect(),
            others: Vec::new(),
        }
    }

    async fn execute(
        &self,
        run_id: RunId,
        run_dir: PathBuf,
        workflow: &Workflow,
        done: usize,
        recovered: Vec<Recovered>,
    ) -> Result<RunSummary, EngineError> {
        let shared = self.shared(run_id.clone(), run_dir, workflow);
        self.subscribers.emit(&EngineEvent::RunStarted {
            run_id: run_id.to_string(),
            steps: workflow.steps.len(),
            done,
        });
        // Aborted when dropped, so a run future dropped midway stops renewing the lease.
        let heartbeat = AbortOnDrop(self.spawn_heartbeat(run_id.clone()));
        let records = shared
            .durably("reading the run's steps", || self.store.steps_of(&run_id))
            .await?;
        let summary = schedule(
            Arc::clone(&shared),
            workflow,
            &self.registry,
            &self.options.limits,
            &records,
            recovered,
        )
        .await;
        drop(heartbeat);
        if let Err(error) = shared.hash_cache.persist() {
            tracing::warn!("could not save the file-hash cache: {error}");
        }
        let (status, error) = if summary.lost_lease {
            (
                RunStatus::Running,
                Some("another runner took over this run".to_owned()),
            )
        } else if let Some(failure) = &summary.store_failure {
            (
                RunStatus::Failed,
                Some(format!("the store failed: {failure}")),
            )
        } else if summary.cancelled {
            (RunStatus::Cancelled, Some("cancelled".to_owned()))
        } else if !summary.failed.is_empty() || !summary.skipped.is_empty() {
            let failed: Vec<String> = summary.failed.iter().map(ToString::to_string).collect();
            (
                RunStatus::Failed,
                Some(format!("failed: {}", failed.join(", "))),
            )
        } else {
            (RunStatus::Succeeded, None)
        };
        if !summary.lost_lease {
            let written = shared
                .durably("recording the run's end", || {
                    self.store.set_run_status(&run_id, status, error.as_deref())
                })
                .await;
            match written {
                Ok(()) => {}
                // The run stays `running` with a dead runner: `resume` takes it over.
                Err(error) if summary.store_failure.is_some() => {
                    tracing::error!(run = %run_id, "cannot record the run's end either: {error}");
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.subscribers.emit(&EngineEvent::RunFinished {
            run_id: run_id.to_string(),
            status: status.to_string(),
        });
        Ok(RunSummary {
            run_id,
            status,
            summary,
        })
    }

    fn spawn_heartbeat(&self, run_id: RunId) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let control = self.control.clone();
        let host = process::hostname();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                ticker.tick().await;
                match store.heartbeat(&run_id, &host, std::process::id()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(run = %run_id, "another runner took over this run; stopping");
                        control.stop(StopLevel::Immediate);
                        return;
                    }
                    Err(error) => tracing::warn!("heartbeat failed: {error}"),
                }
            }
        })
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`LEASE_TIMEOUT`] in milliseconds, as the store's heartbeat times are.
fn lease_timeout_ms() -> i64 {
    i64::try_from(LEASE_TIMEOUT.as_millis()).unwrap_or(i64::MAX)
}

/// The store rows for a workflow's steps, in plan order.
fn new_steps(workflow: &Workflow) -> Vec<NewStep> {
    workflow
        .steps
        .iter()
        .enumerate()
        .map(|(position, step)| NewStep {
            step_id: step.id.clone(),
            base_id: step.base.clone(),
            arm: serde_json::Value::Object(step.arm.iter().cloned().collect()),
            kind: step.kind.clone(),
            // A `Vec` index is at most `isize::MAX`, which fits in an `i64`.
            #[allow(clippy::cast_possible_wrap)]
            position: position as i64,
            needs: step.needs.iter().map(ToString::to_string).collect(),
            config: step.with.clone(),
        })
        .collect()
}

/// A new run id: `r-YYYYMMDD-HHMMSS-xxxx` (UTC time and 4 random hex digits).
pub fn new_run_id() -> RunId {
    let now = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let random = uuid::Uuid::new_v4().simple().to_string();
    RunId::new(format!("r-{now}-{}", &random[..4]))
}

/// The git commit of `dir` and whether its checkout has uncommitted changes (None outside git).
pub(crate) fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| run(&["status", "--porcelain"]))
        .map(|s| !s.is_empty());
    (commit, dirty)
}
