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
    /// The model layer refused (load, forward, save); its error names the file, tensor or field.
    #[error("model: {0}")]
    Model(#[from] erebor_model::ModelError),
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
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
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
            TrainError::Model(ref model) if model.is_out_of_memory() => {
                StepFailure::out_of_memory(message)
            }
            _ => StepFailure::unknown(message),
        }
    }
}

/// Tokenizer and chat-template failures (erebor-text) arrive as the model error they are
/// within erebor-model.
impl From<erebor_model::TextError> for TrainError {
    fn from(error: erebor_model::TextError) -> Self {
        TrainError::Model(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_core::failure::FailureClass;
    use erebor_model::ModelError;

    fn class(error: impl Into<TrainError>) -> FailureClass {
        StepFailure::from(error.into()).class
    }

    #[test]
    fn a_model_out_of_memory_is_an_out_of_memory_failure_and_keeps_its_source() {
        let oom = ModelError::OutOfMemory {
            device: "cuda:0".into(),
            message: "forward pass of 8 x 2048 tokens".into(),
        };
        let error = TrainError::from(oom);
        assert!(matches!(
            error,
            TrainError::Model(ModelError::OutOfMemory { .. })
        ));
        assert_eq!(
            error.to_string(),
            "model: device `cuda:0` is out of memory: forward pass of 8 x 2048 tokens"
        );
        assert_eq!(class(error), FailureClass::OutOfMemory);
        let enomem = ModelError::io(
            "m/model.safetensors",
            std::io::Error::from(std::io::ErrorKind::OutOfMemory),
        );
        assert_eq!(class(enomem), FailureClass::OutOfMemory);
    }

    #[test]
    fn other_model_errors_are_not_out_of_memory_whatever_their_text() {
        // A file named for the failure it reproduces is not one.
        let missing = ModelError::MissingTensor {
            path: "runs/out of memory/model".into(),
            name: "lm_head.weight".into(),
        };
        assert_eq!(class(missing), FailureClass::Unknown);
    }
}
