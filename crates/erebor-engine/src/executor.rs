//! Executors start step processes. The interface is two calls (start, then wait or signal the
//! handle) so a Slurm executor (`sbatch` / `scancel`, files on a shared file system) fits it.

use crate::process::{self, Signal};
use crate::step_process::{self, Hosting};
use erebor_core::CancelToken;
use erebor_workflow::KindRegistry;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;

/// What to start.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The step's request file (the program is given it as `step-exec --request FILE`).
    pub request_file: PathBuf,
    /// Where stdout and stderr go.
    pub log_file: PathBuf,
    /// Extra environment variables (secrets, `CUDA_VISIBLE_DEVICES`, `EREBOR_DB`).
    pub env: Vec<(String, String)>,
}

/// How a step process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if it was killed by one.
    pub signal: Option<i32>,
}

/// A boxed future, for the object-safe handle.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A started step process.
pub trait StepHandle: Send {
    /// Process id, job id, or thread name: recorded with the attempt.
    fn id(&self) -> String;
    /// Waits until the process ends.
    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitInfo>>;
    /// Sends a signal (to the whole process group for local processes).
    fn signal(&mut self, signal: Signal) -> io::Result<()>;
}

/// Starts step processes.
pub trait Executor: Send + Sync {
    /// `local`, `in-process`, ...
    fn name(&self) -> &'static str;
    /// Starts one step process.
    fn start(&self, launch: Launch) -> io::Result<Box<dyn StepHandle>>;
}

/// Runs each step as a child process of the runner: `PROGRAM step-exec --request FILE`, in its
/// own process group, stdout and stderr appended to the log file.
pub struct LocalExecutor {
    program: PathBuf,
}

impl LocalExecutor {
    /// Re-invokes `program` (normally the running `erebor` binary).
    pub fn new(program: PathBuf) -> Self {
        Self { program }
    }

    /// Re-invokes the current executable.
    pub fn current_exe() -> io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?))
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn start(&self, launch: Launch) -> io::Result<Box<dyn StepHandle>> {
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
        Ok(Box::new(LocalHandle { child, pid }))
    }
}

struct LocalHandle {
    child: tokio::process::Child,
    pid: u32,
}

impl StepHandle for LocalHandle {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitInfo>> {
        Box::pin(async move {
            use std::os::unix::process::ExitStatusExt;
            let status = self.child.wait().await?;
            Ok(ExitInfo {
                code: status.code(),
                signal: status.signal(),
            })
        })
    }

    fn signal(&mut self, signal: Signal) -> io::Result<()> {
        match process::signal_group(self.pid, signal) {
            Err(error) if error.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        }
    }
}

/// Runs each step on a thread of the runner, through the same request/events/result files.
/// No process is spawned: used to measure the engine's own overhead and in tests. A crash of
/// the step takes the runner with it, so it is not for real workloads.
pub struct InProcessExecutor {
    registry: KindRegistry,
}

impl InProcessExecutor {
    /// Runs kinds from `registry`.
    pub fn new(registry: KindRegistry) -> Self {
        Self { registry }
    }
}

impl Executor for InProcessExecutor {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn start(&self, launch: Launch) -> io::Result<Box<dyn StepHandle>> {
        let cancel = CancelToken::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let registry = self.registry.clone();
        let thread_cancel = cancel.clone();
        let name = format!("step-{}", launch.request_file.display());
        std::thread::Builder::new()
            .name("erebor-step".into())
            .spawn(move || {
                let code = step_process::run_step_process(
                    &launch.request_file,
                    &registry,
                    thread_cancel,
                    Hosting::InProcess,
                );
                let _ = done_tx.send(code);
            })?;
        Ok(Box::new(InProcessHandle {
            name,
            cancel,
            done: Some(done_rx),
        }))
    }
}

struct InProcessHandle {
    name: String,
    cancel: CancelToken,
    done: Option<tokio::sync::oneshot::Receiver<i32>>,
}

impl StepHandle for InProcessHandle {
    fn id(&self) -> String {
        self.name.clone()
    }

    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitInfo>> {
        Box::pin(async move {
            let done = self
                .done
                .as_mut()
                .ok_or_else(|| io::Error::other("already waited"))?;
            // Awaiting through `&mut` keeps the receiver if this future is dropped early.
            let code = done
                .await
                .map_err(|_| io::Error::other("the step thread died"))?;
            self.done = None;
            Ok(ExitInfo {
                code: Some(code),
                signal: None,
            })
        })
    }

    fn signal(&mut self, _signal: Signal) -> io::Result<()> {
        self.cancel.cancel();
        Ok(())
    }
}
