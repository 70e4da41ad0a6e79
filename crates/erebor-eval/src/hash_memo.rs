//! A model's weights hash without rereading unchanged files: each file's sha256 is remembered
//! by its canonical path, size and modification time in `weights_sha256.json` beside the
//! resume cache, so a resumed (or repeated) evaluation of a large model hashes nothing again.
//! A file whose size or mtime changed is hashed anew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::cache::{model_files, sha256_hex};
use crate::error::{EvalError, Result};

/// The memo file's name in the cache root.
pub const MEMO_FILE: &str = "weights_sha256.json";

/// What identifies a file's content without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    sha256: String,
}

/// Remembered file hashes, read from and written back to one JSON file.
#[derive(Debug)]
pub struct HashMemo {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    changed: bool,
    /// Files actually read and hashed through this memo.
    pub files_hashed: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_owned(),
        source,
    }
}

fn stamp(file: &Path) -> Result<Stamp> {
    let meta = std::fs::metadata(file).map_err(io(file))?;
    let mtime = meta.modified().map_err(io(file))?;
    Ok(Stamp {
        size: meta.len(),
        mtime_ns: mtime
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    })
}

impl HashMemo {
    /// The memo in `cache_root` (empty when absent or unreadable: it is only a cache).
    pub fn open(cache_root: &Path) -> Self {
        let path = cache_root.join(MEMO_FILE);
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        HashMemo {
            path,
            entries,
            changed: false,
            files_hashed: 0,
        }
    }

    /// sha256 of `file`, remembered when its size and mtime are unchanged.
    pub fn file_sha256(&mut self, file: &Path) -> Result<String> {
        let key = std::fs::canonicalize(file)
            .map_err(io(file))?
            .display()
            .to_string();
        let now = stamp(file)?;
        if let Some(entry) = self.entries.get(&key)
            && entry.stamp == now
        {
            return Ok(entry.sha256.clone());
        }
        let sha256 = erebor_core::content::hash_file(file)
            .map(|h| h.sha256)
            .map_err(|e| EvalError::Io {
                path: e.path,
                source: e.source,
            })?;
        self.files_hashed += 1;
        // The stamp from before reading: a file changed while hashed is hashed again next time.
        self.entries.insert(
            key,
            Entry {
                stamp: now,
                sha256: sha256.clone(),
            },
        );
        self.changed = true;
        Ok(sha256)
    }

    /// Writes the memo back if anything was added (atomically: a temporary file renamed).
    pub fn save(&mut self) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let text = serde_json::to_string_pretty(&self.entries).expect("hash memo serialises");
        let tmp = self
            .path
            .with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        self.changed = false;
        Ok(())
    }
}

/// sha256 of a model: of the file itself for a GGUF file; for a folder, of the sorted list of
/// `name NUL sha256 NEWLINE` of its safetensors, GGUF, config and tokenizer files. With a
/// memo, unchanged files are not read again.
pub fn weights_hash_with(path: &Path, mut memo: Option<&mut HashMemo>) -> Result<String> {
    let mut hash = |file: &Path| match memo.as_deref_mut() {
        Some(memo) => memo.file_sha256(file),
        None => erebor_core::content::hash_file(file)
            .map(|h| h.sha256)
            .map_err(|e| EvalError::Io {
                path: e.path,
                source: e.source,
            }),
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
pub fn weights_hash_cached(path: &Path, cache_root: Option<&Path>) -> Result<String> {
    match cache_root {
        Some(root) => {
            let mut memo = HashMemo::open(root);
            let hash = weights_hash_with(path, Some(&mut memo))?;
            memo.save()?;
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

        let mut memo = HashMemo::open(root.path());
        assert_eq!(
            weights_hash_with(model.path(), Some(&mut memo)).unwrap(),
            plain
        );
        assert_eq!(memo.files_hashed, 2);
        memo.save().unwrap();
        assert!(root.path().join(MEMO_FILE).is_file());

        // A later run (a new memo read from disk) reads no file: proven by changing the bytes
        // behind its back while keeping size and mtime, which the memo cannot see.
        write_with_mtime(&weights, b"weights v2", t0);
        let mut again = HashMemo::open(root.path());
        assert_eq!(
            weights_hash_with(model.path(), Some(&mut again)).unwrap(),
            plain
        );
        assert_eq!(again.files_hashed, 0);

        // A new mtime (as any real rewrite gives) is hashed again, and only that file.
        write_with_mtime(&weights, b"weights v2", t0 + Duration::from_secs(5));
        let mut third = HashMemo::open(root.path());
        let fresh = weights_hash_with(model.path(), Some(&mut third)).unwrap();
        assert_eq!(third.files_hashed, 1);
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
        let mut memo = HashMemo::open(root.path());
        assert_eq!(
            memo.file_sha256(&file).unwrap(),
            weights_hash_with(&file, None).unwrap()
        );
        assert_eq!(memo.files_hashed, 1);
    }
}
