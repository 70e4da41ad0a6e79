//! The error type of this crate: every variant names the file, field or template involved.

use std::path::PathBuf;

/// Result alias used across erebor-text.
pub type Result<T, E = TextError> = std::result::Result<T, E>;

/// Everything that can go wrong loading a tokenizer or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
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
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `serde_json`'s message, with the field path where known.
        message: String,
    },
    /// A field of a tokenizer or model config has a value erebor cannot use.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer file could not be loaded or used.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer.json file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A chat template failed to compile or render (including `raise_exception` in the template).
    #[error("chat template `{name}`: {message}")]
    Template {
        /// The template's name (`checkpoint`, a built-in name, or a file).
        name: String,
        /// The error, with the template line where known.
        message: String,
    },
}

impl TextError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TextError::Io {
            path: path.into(),
            source,
        }
    }

    /// A config error on `field` of `path`.
    pub fn config(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        TextError::Config {
            path: path.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reads a whole file to a string, naming the file in the error.
pub(crate) fn read_to_string(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| TextError::io(path, e))
}

/// Reads and parses a JSON file into `T`, naming the file, line and column in the error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = read_to_string(path)?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        TextError::Json {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            message: format!("at `{}`: {}", e.path(), inner),
        }
    })
}
