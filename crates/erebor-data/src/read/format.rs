//! [`Format`]: the file formats rows are read from, told by the file name.

use serde::{Deserialize, Serialize};

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
