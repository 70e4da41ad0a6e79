//! The runner: a tokio scheduler that runs workflow steps as child processes, with caching,
//! retries, cancellation, resume and events.
//!
//! - [`engine`]: [`Engine::run`] and [`Engine::resume`], the run record and lease.
//! - [`context`]: what every part of a run shares, [`context::RunContext`].
//! - [`retry`]: store writes retried on transient errors, [`StoreRetry`].
//! - [`machine`]: the run loop's state machine: a slot per step and its transitions, no I/O.
//! - [`scheduler`]: drives the machine: preparation, cache reuse, attempts, cancellation.
//! - [`attempt`]: one attempt: record, submit, follow (or re-attach), timeout, cancellation.
//! - [`outcome`]: what an attempt is given and what it returns.
//! - [`summary`]: how a scheduler pass ended.
//! - [`error`]: the engine's error type, [`EngineError`].
//! - [`prepare`]: what a step needs before it starts (fingerprint, cache hit, lineage).
//! - [`record`]: recording an attempt's events and end in the store.
//! - [`recover`]: attempts a killed runner left behind: re-attached, or marked interrupted.
//! - [`plan`]: what `erebor plan` shows (cache status and why, GPU slots).
//! - [`outputs`]: artifacts, metric outputs, `expect:` checks.
//! - [`executor`]: the executor interface (submit, poll many, re-attach, cancel with a grace
//!   period) and the `local` and `in-process` executors.
//! - [`slurm`]: the Slurm executor (sbatch, one squeue per tick, scancel), its batch scripts.
//! - [`poller`]: one executor poll per tick for every attempt being followed.
//! - [`protocol`]: the request, events and result files between runner and step process.
//! - [`run_data`]: the run's recorded data gathered by the runner for kinds that need it.
//! - [`step_process`]: the step-process side.
//! - [`events`]: engine events and subscribers.
//! - [`control`]: cancelling a run.
//! - [`tail`]: reading a growing events file.
//! - [`process`]: signals, process groups, parent-death signal.

pub mod attempt;
pub mod context;
pub mod control;
pub mod engine;
pub mod error;
pub mod events;
pub mod executor;
pub mod machine;
pub mod outcome;
pub mod outputs;
pub mod plan;
pub mod poller;
pub mod prepare;
pub mod process;
pub mod protocol;
pub mod record;
pub mod recover;
pub mod retry;
pub mod run_data;
pub mod scheduler;
pub mod slurm;
pub mod step_process;
pub mod summary;
pub mod tail;

pub use control::{RunControl, StopLevel};
pub use engine::{Engine, EngineError, EngineOptions, RunSummary};
pub use events::{EngineEvent, Subscriber, Subscribers, TracingSubscriber};
pub use executor::{Executor, ExternalId, InProcessExecutor, JobState, LocalExecutor};
pub use retry::StoreRetry;
pub use run_data::{RunDataRequest, RunDataSource};
pub use scheduler::Limits;
pub use slurm::{SlurmExecutor, SlurmSettings};
