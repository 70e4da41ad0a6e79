//! The error type of this crate: every variant names the file, tensor, field or template involved.

use std::path::PathBuf;

/// Result alias used across erebor-model.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, running or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Loading a tokenizer or rendering a chat template failed (erebor-text).
    #[error(transparent)]
    Text(#[from] erebor_text::TextError),
    /// A required file is missing from a checkpoint folder.
    #[error("{path}: missing ({what})")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What the file is needed for.
        what: String,
    },
    /// A JSON file does not parse or does not have the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What is wrong, including the field path where known.
        message: String,
    },
    /// A configuration value is missing, has the wrong type or is not supported.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        /// The config file (or a description of where the config came from).
        path: PathBuf,
        /// The field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A weights file is malformed (bad header, truncated data, unsupported dtype).
    #[error("{path}: {message}")]
    Weights {
        /// The safetensors or GGUF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// The Hugging Face tensor name.
        name: String,
    },
    /// The checkpoint has tensors the model does not use.
    #[error("{path}: unexpected tensor(s) {names:?}")]
    UnexpectedTensors {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// The unexpected tensor names (at most 10 listed).
        names: Vec<String>,
    },
    /// A tensor has a different shape than the config implies.
    #[error("{path}: tensor `{name}` has shape {found:?}, the config implies {expected:?}")]
    ShapeMismatch {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape found in the file.
        found: Vec<usize>,
    },
    /// A device string names a backend that is unknown or not compiled in.
    #[error("device `{device}`: {message}")]
    Device {
        /// The device string as given.
        device: String,
        /// Why it cannot be used (names the cargo feature to enable when relevant).
        message: String,
    },
    /// The device ran out of memory placing or computing tensors (LibTorch's CUDA allocator,
    /// or the host's); a smaller batch, shorter sequences, LoRA or another device may fit.
    #[error("device `{device}` is out of memory: {message}")]
    OutOfMemory {
        /// The device (`cuda:0`, `cpu`).
        device: String,
        /// What was being done and what the backend said.
        message: String,
    },
    /// A scoring or generation request is invalid (empty continuation, token id out of range...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ModelError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// A JSON error on `path`, keeping `serde_json`'s line and column.
    pub fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        ModelError::Json {
            path: path.into(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        }
    }

    /// A config error on `field` of `path`.
    pub fn config(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError::Config {
            path: path.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether the failure is a lack of memory: [`ModelError::OutOfMemory`], or reading or
    /// mapping a file failing with the OS's out-of-memory error (ENOMEM). Callers classify
    /// failures with this instead of reading the message.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            ModelError::OutOfMemory { .. } => true,
            ModelError::Io { source, .. } => source.kind() == std::io::ErrorKind::OutOfMemory,
            _ => false,
        }
    }

    /// A malformed weights file.
    pub fn weights(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::Weights {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Reads a whole file to a string, naming the file in the error.
pub(crate) fn read_to_string(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))
}

/// Reads and parses a JSON file into `T`, naming the file, line and column in the error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = read_to_string(path)?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        ModelError::Json {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            message: format!("at `{}`: {}", e.path(), inner),
        }
    })
}
