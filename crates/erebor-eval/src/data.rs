//! Task data files: JSONL rows with their line numbers, sha256 of the bytes, and field access
//! whose errors name `file:line` and the field.
//!
//! A data directory is laid out like `../shared/data/leaderboard`: one `<name>_<split>.jsonl`
//! per split (`arc_easy_test.jsonl`, `hellaswag_validation.jsonl`, `mmlu_dev.jsonl`, …).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::output::pyjson::PyValue;
use crate::task::DataFile;

/// One row of a JSONL file.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 0-based index among the file's rows (lm-eval's `doc_id` for an evaluation split).
    pub index: usize,
    /// 1-based line number, for errors.
    pub line: usize,
    /// The row's object.
    pub value: Value,
    /// The same object with its keys in the order written, as Python's `json.loads` reads it
    /// (samples files write it back and hash it as lm-eval does).
    pub ordered: PyValue,
}

/// A JSONL file read whole.
#[derive(Clone, Debug)]
pub(crate) struct JsonlFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Its rows in file order; blank lines are skipped (they keep their line numbers).
    pub rows: Vec<Row>,
}

impl JsonlFile {
    /// Reads and parses `path`; every row must be a JSON object.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let text = String::from_utf8(bytes).map_err(|error| EvalError::Data {
            path: path.to_path_buf(),
            line: 1 + count_lines_before(error.as_bytes(), error.utf8_error().valid_up_to()),
            message: "not valid UTF-8".into(),
        })?;
        let mut rows = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line).map_err(|error| EvalError::Data {
                path: path.to_path_buf(),
                line: number + 1,
                message: format!("invalid JSON: {error}"),
            })?;
            if !value.is_object() {
                return Err(EvalError::Data {
                    path: path.to_path_buf(),
                    line: number + 1,
                    message: "expected a JSON object".into(),
                });
            }
            let ordered = PyValue::parse(line).map_err(|error| EvalError::Data {
                path: path.to_path_buf(),
                line: number + 1,
                message: format!("invalid JSON: {error}"),
            })?;
            rows.push(Row {
                index: rows.len(),
                line: number + 1,
                value,
                ordered,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            sha256,
            rows,
        })
    }

    /// The record of this file for results, serving `split`.
    pub(crate) fn data_file(&self, split: &str) -> DataFile {
        DataFile {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            split: split.to_string(),
        }
    }

    /// Field access for row `row` of this file.
    pub(crate) fn fields<'a>(&'a self, row: &'a Row) -> Fields<'a> {
        Fields {
            path: &self.path,
            row,
        }
    }
}

// Counted once, for an error message: not worth the `bytecount` crate.
#[allow(clippy::naive_bytecount)]
fn count_lines_before(bytes: &[u8], end: usize) -> usize {
    bytes[..end].iter().filter(|&&b| b == b'\n').count()
}

/// Whether the file name or path `name` ends in `.EXT` for one of `extensions` (compared
/// exactly: `.YAML` is not `.yaml`).
pub(crate) fn has_extension(name: &str, extensions: &[&str]) -> bool {
    Path::new(name)
        .extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extensions.contains(&extension))
}

/// `<dir>/<name>_<split>.jsonl`.
pub(crate) fn split_path(dir: &Path, name: &str, split: &str) -> PathBuf {
    dir.join(format!("{name}_{split}.jsonl"))
}

/// Reads the first of `candidates` that exists; the error lists them all.
pub(crate) fn read_first_existing(task: &str, candidates: &[PathBuf]) -> Result<JsonlFile> {
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => JsonlFile::read(path),
        None => Err(EvalError::Task {
            task: task.to_string(),
            message: format!(
                "no data file: looked for {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Typed access to one row's fields; errors read `path:line: missing field X`.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    path: &'a Path,
    row: &'a Row,
}

impl<'a> Fields<'a> {
    /// A data error at this row.
    pub fn error(&self, message: impl Into<String>) -> EvalError {
        EvalError::Data {
            path: self.path.to_path_buf(),
            line: self.row.line,
            message: message.into(),
        }
    }

    /// The row's object.
    ///
    /// # Panics
    /// When the row is not an object, which `JsonlFile::read` never returns.
    pub fn object(&self) -> &'a Map<String, Value> {
        self.row.value.as_object().expect("rows are objects")
    }

    /// Whether the row has `name` (and it is not null).
    pub fn has(&self, name: &str) -> bool {
        self.object().get(name).is_some_and(|v| !v.is_null())
    }

    /// The field `name`, present and not null.
    pub fn value(&self, name: &str) -> Result<&'a Value> {
        match self.object().get(name) {
            Some(Value::Null) | None => Err(self.error(format!("missing field `{name}`"))),
            Some(value) => Ok(value),
        }
    }

    /// A string field.
    pub fn str(&self, name: &str) -> Result<&'a str> {
        self.value(name)?
            .as_str()
            .ok_or_else(|| self.error(format!("field `{name}` is not a string")))
    }

    /// A non-negative integer field; a string of digits is accepted too (`"3"`).
    pub fn index(&self, name: &str) -> Result<usize> {
        let value = self.value(name)?;
        let parsed = match value {
            Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.error(format!(
                "field `{name}` is not a non-negative integer: {value}"
            ))
        })
    }

    /// A list of strings.
    pub fn str_list(&self, name: &str) -> Result<Vec<String>> {
        string_list(self.value(name)?)
            .ok_or_else(|| self.error(format!("field `{name}` is not a list of strings")))
    }

    /// A nested object field.
    pub fn nested(&self, name: &str) -> Result<&'a Map<String, Value>> {
        self.value(name)?
            .as_object()
            .ok_or_else(|| self.error(format!("field `{name}` is not an object")))
    }
}

/// A JSON list of strings, or `None`.
pub fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_string))
        .collect()
}
