//! Content hashes of files, cached by (path, size, mtime) so large inputs are hashed once: the
//! engine's input fingerprints and evaluation's weights hash both go through it.

use crate::content::{ContentHash, HashError, hash_dir_with};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CachedHash {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

/// Content hashes of files, cached by (path, size, mtime) in a JSON file so large inputs are
/// hashed once. Folder hashes are built from cached file hashes in the same format as
/// [`crate::content::hash_path`].
pub struct HashCache {
    file: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, CachedHash>>,
    dirty: Mutex<bool>,
    files_hashed: AtomicUsize,
}

impl HashCache {
    /// A cache stored in `file` (loaded now if it exists; a damaged file starts empty).
    pub fn open(file: &Path) -> Self {
        let entries = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            file: Some(file.to_owned()),
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
            files_hashed: AtomicUsize::new(0),
        }
    }

    /// A cache that lives only in memory.
    pub fn in_memory() -> Self {
        Self {
            file: None,
            entries: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new(false),
            files_hashed: AtomicUsize::new(0),
        }
    }

    /// How many files this cache has read and hashed (misses), since it was opened.
    pub fn files_hashed(&self) -> usize {
        self.files_hashed.load(Ordering::Relaxed)
    }

    /// The content hash of a file or folder.
    pub fn hash(&self, path: &Path) -> Result<ContentHash, HashError> {
        let wrap = |source| HashError {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(wrap)?;
        if !metadata.is_dir() {
            return self.hash_file(path, &metadata);
        }
        hash_dir_with(path, |file| {
            let metadata = std::fs::metadata(file).map_err(|source| HashError {
                path: file.to_owned(),
                source,
            })?;
            self.hash_file(file, &metadata)
        })
    }

    fn hash_file(
        &self,
        path: &Path,
        metadata: &std::fs::Metadata,
    ) -> Result<ContentHash, HashError> {
        let key = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string();
        let size = metadata.len();
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        if let Some(hit) = lock(&self.entries).get(&key)
            && hit.size == size
            && hit.mtime_ns == mtime_ns
        {
            return Ok(ContentHash {
                sha256: hit.sha256.clone(),
                bytes: size,
            });
        }
        let hash = crate::content::hash_file(path)?;
        self.files_hashed.fetch_add(1, Ordering::Relaxed);
        lock(&self.entries).insert(
            key,
            CachedHash {
                size,
                mtime_ns,
                sha256: hash.sha256.clone(),
            },
        );
        *lock(&self.dirty) = true;
        Ok(hash)
    }

    /// Writes the cache file if anything was added (atomically: temp file, then rename).
    pub fn persist(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !std::mem::take(&mut *lock(&self.dirty)) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&*lock(&self.entries)).map_err(std::io::Error::other)?;
        crate::files::write_atomic(file, &bytes, false)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_hashes_match_the_core_hash_and_notice_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m/sub")).unwrap();
        std::fs::write(dir.path().join("m/sub/w.bin"), b"weights").unwrap();
        std::fs::write(dir.path().join("m/config.json"), b"{}").unwrap();
        let cache_file = dir.path().join("cache/hashes.json");
        let cache = HashCache::open(&cache_file);
        let folder = dir.path().join("m");
        let first = cache.hash(&folder).unwrap();
        assert_eq!(first, crate::content::hash_path(&folder).unwrap());
        cache.persist().unwrap();

        let reopened = HashCache::open(&cache_file);
        assert_eq!(reopened.hash(&folder).unwrap(), first);
        // Same size, different bytes and a new mtime: the hash must change.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(dir.path().join("m/sub/w.bin"), b"weightz").unwrap();
        let changed = reopened.hash(&folder).unwrap();
        assert_ne!(changed.sha256, first.sha256);
        assert_eq!(changed, crate::content::hash_path(&folder).unwrap());
    }
}
