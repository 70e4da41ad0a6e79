//! The run store: runs, steps, attempts, artifacts, metrics and schedules in SQLite (default)
//! or Postgres, with embedded migrations and run-history queries.
//!
//! - [`db`]: opening a store, migrations, the schema-version check.
//! - [`records`]: the stored types.
//! - [`runs`]: runs and the runner lease.
//! - [`steps`]: steps, fingerprints and the cache lookup.
//! - [`attempts`]: attempts and their guarded transitions.
//! - [`metrics`]: batched, exactly-once metrics.
//! - [`artifacts`]: artifacts with lineage, and interrupting attempts.
//! - [`schedules`]: recurring runs and their ticks (exactly-once firing), schedule history.
//! - [`judgments`]: the MT-Bench judgment cache.
//! - [`error`]: the error type, [`StoreError`].

pub mod artifacts;
pub mod attempts;
pub mod db;
pub mod error;
pub mod judgments;
pub mod metrics;
pub mod records;
pub mod runs;
pub mod schedules;
pub mod steps;

pub use db::{SCHEMA_VERSION, Store, WriteGate, now_ms, redact_url};
pub use erebor_core::{AttemptId, RunId, StepId};
pub use error::{Result, StoreError};
pub use judgments::{JudgmentKey, StoredJudgment};
pub use metrics::{MetricFilter, merge_attempts};
pub use records::*;
pub use runs::RunFilter;
pub use schedules::{
    NewTick, Schedule, ScheduleHistoryEntry, TickEvaluation, TickRecord, TickState,
};
/// sqlx's error type, for callers that build or inspect [`StoreError::Db`].
pub use sqlx::Error as SqlxError;
pub use steps::CachedResult;
