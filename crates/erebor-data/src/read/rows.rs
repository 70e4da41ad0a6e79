//! [`RawRow`]s of a [`SourceFile`]: every row handed over in file order, each with the place it
//! was read from.

use super::format::Format;
use super::{parquet, text};
use crate::error::{DataError, RowLocation};
use std::path::PathBuf;

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
