//! The runner: a tokio scheduler that runs workflow steps as child processes, with caching,
//! retries, cancellation, resume and events.
//!
//! - [`engine`]: [`Engine::run`] and [`Engine::resume`], the run record and lease.
//! - [`scheduler`]: ready steps within `--jobs` and GPU slots, cache reuse, retries.
//! - [`attempt`]: one attempt: request, step process, timeout, cancellation.
//! - [`prepare`]: what a step needs before it starts (fingerprint, cache hit, lineage).
//! - [`record`]: recording an attempt's events and end in the store.
//! - [`recover`]: attempts a killed runner left behind.
//! - [`plan`]: what `erebor plan` shows (cache status and why, GPU slots).
//! - [`outputs`]: artifacts, metric outputs, `expect:` checks.
//! - [`executor`]: the executor interface and the `local` and `in-process` executors.
//! - [`protocol`]: the request, events and result files between runner and step process.
//! - [`step_process`]: the step-process side.
//! - [`events`]: engine events and subscribers.
//! - [`control`]: cancelling a run.
//! - [`tail`]: reading a growing events file.
//! - [`process`]: signals, process groups, parent-death signal.

pub mod attempt;
pub mod control;
pub mod engine;
pub mod events;
pub mod executor;
pub mod outputs;
pub mod plan;
pub mod prepare;
pub mod process;
pub mod protocol;
pub mod record;
pub mod recover;
pub mod scheduler;
pub mod step_process;
pub mod tail;

pub use control::{RunControl, StopLevel};
pub use engine::{Engine, EngineError, EngineOptions, RunSummary};
pub use events::{EngineEvent, Subscriber, Subscribers, TracingSubscriber};
pub use executor::{Executor, InProcessExecutor, LocalExecutor};
pub use scheduler::Limits;
