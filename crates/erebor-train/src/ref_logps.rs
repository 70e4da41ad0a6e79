//! Reference log-probabilities: computed once, before training, and shared.
//!
//! The reference model's summed completion log-probs of every pair are all a preference loss
//! needs from it, so they are computed in one pass before training (the reference model is then
//! dropped: it is never in memory during training) and stored as a `ref_logps` artifact.
//!
//! The artifact is content-addressed by [`RefLogpsKey`]: the reference model's content hash, the
//! dataset's content hash, the splits, the truncation settings, the precision, the device kind,
//! the numerics version and erebor version that computed it, and the identity of the LoRA
//! adapters the pass ran through: an upgrade or another adapter never reuses stale numbers (with
//! DPOP's λ = 50 a drift of 1e-3 nats is a visible penalty). It lives in the shared cache folder, `<cache_dir>/ref_logps/<key-hash>.json`, and is
//! built under an exclusive file lock (`<key-hash>.lock`): when the arms of a DPO-vs-DPOP fan-out
//! start together, one computes while the others wait on the lock, then all read the same file.
//! A later run with the same model and data reuses it. Each step also copies it into its own work
//! folder, so the run's record does not depend on the cache being kept.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Version of the file layout; a file of another version is recomputed.
pub(crate) const REF_LOGPS_FORMAT_VERSION: u32 = 1;

/// Version of the numerics behind the values: bump it with any change that can move a
/// reference log-prob (the model's forward, log-prob reduction, casts, truncation), so cached
/// values from before the change are recomputed.
pub(crate) const REF_LOGPS_NUMERICS_VERSION: u32 = 2;

/// Everything the reference log-probs depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefLogpsKey {
    /// Content hash of the reference model folder.
    pub reference_sha256: String,
    /// Content hash of the dataset folder.
    pub dataset_sha256: String,
    /// The splits scored, in order.
    pub splits: Vec<String>,
    /// Sequence length limit applied before scoring.
    pub max_seq_len: usize,
    /// Prompt length limit applied before scoring.
    pub max_prompt_len: usize,
    /// Precision policy of the forward pass (the policy's).
    pub precision: String,
    /// Device kind (`cpu`, `tch-cpu`, `cuda`): kernels differ between backends.
    pub device_kind: String,
    /// [`REF_LOGPS_NUMERICS_VERSION`] of the computing erebor.
    #[serde(default)]
    pub numerics_version: u32,
    /// Version of the computing erebor-train.
    #[serde(default)]
    pub erebor_version: String,
    /// The LoRA adapters the pass ran through ([`fresh_lora_identity`]), `None` without.
    #[serde(default)]
    pub adapter: Option<String>,
}

/// The erebor-train version recorded in [`RefLogpsKey::erebor_version`].
pub(crate) const EREBOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Identity of the fresh LoRA adapters a step attaches from `lora` and `seed`: a digest of both,
/// for [`RefLogpsKey::adapter`].
pub(crate) fn fresh_lora_identity(lora: &crate::config::LoraSettings, seed: u64) -> String {
    let json =
        serde_json::to_vec(&serde_json::json!({"lora": lora, "seed": seed})).unwrap_or_default();
    format!("fresh-lora:{}", hex::encode(&Sha256::digest(&json)[..16]))
}

impl RefLogpsKey {
    /// Short hex digest naming the cache file.
    pub(crate) fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..12])
    }
}

/// The reference log-probs of one pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefLogpsRow {
    /// The pair's row id in the dataset.
    pub id: String,
    /// Summed log-prob of the chosen completion.
    pub chosen: f32,
    /// Summed log-prob of the rejected completion.
    pub rejected: f32,
}

/// A `ref_logps` artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefLogps {
    /// [`REF_LOGPS_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// What the values depend on.
    pub key: RefLogpsKey,
    /// Split name to rows, in dataset order.
    pub splits: BTreeMap<String, Vec<RefLogpsRow>>,
}

impl RefLogps {
    /// The rows of `split`, checked against the dataset's row ids.
    pub(crate) fn rows_for(
        &self,
        split: &str,
        ids: &[&str],
        path: &Path,
    ) -> Result<&[RefLogpsRow], TrainError> {
        let bad = |message: String| TrainError::Checkpoint {
            path: path.to_owned(),
            message,
        };
        let rows = self
            .splits
            .get(split)
            .ok_or_else(|| bad(format!("no reference log-probs for split `{split}`")))?;
        if rows.len() != ids.len() {
            return Err(bad(format!(
                "{} rows for split `{split}`, the dataset has {}",
                rows.len(),
                ids.len()
            )));
        }
        if let Some((index, (row, id))) = rows
            .iter()
            .zip(ids)
            .enumerate()
            .find(|(_, (row, id))| row.id != **id)
        {
            return Err(bad(format!(
                "row {index} is `{}`, the dataset's is `{id}`",
                row.id
            )));
        }
        Ok(rows)
    }

    /// Reads an artifact.
    pub(crate) fn read(path: &Path) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
            path: path.to_owned(),
            message: format!("not a ref_logps file: {e}"),
        })
    }

    /// Writes the artifact atomically (temporary file, sync, rename).
    pub(crate) fn write(&self, path: &Path) -> Result<(), TrainError> {
        let bytes = serde_json::to_vec(self).map_err(|e| TrainError::Checkpoint {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        erebor_core::files::write_atomic(path, &bytes, true).map_err(|e| TrainError::io(path, e))
    }
}

/// Where a cached artifact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    /// This call computed it.
    Computed,
    /// Another step (or an earlier run) had computed it.
    Reused,
}

/// The artifact for `key` from the cache under `cache_dir`, computing it with `compute` under
/// an exclusive lock when it is missing. Returns it, its cache path, and where it came from.
pub(crate) fn cached_ref_logps(
    cache_dir: &Path,
    key: &RefLogpsKey,
    compute: impl FnOnce() -> Result<RefLogps, TrainError>,
) -> Result<(RefLogps, PathBuf, CacheOutcome), TrainError> {
    let dir = cache_dir.join("ref_logps");
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    let digest = key.digest();
    let path = dir.join(format!("{digest}.json"));
    let lock_path = dir.join(format!("{digest}.lock"));
    let lock = File::create(&lock_path).map_err(|e| TrainError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(
                lock = %lock_path.display(),
                "another step is computing these reference log-probs; waiting for it"
            );
            lock.lock().map_err(|e| TrainError::io(&lock_path, e))?;
        }
        Err(TryLockError::Error(e)) => return Err(TrainError::io(&lock_path, e)),
    }
    // The lock is released when `lock` is dropped, on every path out of this function.
    if path.exists() {
        match RefLogps::read(&path) {
            Ok(found) if found.format_version == REF_LOGPS_FORMAT_VERSION && found.key == *key => {
                return Ok((found, path, CacheOutcome::Reused));
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "stale ref_logps cache entry; recomputing");
            }
            Err(error) => tracing::warn!(%error, "unreadable ref_logps cache entry; recomputing"),
        }
    }
    let computed = compute()?;
    computed.write(&path)?;
    drop(lock);
    Ok((computed, path, CacheOutcome::Computed))
}

#[cfg(test)]
#[path = "ref_logps_tests.rs"]
mod tests;
