//! Local paths: glob expansion and transparent gzip.

use crate::error::DataError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Whether a path pattern has glob syntax in it.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Expands a local path or glob (`data/train-*.jsonl.gz`, `shards/**/*.parquet`) relative to
/// `base_dir` into the files it names, sorted by path so the row order is reproducible.
///
/// A plain path must exist; a glob must match at least one file.
pub fn expand_local(pattern: &str, base_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let resolved = erebor_core::kind::resolve_path(base_dir, pattern);
    if !is_glob(pattern) {
        if !resolved.is_file() {
            return Err(DataError::Pattern {
                pattern: resolved.display().to_string(),
                message: "no such file".into(),
            });
        }
        return Ok(vec![resolved]);
    }
    let text = resolved.to_string_lossy().into_owned();
    let entries = glob::glob(&text).map_err(|error| DataError::Pattern {
        pattern: text.clone(),
        message: format!("invalid glob: {error}"),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|error| {
            let path = error.path().to_owned();
            DataError::io(path, error.into())
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::Pattern {
            pattern: text,
            message: "the glob matches no file".into(),
        });
    }
    Ok(files)
}

/// Opens a file for buffered reading, decompressing it when its name ends in `.gz`.
pub(crate) fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let file = File::open(path).map_err(|source| DataError::io(path, source))?;
    let gzip = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gz"));
    Ok(if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_expand_sorted_and_missing_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b-2.jsonl", "b-1.jsonl", "c.csv"] {
            std::fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        let files = expand_local("b-*.jsonl", dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|path| path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["b-1.jsonl", "b-2.jsonl"]);

        let error = expand_local("nothing-*.jsonl", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("nothing-*.jsonl: the glob matches no file"),
            "{error}"
        );
        let error = expand_local("missing.jsonl", dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing.jsonl: no such file"), "{error}");
    }
}
