//! Readers of raw rows: JSON lines, JSON arrays, CSV/TSV and Parquet, gzip-compressed text
//! files, globs, and `hf://` URIs (through [`crate::hub`]).
//!
//! Every row comes back as a JSON value with the [`RowLocation`](crate::error::RowLocation) it
//! was read from, so a mapping that rejects it can name `file:line` (or the Parquet row group
//! and row) and the field.
//!
//! `format` tells a file's [`Format`] from its name; `rows` reads a file's rows.

mod files;
mod format;
mod parquet;
mod rows;
mod text;

pub use files::expand_local;
pub(crate) use files::is_glob;
pub(crate) use files::open_maybe_gzip;
pub use format::Format;
pub use rows::{RawRow, SourceFile, read_all, read_file};
