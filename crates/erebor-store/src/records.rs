//! What the store keeps, as Rust types.

use erebor_core::{AttemptId, RunId, StepId};
use serde::{Deserialize, Serialize};

/// Status of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A runner is working on it (or was, until it was killed: see `RunRecord::runner_alive`).
    Running,
    /// Every step succeeded or was cached.
    Succeeded,
    /// A step failed.
    Failed,
    /// Stopped by Ctrl-C / SIGTERM.
    Cancelled,
}

/// Status of a step in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt is running.
    Running,
    /// Finished in this run.
    Succeeded,
    /// Reused from an earlier run with the same fingerprint.
    Cached,
    /// Failed (after its retries).
    Failed,
    /// Stopped by cancellation or a killed runner; `resume` restarts it.
    Interrupted,
    /// Not run because an upstream step failed.
    Skipped,
}

/// Status of one attempt, as a cluster sees it: recorded before it is submitted, submitted
/// (with an external id), queued, running, then one of the ends. Writes from the attempt are
/// accepted only while it is live (not ended).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Recorded, not yet handed to the executor (a runner killed now leaves nothing running).
    Recorded,
    /// Accepted by the executor, which gave it an external id.
    Submitted,
    /// Waiting for resources at the executor.
    Queued,
    /// The step process is running.
    Running,
    /// It produced its outputs.
    Succeeded,
    /// It failed.
    Failed,
    /// Its runner stopped it (cancellation, or a runner that died).
    Interrupted,
    /// The executor lost it (a job that vanished, a process nobody could follow).
    Lost,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            /// Parses the stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(RunStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Cancelled = "cancelled" });
text_enum!(StepStatus {
    Pending = "pending",
    Running = "running",
    Succeeded = "succeeded",
    Cached = "cached",
    Failed = "failed",
    Interrupted = "interrupted",
    Skipped = "skipped",
});
text_enum!(AttemptStatus {
    Recorded = "recorded",
    Submitted = "submitted",
    Queued = "queued",
    Running = "running",
    Succeeded = "succeeded",
    Failed = "failed",
    Interrupted = "interrupted",
    Lost = "lost",
});

impl AttemptStatus {
    /// Whether the attempt has not ended: its writes are accepted and a runner must follow it.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            AttemptStatus::Recorded
                | AttemptStatus::Submitted
                | AttemptStatus::Queued
                | AttemptStatus::Running
        )
    }
}

/// The statuses of [`AttemptStatus::is_live`] as an SQL list.
pub(crate) const LIVE_ATTEMPT_STATUSES: &str = "('recorded', 'submitted', 'queued', 'running')";

impl StepStatus {
    /// Whether the step's outputs are available to later steps.
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Succeeded | StepStatus::Cached)
    }
}

/// A new run.
#[derive(Clone, Debug)]
pub struct NewRun {
    /// `r-20261127-033012-7f3a`.
    pub id: RunId,
    /// The workflow's `name:`.
    pub workflow_name: String,
    /// Absolute path of the file.
    pub workflow_file: String,
    /// Its text.
    pub workflow_text: String,
    /// SHA-256 of the text.
    pub workflow_hash: String,
    /// Param values, secrets masked (JSON object).
    pub params: serde_json::Value,
    /// Runner options (jobs, gpus, force, `no_cache`) as JSON.
    pub options: serde_json::Value,
    /// Runner host.
    pub host: String,
    /// Runner pid.
    pub runner_pid: u32,
    /// Git commit of the workflow's folder, if it is a repository.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The erebor version.
    pub erebor_version: String,
    /// Folder with the run's work and attempt folders.
    pub run_dir: String,
}

/// A stored run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: RunId,
    /// Workflow name.
    pub workflow_name: String,
    /// Workflow file.
    pub workflow_file: String,
    /// Workflow text.
    #[serde(skip)]
    pub workflow_text: String,
    /// SHA-256 of the text.
    pub workflow_hash: String,
    /// Params (secrets masked).
    pub params: serde_json::Value,
    /// Runner options.
    pub options: serde_json::Value,
    /// Status.
    pub status: RunStatus,
    /// Why it failed, in one line.
    pub error: Option<String>,
    /// Created (ms since epoch).
    pub created_at: i64,
    /// Finished (ms since epoch).
    pub finished_at: Option<i64>,
    /// Runner host.
    pub host: String,
    /// Runner pid.
    pub runner_pid: Option<i64>,
    /// Last heartbeat of the runner.
    pub heartbeat_at: Option<i64>,
    /// Git commit.
    pub git_commit: Option<String>,
    /// Uncommitted changes.
    pub git_dirty: Option<bool>,
    /// erebor version.
    pub erebor_version: String,
    /// Run folder.
    pub run_dir: String,
}

/// A step to insert when a run starts.
#[derive(Clone, Debug)]
pub struct NewStep {
    /// Expanded id.
    pub step_id: StepId,
    /// Id as written.
    pub base_id: String,
    /// Matrix arm values (JSON object).
    pub arm: serde_json::Value,
    /// Step kind.
    pub kind: String,
    /// Position in plan order.
    pub position: i64,
    /// Dependencies.
    pub needs: Vec<String>,
    /// Config (secrets as templates).
    pub config: serde_json::Value,
}

/// A stored step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepRecord {
    /// Run id.
    pub run_id: RunId,
    /// Expanded id.
    pub step_id: StepId,
    /// Id as written.
    pub base_id: String,
    /// Arm values.
    pub arm: serde_json::Value,
    /// Kind.
    pub kind: String,
    /// Plan position.
    pub position: i64,
    /// Dependencies.
    pub needs: Vec<String>,
    /// Config.
    pub config: serde_json::Value,
    /// Status.
    pub status: StepStatus,
    /// Fingerprint.
    pub fingerprint: Option<String>,
    /// What the fingerprint was made of (JSON).
    pub fingerprint_inputs: Option<serde_json::Value>,
    /// For a reused step, the run that produced the result (never itself a reusing one).
    pub cached_from_run: Option<RunId>,
    /// For a reused step, the step of that run that produced it: with `cached_from_run` the
    /// `reused_from` link that queries follow for its metrics and artifacts.
    pub reused_from_step: Option<StepId>,
    /// Outputs (JSON of `StepOutputs`).
    pub outputs: Option<serde_json::Value>,
    /// Failure class.
    pub failure_class: Option<String>,
    /// Failure message.
    pub failure_message: Option<String>,
    /// `expect:` checks that failed.
    pub expect_failures: Vec<String>,
    /// Started.
    pub started_at: Option<i64>,
    /// Finished.
    pub finished_at: Option<i64>,
}

/// Where a reused step's result comes from: the run and step that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepLink {
    /// The producing run.
    pub run_id: RunId,
    /// The producing step in that run.
    pub step_id: StepId,
}

impl std::fmt::Display for StepLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.run_id, self.step_id)
    }
}

impl StepRecord {
    /// The `reused_from` link of a step reused from the cache (None for one that ran). Rows
    /// written before schema 3 name no step: the same id is assumed.
    pub fn reused_from(&self) -> Option<StepLink> {
        let run_id = self.cached_from_run.clone()?;
        Some(StepLink {
            run_id,
            step_id: self
                .reused_from_step
                .clone()
                .unwrap_or_else(|| self.step_id.clone()),
        })
    }
}

/// A new attempt.
#[derive(Clone, Debug)]
pub struct NewAttempt {
    /// Attempt id.
    pub id: AttemptId,
    /// Run id.
    pub run_id: RunId,
    /// Step id.
    pub step_id: StepId,
    /// 1, 2, … within the run.
    pub number: i64,
    /// Executor name.
    pub executor: String,
    /// Host.
    pub host: String,
    /// Attempt folder.
    pub dir: String,
    /// GPU slots.
    pub gpus: Vec<u32>,
}

/// A stored attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// Attempt id.
    pub id: AttemptId,
    /// Run id.
    pub run_id: RunId,
    /// Step id.
    pub step_id: StepId,
    /// Number within the run.
    pub number: i64,
    /// Status.
    pub status: AttemptStatus,
    /// Executor.
    pub executor: String,
    /// Its id at the executor: a process id, a job id.
    pub external_id: Option<String>,
    /// When the executor accepted it.
    pub submitted_at: Option<i64>,
    /// Host.
    pub host: String,
    /// Folder.
    pub dir: String,
    /// GPU slots.
    pub gpus: Vec<u32>,
    /// Started.
    pub started_at: i64,
    /// Finished.
    pub finished_at: Option<i64>,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Failure class.
    pub failure_class: Option<String>,
    /// Failure message.
    pub failure_message: Option<String>,
}

/// One metric point from a step.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// Key.
    pub key: String,
    /// Index in its series.
    pub index: u64,
    /// Value (NaN is kept).
    pub value: f64,
}

/// A stored metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricRow {
    /// Run id.
    pub run_id: RunId,
    /// Step id.
    pub step_id: StepId,
    /// Attempt id.
    pub attempt_id: AttemptId,
    /// Key.
    pub key: String,
    /// Index.
    pub index: i64,
    /// Value.
    pub value: f64,
    /// Recorded (ms since epoch).
    pub recorded_at: i64,
}

/// An artifact to record with a finished attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct NewArtifact {
    /// Output name (or `log`).
    pub name: String,
    /// Output type (`model`, `file`, ...).
    pub output_type: String,
    /// Absolute path.
    pub path: String,
    /// Content hash.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// What it was made from: (path, sha256, producing artifact id if known).
    pub inputs: Vec<(String, String, Option<String>)>,
}

/// A stored artifact.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArtifactRecord {
    /// Artifact id.
    pub id: String,
    /// Run.
    pub run_id: RunId,
    /// Step.
    pub step_id: StepId,
    /// Attempt.
    pub attempt_id: AttemptId,
    /// Output name.
    pub name: String,
    /// Output type.
    pub output_type: String,
    /// Path.
    pub path: String,
    /// SHA-256.
    pub sha256: String,
    /// Bytes.
    pub bytes: i64,
    /// Created.
    pub created_at: i64,
}

/// How an attempt ended.
#[derive(Clone, Debug)]
pub struct AttemptEnd {
    /// Succeeded, failed or interrupted.
    pub status: AttemptStatus,
    /// The step status to set with it.
    pub step_status: StepStatus,
    /// Exit code of the step process.
    pub exit_code: Option<i32>,
    /// Failure class and message.
    pub failure: Option<(String, String)>,
    /// Outputs (on success).
    pub outputs: Option<serde_json::Value>,
    /// Artifacts to record (outputs and the log).
    pub artifacts: Vec<NewArtifact>,
    /// Failed `expect:` checks.
    pub expect_failures: Vec<String>,
}
