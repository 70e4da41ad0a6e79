//! The runner ↔ step-process protocol (docs/steps.md, "Step processes").
//!
//! For each attempt the runner makes a folder holding four files:
//!
//! ```text
//! request.json   StepRequest, written by the runner before the process starts
//! events.jsonl   StepEvents (metrics, progress), appended by the step, tailed by the runner
//! result.json    StepResult, written atomically by the step when it ends
//! step.log       the step process's stdout and stderr
//! run-data.json  the run's recorded data, for kinds that need it (see [`crate::run_data`])
//! ```
//!
//! Secret params are not in `request.json`: the runner passes them in the
//! `SECRETS_ENV` environment variable and the step substitutes them itself.

use erebor_core::{AttemptId, RunId, StepFailure, StepId, StepOutputs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of this protocol; a step process refuses a request of another version.
pub(crate) const PROTOCOL_VERSION: u32 = 1;
/// Environment variable with the JSON map of secret param values.
pub(crate) const SECRETS_ENV: &str = "EREBOR_STEP_SECRETS";
/// Environment variable with the run store URL (for kinds that read the store, e.g. `report`).
pub const DB_ENV: &str = "EREBOR_DB";

/// What the runner asks a step process to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StepRequest {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The run.
    pub run_id: RunId,
    /// The expanded step id.
    pub step_id: StepId,
    /// This attempt.
    pub attempt_id: AttemptId,
    /// 1 for the first attempt of the step in this run.
    pub attempt_number: u32,
    /// The step kind.
    pub kind: String,
    /// The `with:` block with outputs substituted (secrets still templates).
    pub with: serde_json::Value,
    /// The workflow file's folder.
    pub base_dir: PathBuf,
    /// The step's work folder (same for every attempt in the run).
    pub work_dir: PathBuf,
    /// Cache folder shared by all runs.
    pub cache_dir: PathBuf,
    /// The events file to append to.
    pub events_file: PathBuf,
    /// The result file to write.
    pub result_file: PathBuf,
    /// The runner's pid: the step exits if its parent is not this process. 0 for a cluster
    /// job, which is nobody's child and outlives its runner.
    pub runner_pid: u32,
    /// GPU slots assigned (also in `CUDA_VISIBLE_DEVICES`).
    pub gpus: Vec<u32>,
    /// The run's recorded data the runner gathered for this attempt (`run-data.json` in the
    /// attempt's folder), for kinds that need it; absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_data: Option<PathBuf>,
}

/// How a step process ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum StepResult {
    /// The step produced its outputs.
    Succeeded {
        /// The outputs.
        outputs: StepOutputs,
    },
    /// The step failed.
    Failed {
        /// Why.
        failure: StepFailure,
    },
}

/// The files of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttemptFiles {
    /// The attempt's folder.
    pub dir: PathBuf,
}

impl AttemptFiles {
    /// The files under `run_dir/attempts/<step>/<number>`.
    pub(crate) fn new(run_dir: &Path, step: &StepId, attempt_number: u32) -> Self {
        Self {
            dir: run_dir
                .join("attempts")
                .join(step.file_name())
                .join(attempt_number.to_string()),
        }
    }

    /// `request.json`.
    pub(crate) fn request(&self) -> PathBuf {
        self.dir.join("request.json")
    }

    /// `events.jsonl`.
    pub(crate) fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// `result.json`.
    pub(crate) fn result(&self) -> PathBuf {
        self.dir.join("result.json")
    }

    /// `run-data.json`.
    pub(crate) fn run_data(&self) -> PathBuf {
        self.dir.join("run-data.json")
    }

    /// `step.log`.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("step.log")
    }
}

/// The work folder of a step in a run: `run_dir/steps/<step>`.
pub fn work_dir(run_dir: &Path, step: &StepId) -> PathBuf {
    run_dir.join("steps").join(step.file_name())
}

/// Writes JSON atomically (temp file in the same folder, then rename), so a reader sees the
/// whole file or none. No fsync: after a machine crash the runner is gone too, and a resume
/// marks the attempt interrupted whatever its files say.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    erebor_core::files::write_atomic(path, &bytes, false)
}

/// Reads a result file; `Ok(None)` when it does not exist.
pub(crate) fn read_result(path: &Path) -> std::io::Result<Option<StepResult>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// `SECRETS_ENV` is set but not a JSON object of strings.
#[derive(Debug, thiserror::Error)]
#[error("${SECRETS_ENV} is not a JSON object: {0}")]
pub struct SecretsEnvError(#[source] serde_json::Error);

/// The secrets map from `SECRETS_ENV` (empty when unset).
pub fn secrets_from_env() -> Result<BTreeMap<String, String>, SecretsEnvError> {
    match std::env::var(SECRETS_ENV) {
        Ok(text) => serde_json::from_str(&text).map_err(SecretsEnvError),
        Err(_) => Ok(BTreeMap::new()),
    }
}
