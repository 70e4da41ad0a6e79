//! Executors run attempts. The interface is what a cluster scheduler needs, and `local` and
//! `in-process` honour it: asynchronous submission that returns an external id (a pid here, a
//! job id on a cluster), polling many attempts in one call, re-attaching to an attempt by its
//! external id after a runner restart, and cancellation with a grace period.
//!
//! The Slurm executor ([`crate::slurm`]) maps onto it: `submit` is `sbatch --parsable` (the job
//! id), `poll` one `squeue --states=all --jobs=ID,ID,…`, `reattach` a poll of one id, `cancel`
//! `scancel --signal=TERM` and `scancel` after the grace period; it never signals
//! [`Executor::changed`] and is polled every tick instead. Files go through a shared file system.

use crate::process::{self, Signal};
use crate::step_process::{self, Hosting};
use erebor_core::CancelToken;
use erebor_workflow::KindRegistry;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What to start.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The step's request file (the program is given it as `step-exec --request FILE`).
    pub request_file: PathBuf,
    /// Where stdout and stderr go.
    pub log_file: PathBuf,
    /// Extra environment variables (secrets, `CUDA_VISIBLE_DEVICES`, `EREBOR_DB`).
    pub env: Vec<(String, String)>,
    /// What a cluster scheduler is asked for (local executors ignore it).
    pub job: JobSpec,
}

/// An attempt as a cluster job: its name and what it asks of the scheduler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSpec {
    /// Unique per attempt (run, step, attempt number), so a job can be found by name.
    pub name: String,
    /// GPUs from the allocation (`--gres=gpu:N`).
    pub gpus: u32,
    /// CPUs, memory and free-form scheduler options.
    pub resources: erebor_workflow::StepResources,
    /// The step's `timeout:` (the job's time limit is derived from it).
    pub timeout: Option<Duration>,
}

/// How a step process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ExitInfo {
    /// Exit code, if it exited (and the executor could see it).
    pub code: Option<i32>,
    /// Signal, if it was killed by one.
    pub signal: Option<i32>,
}

/// An attempt's id at its executor: a pid for `local`, a job id on a cluster. Stored with the
/// attempt, so a new runner can re-attach to it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    /// Wraps an executor's id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an attempt is, as its executor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Accepted, waiting for resources.
    Queued,
    /// Running.
    Running,
    /// Ended (the exit status as far as the executor knows it; the result file decides).
    Finished(ExitInfo),
    /// The executor cannot follow it any more (why).
    Lost(String),
}

impl JobState {
    /// Whether the attempt will not change any more.
    pub(crate) fn is_over(&self) -> bool {
        matches!(self, JobState::Finished(_) | JobState::Lost(_))
    }
}

/// A boxed future, for the object-safe executor.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs attempts (see the module docs for how a cluster maps onto it).
pub trait Executor: Send + Sync {
    /// `local`, `in-process`, ...: stored with each attempt.
    fn name(&self) -> &'static str;
    /// Submits an attempt; resolves once the executor accepted it, with its external id.
    fn submit(&self, launch: Launch) -> BoxFuture<'_, io::Result<ExternalId>>;
    /// The states of many attempts at once, in the order of `ids`.
    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>>;
    /// Takes an attempt a previous runner submitted under this one's watch; its state now.
    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState>;
    /// Asks an attempt to stop (SIGTERM: it may checkpoint) and kills it after `grace`
    /// (at once when zero).
    fn cancel<'a>(&'a self, id: &'a ExternalId, grace: Duration) -> BoxFuture<'a, io::Result<()>>;
    /// Resolves when some attempt may have changed state (an exit seen at once); executors
    /// that can only be polled never resolve it.
    fn changed(&self) -> BoxFuture<'_, ()>;
    /// Forgets an attempt that is over.
    fn forget(&self, id: &ExternalId);
    /// Whether its attempts keep running when the runner dies (a cluster job does; a local
    /// step process is stopped by its parent-death signal, so a new runner re-attaches only
    /// to collect its end).
    fn outlives_runner(&self) -> bool;
    /// Whether GPUs come from the executor's own allocation (a cluster's) rather than the
    /// runner's GPU slots.
    fn allocates_gpus(&self) -> bool {
        false
    }
    /// How long a finished attempt's result file is waited for before it counts as missing
    /// (a shared file system may show it late).
    fn result_wait(&self) -> Duration {
        Duration::ZERO
    }
    /// The attempt submitted under this job name, if the executor can look names up (to
    /// recover a submission whose answer was lost).
    fn find<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Option<ExternalId>> {
        Box::pin(async { None })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What an executor knows of the attempts it started, and a wake-up for the poller.
#[derive(Default)]
struct Book {
    states: Mutex<BTreeMap<ExternalId, JobState>>,
    notify: tokio::sync::Notify,
}

impl Book {
    fn set(&self, id: &ExternalId, state: JobState) {
        lock(&self.states).insert(id.clone(), state);
        self.notify.notify_one();
    }

    fn get(&self, id: &ExternalId) -> Option<JobState> {
        lock(&self.states).get(id).cloned()
    }
}

/// Runs each step as a child process of the runner: `PROGRAM step-exec --request FILE`, in its
/// own process group, stdout and stderr appended to the log file. The external id is the pid.
pub struct LocalExecutor {
    program: PathBuf,
    book: Arc<Book>,
}

impl LocalExecutor {
    /// Re-invokes `program` (normally the running `erebor` binary).
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            book: Arc::default(),
        }
    }

    /// Re-invokes the current executable.
    pub fn current_exe() -> io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?))
    }

    fn spawn(&self, launch: &Launch) -> io::Result<(tokio::process::Child, u32)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_file)?;
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("step-exec")
            .arg("--request")
            .arg(&launch.request_file)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false)
            .envs(launch.env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the step process exited at once"))?;
        Ok((child, pid))
    }

    /// The state of a process that is not (or no longer) a child of this runner.
    fn state_of_pid(id: &ExternalId) -> JobState {
        match id.as_str().parse::<u32>() {
            Ok(pid) if process::is_alive(pid) => JobState::Running,
            Ok(_) => JobState::Finished(ExitInfo::default()),
            Err(_) => JobState::Lost(format!("`{id}` is not a process id")),
        }
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn submit(&self, launch: Launch) -> BoxFuture<'_, io::Result<ExternalId>> {
        Box::pin(async move {
            let (mut child, pid) = self.spawn(&launch)?;
            let id = ExternalId::new(pid.to_string());
            self.book.set(&id, JobState::Running);
            let book = Arc::clone(&self.book);
            let watched = id.clone();
            tokio::spawn(async move {
                use std::os::unix::process::ExitStatusExt;
                let exit = match child.wait().await {
                    Ok(status) => ExitInfo {
                        code: status.code(),
                        signal: status.signal(),
                    },
                    Err(error) => {
                        tracing::warn!(pid, "cannot wait for the step process: {error}");
                        ExitInfo::default()
                    }
                };
                book.set(&watched, JobState::Finished(exit));
            });
            Ok(id)
        })
    }

    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>> {
        Box::pin(async move {
            ids.iter()
                .map(|id| self.book.get(id).unwrap_or_else(|| Self::state_of_pid(id)))
                .collect()
        })
    }

    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState> {
        Box::pin(async move { self.book.get(id).unwrap_or_else(|| Self::state_of_pid(id)) })
    }

    fn cancel<'a>(&'a self, id: &'a ExternalId, grace: Duration) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let pid: u32 = id
                .as_str()
                .parse()
                .map_err(|_| io::Error::other(format!("`{id}` is not a process id")))?;
            let first = if grace.is_zero() {
                Signal::Kill
            } else {
                Signal::Term
            };
            signal_group(pid, first)?;
            if !grace.is_zero() {
                let book = Arc::clone(&self.book);
                let id = id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    let ended = match book.get(&id) {
                        Some(state) => state.is_over(),
                        None => !process::is_alive(pid),
                    };
                    if !ended {
                        let _ = signal_group(pid, Signal::Kill);
                    }
                });
            }
            Ok(())
        })
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.book.notify.notified())
    }

    fn forget(&self, id: &ExternalId) {
        lock(&self.book.states).remove(id);
    }

    fn outlives_runner(&self) -> bool {
        false
    }
}

/// Signals a process group; one that is gone already is not an error.
fn signal_group(pid: u32, signal: Signal) -> io::Result<()> {
    match process::signal_group(pid, signal) {
        Err(error) if error.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other,
    }
}

/// Runs each step on a thread of the runner, through the same request/events/result files.
/// No process is spawned: used to measure the engine's own overhead and in tests. A crash of
/// the step takes the runner with it, so it is not for real workloads; its attempts end with
/// their runner, so a new runner finds them lost.
pub struct InProcessExecutor {
    registry: KindRegistry,
    book: Arc<Book>,
    cancels: Mutex<BTreeMap<ExternalId, CancelToken>>,
    counter: AtomicU64,
}

impl InProcessExecutor {
    /// Runs kinds from `registry`.
    pub fn new(registry: KindRegistry) -> Self {
        Self {
            registry,
            book: Arc::default(),
            cancels: Mutex::default(),
            counter: AtomicU64::new(0),
        }
    }

    fn state(&self, id: &ExternalId) -> JobState {
        self.book.get(id).unwrap_or_else(|| {
            JobState::Lost(format!(
                "in-process attempt {id} is unknown to this runner (its runner ended)"
            ))
        })
    }
}

impl Executor for InProcessExecutor {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn submit(&self, launch: Launch) -> BoxFuture<'_, io::Result<ExternalId>> {
        Box::pin(async move {
            let number = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
            let id = ExternalId::new(format!("thread-{}-{number}", std::process::id()));
            let cancel = CancelToken::new();
            lock(&self.cancels).insert(id.clone(), cancel.clone());
            self.book.set(&id, JobState::Running);
            let registry = self.registry.clone();
            let book = Arc::clone(&self.book);
            let watched = id.clone();
            std::thread::Builder::new()
                .name("erebor-step".into())
                .spawn(move || {
                    let code = step_process::run_step_process(
                        &launch.request_file,
                        &registry,
                        &cancel,
                        Hosting::InProcess,
                    );
                    let exit = ExitInfo {
                        code: Some(code),
                        signal: None,
                    };
                    book.set(&watched, JobState::Finished(exit));
                })?;
            Ok(id)
        })
    }

    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>> {
        Box::pin(async move { ids.iter().map(|id| self.state(id)).collect() })
    }

    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState> {
        Box::pin(async move { self.state(id) })
    }

    /// The step checks its cancel token; a thread cannot be killed, so the grace is moot.
    fn cancel<'a>(&'a self, id: &'a ExternalId, _grace: Duration) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if let Some(cancel) = lock(&self.cancels).get(id) {
                cancel.cancel();
            }
            Ok(())
        })
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.book.notify.notified())
    }

    fn forget(&self, id: &ExternalId) {
        lock(&self.book.states).remove(id);
        lock(&self.cancels).remove(id);
    }

    fn outlives_runner(&self) -> bool {
        false
    }
}
