//! What a running step receives.

use crate::kind::resolve_path;
use crate::{AttemptId, CancelToken, MetricsSink, ProgressReporter, RunId, StepId};
use std::path::{Path, PathBuf};

/// Everything a step kind's `run` may use. Built by the step process from the runner's request.
pub struct StepContext<'a> {
    /// The run this step belongs to.
    pub run_id: RunId,
    /// The step's id in the expanded workflow (e.g. `train[dpop]`).
    pub step_id: StepId,
    /// This attempt's id; a retry or resume gets a new one.
    pub attempt_id: AttemptId,
    /// The step's `with:` block with every template resolved.
    pub with: serde_json::Value,
    /// Folder that relative paths in `with:` are relative to: the workflow file's folder.
    pub base_dir: PathBuf,
    /// Folder for this step's outputs. The same for every attempt of the step within a run, so
    /// a resumed attempt finds the checkpoints of the interrupted one under it.
    pub work_dir: PathBuf,
    /// Folder shared by all runs for reusable intermediate results (downloads, hashes).
    pub cache_dir: PathBuf,
    /// The run's recorded data as a JSON file the runner wrote for this attempt, for kinds
    /// whose [`StepKind::needs_run_data`](crate::StepKind::needs_run_data) is true (what it
    /// holds is between the kind and the runner's gatherer); None for the others.
    pub run_data: Option<PathBuf>,
    /// Scalar metrics go here.
    pub metrics: &'a dyn MetricsSink,
    /// Progress goes here.
    pub progress: &'a dyn ProgressReporter,
    /// Set when the step should stop; poll it between units of work.
    pub cancel: CancelToken,
}

impl StepContext<'_> {
    /// Resolves a path from `with:` against [`StepContext::base_dir`].
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        resolve_path(&self.base_dir, path)
    }

    /// Resolves a model from `with:`: a local path, or `hf://models/OWNER/NAME[@REV]` through
    /// the model mirror ([`crate::hub_models`]).
    pub fn resolve_model(&self, spec: &str) -> Result<PathBuf, crate::hub_models::ModelRefError> {
        crate::hub_models::resolve_model(&self.base_dir, spec)
    }

    /// The folder for checkpoints, under the work folder.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.work_dir.join("checkpoints")
    }
}
