//! Errors of the data crate, each naming the place: a file and line (or Parquet row group and
//! row), a field, a `with:` key.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Where a row came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum RowLocation {
    /// A line of a text file (JSONL, CSV, or the first line of a JSON array element); 1-based.
    Line {
        /// The file (or `hf://` URI).
        file: String,
        /// 1-based line number.
        line: u64,
    },
    /// A row of a Parquet file; both 0-based, as Parquet tools count them.
    Parquet {
        /// The file (or `hf://` URI).
        file: String,
        /// Row group index.
        row_group: usize,
        /// Row index inside the row group.
        row: usize,
    },
    /// A row made by a generator (the synthetic arithmetic source); 0-based.
    Generated {
        /// The generator's name.
        source: String,
        /// Row index.
        index: u64,
    },
}

impl fmt::Display for RowLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowLocation::Line { file, line } => write!(f, "{file}:{line}"),
            RowLocation::Parquet {
                file,
                row_group,
                row,
            } => write!(f, "{file}: row group {row_group}, row {row}"),
            RowLocation::Generated { source, index } => write!(f, "{source}: row {index}"),
        }
    }
}

/// A row whose content is wrong for the mapping applied to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{location}: {}{message}", field_prefix(.field.as_deref()))]
pub struct RowError {
    /// Where the row is.
    pub location: RowLocation,
    /// The offending field, when one is to blame (`choices.2`, `conversations.1.from`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn field_prefix(field: Option<&str>) -> String {
    field
        .map(|field| format!("field `{field}`: "))
        .unwrap_or_default()
}

/// Everything that can go wrong while reading and converting data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid in its format (malformed JSON, CSV or Parquet) at a place.
    #[error("{location}: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: RowLocation,
        /// What the parser said.
        message: String,
    },
    /// A whole file is unreadable in its format (e.g. not a Parquet file at all).
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A row is syntactically fine but its fields do not fit the mapping.
    #[error(transparent)]
    Row(#[from] RowError),
    /// A path pattern matched nothing, or is not a valid pattern.
    #[error("{pattern}: {message}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// Downloading from the Hugging Face Hub failed.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// A setting is inconsistent with the data, or a row cannot be tokenised.
    #[error("{0}")]
    Invalid(String),
    /// The step was asked to stop.
    #[error("cancelled")]
    Cancelled,
    /// A row visitor asked its reader to stop early (a source's `limit` was reached). Readers
    /// return it to their caller, which treats it as the end of the file.
    #[error("reading stopped early")]
    Stopped,
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether trying again may succeed (network trouble), as opposed to bad input.
    pub fn is_transient(&self) -> bool {
        matches!(self, DataError::Hub(error) if error.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_name_file_line_and_field() {
        let error = RowError {
            location: RowLocation::Line {
                file: "data/train.jsonl".into(),
                line: 7,
            },
            field: Some("choices.2".into()),
            message: "expected a string, found 3".into(),
        };
        assert_eq!(
            error.to_string(),
            "data/train.jsonl:7: field `choices.2`: expected a string, found 3"
        );
        let parquet = RowLocation::Parquet {
            file: "x.parquet".into(),
            row_group: 1,
            row: 4,
        };
        assert_eq!(parquet.to_string(), "x.parquet: row group 1, row 4");
    }
}
