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

/// The files of `uri` present under the cache's layout (see [`HubClient::mirrored`]).
pub(super) fn mirrored(client: &HubClient, uri: &HubUri) -> Result<Vec<HubFile>, HubError> {
    let root = client
        .cache_dir
        .join("hf/datasets")
        .join(&uri.owner)
        .join(&uri.name)
        .join(uri.revision_in_url());
    let pattern = format!(
        "{}/{}",
        glob::Pattern::escape(&root.to_string_lossy()),
        uri.path
    );
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let bad_glob = |message: String| HubError::BadUri {
        uri: uri.original.clone(),
        message,
    };
    let paths = glob::glob_with(&pattern, options)
        .map_err(|error| bad_glob(format!("invalid glob: {error}")))?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|error| HubError::Cache {
            path: error.path().to_owned(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let name = path.to_string_lossy();
        if !path.is_file() || name.ends_with(".sha256") || name.ends_with(".part") {
            continue;
        }
        files.push(mirrored_file(uri, &root, path)?);
    }
    files.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(files)
}

fn mirrored_file(uri: &HubUri, root: &Path, path: PathBuf) -> Result<HubFile, HubError> {
    let io = |source| HubError::Cache {
        path: path.clone(),
        source,
    };
    let bytes = std::fs::read(&path).map_err(io)?;
    let sha256 = std::fs::read_to_string(with_suffix(&path, ".sha256")).map_or_else(
        |_| hex::encode(Sha256::digest(&bytes)),
        |text| text.trim().to_owned(),
    );
    let relative = path.strip_prefix(root).unwrap_or(&path);
    let relative = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    Ok(HubFile {
        uri: uri.file_uri(&relative),
        bytes: bytes.len() as u64,
        sha256,
        local_path: path,
    })
}
