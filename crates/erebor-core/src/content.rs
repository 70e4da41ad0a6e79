//! Content hashes of files and folders, used for artifact records and step fingerprints.
//!
//! A file hashes to the SHA-256 of its bytes. A folder hashes to the SHA-256 of its sorted list of
//! `relative/path NUL file-hash NEWLINE` entries, so renaming, adding or changing any file inside
//! changes the folder's hash while the folder's own location and timestamps do not matter.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The content hash and total size of a file or folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentHash {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Total bytes of the file, or of every file in the folder.
    pub bytes: u64,
}

/// An I/O failure while hashing, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash {path}: {source}")]
pub struct HashError {
    /// The file or folder that could not be read.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Hashes a file or, recursively, a folder.
pub fn hash_path(path: &Path) -> Result<ContentHash, HashError> {
    let metadata = std::fs::metadata(path).map_err(|source| HashError {
        path: path.to_owned(),
        source,
    })?;
    if metadata.is_dir() {
        hash_dir(path)
    } else {
        hash_file(path)
    }
}

/// Hashes one file's bytes.
pub fn hash_file(path: &Path) -> Result<ContentHash, HashError> {
    let wrap = |source| HashError {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(wrap)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(wrap)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok(ContentHash {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

fn hash_dir(root: &Path) -> Result<ContentHash, HashError> {
    hash_dir_with(root, hash_file)
}

/// Hashes folder `root` in this module's format, with each file's hash from `hash_file` (which
/// a cache may answer instead of reading the bytes).
pub(crate) fn hash_dir_with(
    root: &Path,
    mut hash_file: impl FnMut(&Path) -> Result<ContentHash, HashError>,
) -> Result<ContentHash, HashError> {
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    for relative in files {
        let file_hash = hash_file(&root.join(&relative))?;
        bytes += file_hash.bytes;
        hasher.update(relative.as_bytes());
        hasher.update([0u8]);
        hasher.update(file_hash.sha256.as_bytes());
        hasher.update(b"\n");
    }
    Ok(ContentHash {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), HashError> {
    let wrap = |source| HashError {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(wrap)? {
        let entry = entry.map_err(wrap)?;
        let path = entry.path();
        let metadata = std::fs::metadata(&path).map_err(|source| HashError {
            path: path.clone(),
            source,
        })?;
        if metadata.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push(relative);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hash_is_the_sha256_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"abc").unwrap();
        let hash = hash_path(&path).unwrap();
        assert_eq!(
            hash.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash.bytes, 3);
    }

    #[test]
    fn folder_hash_changes_with_any_byte_or_name_and_not_with_location() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        for root in [first.path(), second.path()] {
            std::fs::create_dir_all(root.join("sub")).unwrap();
            std::fs::write(root.join("sub/w.bin"), b"weights").unwrap();
            std::fs::write(root.join("config.json"), b"{}").unwrap();
        }
        let a = hash_path(first.path()).unwrap();
        assert_eq!(a, hash_path(second.path()).unwrap());
        assert_eq!(a.bytes, 9);

        std::fs::write(second.path().join("sub/w.bin"), b"weightz").unwrap();
        assert_ne!(a.sha256, hash_path(second.path()).unwrap().sha256);

        std::fs::write(second.path().join("sub/w.bin"), b"weights").unwrap();
        std::fs::rename(
            second.path().join("config.json"),
            second.path().join("c.json"),
        )
        .unwrap();
        assert_ne!(a.sha256, hash_path(second.path()).unwrap().sha256);
    }

    #[test]
    fn missing_path_names_it() {
        let error = hash_path(Path::new("/no/such/file")).unwrap_err();
        assert!(error.to_string().contains("/no/such/file"));
    }
}
