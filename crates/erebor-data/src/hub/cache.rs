//! The download cache: resolved file lists per URI, `.sha256` files, atomic writes.

use super::{HubClient, HubError, HubFile, HubUri};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub(super) fn resolved_list_path(client: &HubClient, uri: &HubUri) -> PathBuf {
    let key = hex::encode(Sha256::digest(
        format!("{}\n{}", client.endpoint, uri.original).as_bytes(),
    ));
    client
        .cache_dir
        .join("hf/resolved")
        .join(format!("{}.json", &key[..32]))
}

/// The cached file list of a URI, when every file in it is still there with its size.
pub(super) fn read_resolved(path: &Path) -> Option<Vec<HubFile>> {
    let files: Vec<HubFile> = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let intact = files
        .iter()
        .all(|file| std::fs::metadata(&file.local_path).is_ok_and(|meta| meta.len() == file.bytes));
    intact.then_some(files)
}

/// `path` with `suffix` appended to its file name (`a.parquet` → `a.parquet.sha256`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    erebor_core::files::write_atomic(path, bytes, false).map_err(|source| HubError::Cache {
        path: path.to_owned(),
        source,
    })
}
