//! Readers of raw rows: JSON lines, JSON arrays, CSV/TSV and Parquet, gzip-compressed text
//! files, globs, and `hf://` URIs (through [`crate::hub`]).
//!
//! Every row comes back as a JSON value with the [`RowLocation`] it was read from, so a mapping
//! that rejects it can name `file:line` (or the Parquet row group and row) and the field.

mod files;
mod parquet;
mod text;

pub(crate) use files::is_glob;
pub use files::{expand_local, open_maybe_gzip};

use crate::error::{DataError, RowLocation};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A file format of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl,
    /// One JSON array of objects (`.json`).
    Json,
    /// Comma-separated values with a header line (`.csv`).
    Csv,
    /// Tab-separated values with a header line (`.tsv`).
    Tsv,
    /// Apache Parquet (`.parquet`), as Hugging Face datasets ship.
    Parquet,
}

impl Format {
    /// The format a file name implies, looking through a `.gz` suffix.
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name
            .strip_suffix(".gz")
            .unwrap_or(name)
            .to_ascii_lowercase();
        let extension = name.rsplit_once('.').map(|(_, ext)| ext)?;
        Some(match extension {
            "jsonl" | "ndjson" => Format::Jsonl,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }
}

/// One row as read, before any mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    /// Where it was read.
    pub location: RowLocation,
    /// Its fields.
    pub value: serde_json::Value,
}

/// A file to read: where its bytes are, and the name to report in errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The local file (for `hf://` sources, the cached download).
    pub path: PathBuf,
    /// The name errors and row ids use: the path as the user wrote it, or the `hf://` URI.
    pub name: String,
}

/// Reads every row of `file` in `format` and hands each to `visit`, in file order.
///
/// A row that is malformed by itself (a bad JSON line, a CSV record with the wrong number of
/// fields) reaches `visit` as an `Err`, so a caller can skip it and go on; `visit` returns an
/// error to stop. A file that cannot be read past the bad place (a broken JSON array, a corrupt
/// Parquet page) ends the read with an error.
pub fn read_file(
    file: &SourceFile,
    format: Format,
    visit: &mut dyn FnMut(Result<RawRow, DataError>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    match format {
        Format::Jsonl => text::read_jsonl(file, visit),
        Format::Json => text::read_json_array(file, visit),
        Format::Csv => text::read_delimited(file, b',', visit),
        Format::Tsv => text::read_delimited(file, b'\t', visit),
        Format::Parquet => parquet::read_parquet(file, visit),
    }
}

/// Reads every row of `file`, failing on the first malformed one.
pub fn read_all(file: &SourceFile, format: Format) -> Result<Vec<RawRow>, DataError> {
    let mut rows = Vec::new();
    read_file(file, format, &mut |row| {
        rows.push(row?);
        Ok(())
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension_through_gzip() {
        assert_eq!(Format::from_name("a/b.jsonl.gz"), Some(Format::Jsonl));
        assert_eq!(Format::from_name("x.JSON"), Some(Format::Json));
        assert_eq!(
            Format::from_name("train-00000-of-00002.parquet"),
            Some(Format::Parquet)
        );
        assert_eq!(Format::from_name("t.tsv"), Some(Format::Tsv));
        assert_eq!(Format::from_name("README"), None);
        assert_eq!(Format::from_name("x.txt"), None);
    }
}
