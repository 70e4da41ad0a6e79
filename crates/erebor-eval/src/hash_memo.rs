//! A model's weights hash without rereading unchanged files: each file's sha256 is remembered
//! by its canonical path, size and modification time in `weights_sha256.json` beside the
//! resume cache, so a resumed (or repeated) evaluation of a large model hashes nothing again.
//! A file whose size or mtime changed is hashed anew.

use std::path::Path;

use erebor_core::content::HashError;
use erebor_core::hash_cache::HashCache;

use crate::cache::{model_files, sha256_hex};
use crate::error::{EvalError, Result};

/// The memo file's name in the cache root.
pub(crate) const MEMO_FILE: &str = "weights_sha256.json";

fn io_error(e: HashError) -> EvalError {
    EvalError::Io {
        path: e.path,
        source: e.source,
    }
}

/// The memo in `cache_root`: erebor-core's [`HashCache`] in [`MEMO_FILE`] (empty when absent
/// or unreadable: it is only a cache).
pub(crate) fn open_memo(cache_root: &Path) -> HashCache {
    HashCache::open(&cache_root.join(MEMO_FILE))
}

/// sha256 of a model: of the file itself for a GGUF file; for a folder, of the sorted list of
/// `name NUL sha256 NEWLINE` of its safetensors, GGUF, config and tokenizer files. With a
/// memo, unchanged files are not read again.
pub(crate) fn weights_hash_with(path: &Path, memo: Option<&HashCache>) -> Result<String> {
    let hash = |file: &Path| {
        match memo {
            Some(memo) => memo.hash(file),
            None => erebor_core::content::hash_file(file),
        }
        .map(|h| h.sha256)
        .map_err(io_error)
    };
    if path.is_file() {
        return hash(path);
    }
    let mut listing = String::new();
    for file in model_files(path)? {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        listing.push_str(&format!("{name}\0{}\n", hash(&file)?));
    }
    if listing.is_empty() {
        return Err(EvalError::Task {
            task: path.display().to_string(),
            message: "no weights (safetensors or GGUF) to hash in this folder".into(),
        });
    }
    Ok(sha256_hex(&listing))
}

/// [`weights_hash_with`] through the memo in `cache_root` (saved afterwards), or without one.
pub(crate) fn weights_hash_cached(path: &Path, cache_root: Option<&Path>) -> Result<String> {
    match cache_root {
        Some(root) => {
            let memo = open_memo(root);
            let hash = weights_hash_with(path, Some(&memo))?;
            memo.persist().map_err(|source| EvalError::Io {
                path: root.join(MEMO_FILE),
                source,
            })?;
            Ok(hash)
        }
        None => weights_hash_with(path, None),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn write_with_mtime(path: &Path, bytes: &[u8], mtime: SystemTime) {
        std::fs::write(path, bytes).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn unchanged_files_are_not_hashed_again_and_changed_ones_are() {
        let model = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let weights = model.path().join("model.safetensors");
        write_with_mtime(&weights, b"weights v1", t0);
        write_with_mtime(&model.path().join("config.json"), b"{}", t0);
        let plain = weights_hash_with(model.path(), None).unwrap();

        let memo = open_memo(root.path());
        assert_eq!(weights_hash_with(model.path(), Some(&memo)).unwrap(), plain);
        assert_eq!(memo.files_hashed(), 2);
        memo.persist().unwrap();
        assert!(root.path().join(MEMO_FILE).is_file());

        // A later run (a new memo read from disk) reads no file: proven by changing the bytes
        // behind its back while keeping size and mtime, which the memo cannot see.
        write_with_mtime(&weights, b"weights v2", t0);
        let again = open_memo(root.path());
        assert_eq!(
            weights_hash_with(model.path(), Some(&again)).unwrap(),
            plain
        );
        assert_eq!(again.files_hashed(), 0);

        // A new mtime (as any real rewrite gives) is hashed again, and only that file.
        write_with_mtime(&weights, b"weights v2", t0 + Duration::from_secs(5));
        let third = open_memo(root.path());
        let fresh = weights_hash_with(model.path(), Some(&third)).unwrap();
        assert_eq!(third.files_hashed(), 1);
        assert_ne!(fresh, plain);
        assert_eq!(fresh, weights_hash_with(model.path(), None).unwrap());
        assert_eq!(
            weights_hash_cached(model.path(), Some(root.path())).unwrap(),
            fresh
        );
    }

    #[test]
    fn an_unreadable_memo_is_an_empty_one() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(MEMO_FILE), "not json").unwrap();
        let file = root.path().join("m.gguf");
        std::fs::write(&file, b"gguf").unwrap();
        let memo = open_memo(root.path());
        assert_eq!(
            weights_hash_with(&file, Some(&memo)).unwrap(),
            weights_hash_with(&file, None).unwrap()
        );
        assert_eq!(memo.files_hashed(), 1);
    }
}
