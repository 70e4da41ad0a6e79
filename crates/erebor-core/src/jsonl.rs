//! JSON-lines files: one value per line, errors naming the file and line.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A JSON-lines read or write failure.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line is not valid JSON of the expected shape.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What serde said, with the column.
        message: String,
    },
}

/// Reads every non-blank line of `path` as a `T`.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JsonlError> {
    let mut rows = Vec::new();
    for_each_jsonl(path, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Streams the rows of `path` to `visit`, stopping at the first error.
pub(crate) fn for_each_jsonl<T: DeserializeOwned>(
    path: &Path,
    mut visit: impl FnMut(T) -> Result<(), JsonlError>,
) -> Result<(), JsonlError> {
    let io_error = |source| JsonlError::Io {
        path: path.to_owned(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_error)?);
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|error| JsonlError::Parse {
            path: path.to_owned(),
            line: index + 1,
            message: error.to_string(),
        })?;
        visit(row)?;
    }
    Ok(())
}

/// Writes rows to a JSON-lines file, one per line.
pub struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
    rows: u64,
}

impl JsonlWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, JsonlError> {
        let file = File::create(path).map_err(|source| JsonlError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
            rows: 0,
        })
    }

    /// Appends one row.
    pub fn write<T: Serialize>(&mut self, row: &T) -> Result<(), JsonlError> {
        let io_error = |source| JsonlError::Io {
            path: self.path.clone(),
            source,
        };
        serde_json::to_writer(&mut self.out, row)
            .map_err(|error| io_error(io::Error::other(error)))?;
        self.out.write_all(b"\n").map_err(io_error)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and syncs the file to disk; returns the number of rows.
    pub fn finish(mut self) -> Result<u64, JsonlError> {
        let io_error = |source| JsonlError::Io {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io_error)?;
        self.out.get_ref().sync_all().map_err(io_error)?;
        Ok(self.rows)
    }
}

/// Writes every row of `rows` to `path`.
pub fn write_jsonl<'a, T: Serialize + 'a>(
    path: &Path,
    rows: impl IntoIterator<Item = &'a T>,
) -> Result<u64, JsonlError> {
    let mut writer = JsonlWriter::create(path)?;
    for row in rows {
        writer.write(row)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: u32,
        text: String,
    }

    #[test]
    fn rows_round_trip_and_blank_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let rows = vec![
            Row {
                id: 1,
                text: "a".into(),
            },
            Row {
                id: 2,
                text: "b\nc".into(),
            },
        ];
        assert_eq!(write_jsonl(&path, &rows).unwrap(), 2);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("\n\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(read_jsonl::<Row>(&path).unwrap(), rows);
    }

    #[test]
    fn a_bad_row_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        std::fs::write(
            &path,
            "{\"id\":1,\"text\":\"a\"}\n{\"id\":\"x\",\"text\":\"b\"}\n",
        )
        .unwrap();
        let error = read_jsonl::<Row>(&path).unwrap_err().to_string();
        assert!(error.contains("rows.jsonl:2:"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }
}
