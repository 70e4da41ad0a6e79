//! The errors of training code, each naming the file, field, step or tensor concerned.

use erebor_core::StepFailure;
use std::path::PathBuf;

/// A training failure.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor could not be read back from the device.
    #[error("cannot read {what} from the device: {message}")]
    TensorRead {
        /// Which tensor.
        what: String,
        /// The backend's error.
        message: String,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint exists but is unusable.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The dataset cannot be used for this step.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The dataset folder or file.
        path: PathBuf,
        /// What is wrong, naming the row when there is one.
        message: String,
    },
    /// The loss or the gradient stopped being finite.
    #[error(
        "{what} is {value} at optimizer step {step} (micro-batch {micro_batch}); training stopped, \
         the last good checkpoint is kept{}",
        last_checkpoint.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default()
    )]
    NotFinite {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value seen (NaN, inf).
        value: f64,
        /// The optimizer step being computed (1-based).
        step: u64,
        /// The micro-batch within the step (0-based).
        micro_batch: usize,
        /// The newest checkpoint on disk, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// The model layer refused (load, forward, save).
    #[error("model: {0}")]
    Model(String),
    /// The configuration cannot be run.
    #[error("{0}")]
    Config(String),
    /// The step was cancelled; a checkpoint was written first when one was due.
    #[error("cancelled at optimizer step {step}{}", checkpoint.as_ref().map(|p| format!(", checkpoint {}", p.display())).unwrap_or_default())]
    Cancelled {
        /// Optimizer steps completed.
        step: u64,
        /// The checkpoint written on the way out.
        checkpoint: Option<PathBuf>,
    },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The model layer's error, as text: its message already names the file, tensor or field.
impl From<erebor_model::ModelError> for TrainError {
    fn from(error: erebor_model::ModelError) -> Self {
        TrainError::Model(error.to_string())
    }
}

impl From<TrainError> for StepFailure {
    fn from(error: TrainError) -> Self {
        let message = error.to_string();
        match error {
            TrainError::Cancelled { .. } => StepFailure::cancelled(message),
            TrainError::NotFinite { .. } => StepFailure::fatal(message),
            TrainError::Dataset { .. } | TrainError::Config(_) | TrainError::Checkpoint { .. } => {
                StepFailure::bad_input(message)
            }
            TrainError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                StepFailure::transient(message)
            }
            TrainError::Model(ref text) if text.contains("out of memory") => {
                StepFailure::out_of_memory(message)
            }
            _ => StepFailure::unknown(message),
        }
    }
}
