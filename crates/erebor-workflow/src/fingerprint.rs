//! Step fingerprints: the hash of everything that decides a step's result, so a finished result
//! with the same fingerprint can be reused.
//!
//! A fingerprint covers the step kind, the kind's own code version (not the erebor version: a
//! rebuild keeps a 10-hour SFT), the resolved config (output references and secrets as their
//! templates), the content hash of every file or folder the config names, and the fingerprints
//! of the upstream steps. File hashes come from the [`HashCache`].

use crate::workflow::PlannedStep;
use erebor_core::StepKind;
use erebor_core::content::HashError;
use erebor_core::hash_cache::HashCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// What goes into a fingerprint, kept with the step so a later plan can say what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintInputs {
    /// The step kind.
    pub kind: String,
    /// The kind's code version.
    pub code_version: u32,
    /// The resolved config, canonical JSON.
    pub config: String,
    /// Input path (relative to the workflow folder when inside it) to content hash.
    pub inputs: BTreeMap<String, String>,
    /// Upstream step id to its fingerprint.
    pub upstream: BTreeMap<String, String>,
}

/// A step's fingerprint and what it was made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Hex SHA-256.
    pub hash: String,
    /// The parts.
    pub inputs: FingerprintInputs,
}

impl FingerprintInputs {
    /// Hashes the parts.
    pub fn fingerprint(self) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(b"erebor-step-fingerprint-v1\0");
        hasher.update(self.kind.as_bytes());
        hasher.update([0]);
        hasher.update(self.code_version.to_le_bytes());
        hasher.update(self.config.as_bytes());
        hasher.update([0]);
        for (path, hash) in &self.inputs {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(hash.as_bytes());
            hasher.update([0]);
        }
        hasher.update([1]);
        for (step, hash) in &self.upstream {
            hasher.update(step.as_bytes());
            hasher.update([0]);
            hasher.update(hash.as_bytes());
            hasher.update([0]);
        }
        Fingerprint {
            hash: hex::encode(hasher.finalize()),
            inputs: self,
        }
    }

    /// Why `self` differs from `old`, one reason per line; empty when equal.
    pub fn differences(&self, old: &FingerprintInputs) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.kind != old.kind {
            reasons.push(format!(
                "step kind changed from `{}` to `{}`",
                old.kind, self.kind
            ));
        } else if self.code_version != old.code_version {
            reasons.push(format!(
                "`{}` code version changed from {} to {}",
                self.kind, old.code_version, self.code_version
            ));
        }
        if self.config != old.config {
            reasons.push(config_difference(&old.config, &self.config));
        }
        for (path, hash) in &self.inputs {
            match old.inputs.get(path) {
                None => reasons.push(format!("new input {path}")),
                Some(old_hash) if old_hash != hash => reasons.push(format!(
                    "input {path} changed (sha256 {} → {})",
                    short(old_hash),
                    short(hash)
                )),
                Some(_) => {}
            }
        }
        for path in old.inputs.keys().filter(|p| !self.inputs.contains_key(*p)) {
            reasons.push(format!("input {path} is no longer used"));
        }
        for (step, hash) in &self.upstream {
            match old.upstream.get(step) {
                Some(old_hash) if old_hash == hash => {}
                Some(_) => reasons.push(format!("upstream step `{step}` changed")),
                None => reasons.push(format!("new upstream step `{step}`")),
            }
        }
        reasons
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn config_difference(old: &str, new: &str) -> String {
    let (Ok(old), Ok(new)) = (
        serde_json::from_str::<serde_json::Value>(old),
        serde_json::from_str::<serde_json::Value>(new),
    ) else {
        return "config changed".to_owned();
    };
    let mut paths = Vec::new();
    diff_paths("with", &old, &new, &mut paths);
    if paths.is_empty() {
        "config changed".to_owned()
    } else {
        format!("config changed: {}", paths.join(", "))
    }
}

fn diff_paths(
    prefix: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    match (old, new) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = format!("{prefix}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_paths(&path, x, y, out),
                    _ => out.push(path),
                }
            }
        }
        (x, y) if x != y => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// JSON with object keys sorted, so equal configs hash equally whatever their key order.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sort(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<&String, serde_json::Value> =
                    map.iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sort).collect())
            }
            other => other.clone(),
        }
    }
    let mut out = String::new();
    write_canonical(&sort(value), &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Computes a step's fingerprint from its kind, config, input files and upstream fingerprints.
pub fn compute(
    step: &PlannedStep,
    kind: &dyn StepKind,
    base_dir: &Path,
    upstream: &BTreeMap<String, String>,
    cache: &HashCache,
) -> Result<Fingerprint, HashError> {
    let mut inputs = BTreeMap::new();
    for path in kind.input_paths(&step.with, base_dir) {
        let hash = cache.hash(&path)?;
        let shown = path
            .strip_prefix(base_dir)
            .map_or_else(|_| path.clone(), Path::to_path_buf);
        inputs.insert(shown.display().to_string(), hash.sha256);
    }
    let upstream = step
        .needs
        .iter()
        .filter_map(|need| {
            upstream
                .get(need.as_str())
                .map(|h| (need.to_string(), h.clone()))
        })
        .collect();
    Ok(FingerprintInputs {
        kind: step.kind.clone(),
        code_version: kind.info().code_version,
        config: canonical_json(&step.with),
        inputs,
        upstream,
    }
    .fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [1, 2], "c": null}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"c":null,"d":[1,2]},"b":1}"#);
    }

    #[test]
    fn differences_name_what_changed() {
        let old = FingerprintInputs {
            kind: "sft".into(),
            code_version: 1,
            config: r#"{"lr":0.001,"data":"d.jsonl"}"#.into(),
            inputs: BTreeMap::from([("d.jsonl".into(), "aaaaaaaaaaaaaaaa".into())]),
            upstream: BTreeMap::from([("convert".into(), "f1".into())]),
        };
        let mut new = old.clone();
        new.config = r#"{"lr":0.002,"data":"d.jsonl"}"#.into();
        new.inputs
            .insert("d.jsonl".into(), "bbbbbbbbbbbbbbbb".into());
        new.upstream.insert("convert".into(), "f2".into());
        assert_eq!(
            new.differences(&old),
            vec![
                "config changed: with.lr".to_owned(),
                "input d.jsonl changed (sha256 aaaaaaaaaaaa → bbbbbbbbbbbb)".to_owned(),
                "upstream step `convert` changed".to_owned(),
            ]
        );
        assert_ne!(
            new.clone().fingerprint().hash,
            old.clone().fingerprint().hash
        );
        assert!(old.differences(&old).is_empty());
    }
}
