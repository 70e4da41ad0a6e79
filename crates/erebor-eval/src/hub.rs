//! Task data from the Hugging Face Hub: `hf://datasets/OWNER/NAME[@REV][/PATH]` wherever a
//! data folder or file is named (`--data-dir`, the step's `data_dir:`, `--gsm8k-exemplars`,
//! a custom task's `dataset: {path}` / `data_files` / `dataset_path`), resolved through
//! erebor-data's Hub reader ([`erebor_data::hub::HubClient`]).
//!
//! A reference resolves first from the Hub cache's layout under
//! [`crate::TaskOptions::hub_cache`] (`hf/datasets/OWNER/NAME/REV/PATH`): files a `convert`
//! step or an earlier evaluation downloaded, or a mirror copied into that layout; nothing is
//! fetched then. Only what is missing there is downloaded (`HF_ENDPOINT`, `HF_TOKEN`), once.
//! A folder reference means its `*.jsonl` files (not recursive); a reference ending in
//! `.jsonl` one file.

use std::path::{Path, PathBuf};

use erebor_data::hub::{HubClient, HubError, HubFile};

use crate::error::{EvalError, Result};

/// The scheme of a Hub reference.
pub(crate) const HUB_PREFIX: &str = "hf://";

/// Whether `path` is an `hf://` reference rather than a local path.
pub(crate) fn is_hub(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with(HUB_PREFIX))
}

/// The local path of `path`: itself when local, else the folder (a reference not ending in
/// `.jsonl`) or file the Hub reference resolves to in `cache`.
pub fn local_path(path: &Path, cache: &Path) -> Result<PathBuf> {
    let Some(uri) = path.to_str().filter(|p| p.starts_with(HUB_PREFIX)) else {
        return Ok(path.to_path_buf());
    };
    if crate::data::has_extension(uri, &["jsonl"]) {
        resolve_file(uri, cache)
    } else {
        resolve_folder(uri, cache)
    }
}

/// The local copy of one file `hf://datasets/OWNER/NAME[@REV]/PATH.jsonl`.
pub(crate) fn resolve_file(uri: &str, cache: &Path) -> Result<PathBuf> {
    let files = resolve(uri, cache)?;
    match files.as_slice() {
        [one] => Ok(one.local_path.clone()),
        _ => Err(hub_error(
            uri,
            format!("names {} files, expected one", files.len()),
        )),
    }
}

/// The local folder holding the `*.jsonl` files of `hf://datasets/OWNER/NAME[@REV][/DIR]`.
pub(crate) fn resolve_folder(uri: &str, cache: &Path) -> Result<PathBuf> {
    let glob = format!("{}/*.jsonl", uri.trim_end_matches('/'));
    let files = resolve(&glob, cache)?;
    let folder = files
        .first()
        .and_then(|f| f.local_path.parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| hub_error(uri, "has no .jsonl files".into()))?;
    tracing::info!(%uri, folder = %folder.display(), files = files.len(), "task data from the Hub");
    Ok(folder)
}

/// The files of `uri`: from the cache's layout when any are there, else downloaded.
fn resolve(uri: &str, cache: &Path) -> Result<Vec<HubFile>> {
    let client = HubClient::from_env(cache);
    let mirrored = client.mirrored(uri).map_err(|e| from_hub(uri, &e, cache))?;
    if !mirrored.is_empty() {
        return Ok(mirrored);
    }
    tracing::info!(%uri, cache = %cache.display(), "not in the Hub cache; downloading");
    client.fetch(uri).map_err(|e| from_hub(uri, &e, cache))
}

fn from_hub(uri: &str, error: &HubError, cache: &Path) -> EvalError {
    EvalError::Hub {
        uri: uri.to_owned(),
        transient: error.is_transient(),
        message: format!(
            "{error} (looked first under {})",
            cache.join("hf/datasets").display()
        ),
    }
}

fn hub_error(uri: &str, message: String) -> EvalError {
    EvalError::Hub {
        uri: uri.to_owned(),
        message,
        transient: false,
    }
}
