//! `hf://models/OWNER/NAME[@REVISION]`: a Hugging Face model repository named where a step takes
//! a model folder (`model:`, `reference:`), resolved from a local mirror so that recipes naming
//! published checkpoints run offline.
//!
//! The mirror is the folder in [`MIRROR_ENV`] (`EREBOR_HF_MODELS`), laid out as
//! `huggingface-cli download OWNER/NAME --local-dir MIRROR/OWNER/NAME` leaves it:
//!
//! ```text
//! $EREBOR_HF_MODELS/OWNER/NAME/           hf://models/OWNER/NAME
//! $EREBOR_HF_MODELS/OWNER/NAME@REVISION/  hf://models/OWNER/NAME@REVISION (a pinned copy)
//! ```
//!
//! erebor never downloads model weights itself (a 72B checkpoint is 145 GB: fetching it is a
//! decision, not a side effect of `erebor run`); a reference that is not in the mirror is a
//! [`ModelRefError`] naming the reference, the folder looked at and the command that fills it.
//! Anything that does not start with `hf://models/` is a local path, resolved against the
//! workflow's folder as before.

use crate::kind::resolve_path;
use std::path::{Path, PathBuf};

/// The environment variable naming the model mirror.
pub const MIRROR_ENV: &str = "EREBOR_HF_MODELS";

/// The prefix of a model reference.
pub(crate) const MODEL_PREFIX: &str = "hf://models/";

/// A model reference that cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelRefError {
    /// Not of the form `hf://models/OWNER/NAME[@REVISION]`.
    #[error("{reference}: {message}; expected hf://models/OWNER/NAME[@REVISION]")]
    BadReference {
        /// The reference as written.
        reference: String,
        /// What is wrong with it.
        message: String,
    },
    /// [`MIRROR_ENV`] is not set.
    #[error(
        "{reference}: no model mirror configured; set {MIRROR_ENV} to a folder holding OWNER/NAME \
         (e.g. `huggingface-cli download {repo} --local-dir $EREBOR_HF_MODELS/{repo}`); erebor does \
         not download model weights"
    )]
    NoMirror {
        /// The reference as written.
        reference: String,
        /// `OWNER/NAME[@REVISION]`.
        repo: String,
    },
    /// The mirror has no folder for the reference.
    #[error(
        "{reference}: not in the model mirror (looked at {}); fill it with \
         `huggingface-cli download {repo} --local-dir {}`; erebor does not download model weights",
        .looked_at.display(), .looked_at.display()
    )]
    NotMirrored {
        /// The reference as written.
        reference: String,
        /// `OWNER/NAME` (with `--revision REV` where pinned).
        repo: String,
        /// The folder that is missing.
        looked_at: PathBuf,
    },
}

/// A parsed `hf://models/OWNER/NAME[@REVISION]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelRef {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// Pinned revision (branch, tag or commit), if any.
    pub revision: Option<String>,
}

impl ModelRef {
    /// Parses a reference; `Ok(None)` when `spec` is not one (a local path).
    pub(crate) fn parse(spec: &str) -> Result<Option<ModelRef>, ModelRefError> {
        let Some(rest) = spec.strip_prefix(MODEL_PREFIX) else {
            return Ok(None);
        };
        let bad = |message: &str| ModelRefError::BadReference {
            reference: spec.to_owned(),
            message: message.to_owned(),
        };
        let (repo, revision) = match rest.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() && !rev.contains(['/', '\\']) => {
                (repo, Some(rev.to_owned()))
            }
            Some(_) => return Err(bad("empty revision, or one with a `/`")),
            None => (rest.trim_end_matches('/'), None),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match parts.as_slice() {
            [owner, name] if valid(owner) && valid(name) => Ok(Some(ModelRef {
                owner: (*owner).to_owned(),
                name: (*name).to_owned(),
                revision,
            })),
            _ => Err(bad(
                "OWNER and NAME must be two path segments of [A-Za-z0-9-_.]",
            )),
        }
    }

    /// `OWNER/NAME` or `OWNER/NAME@REVISION`: the folder under the mirror.
    pub(crate) fn mirror_folder(&self) -> String {
        match &self.revision {
            Some(rev) => format!("{}/{}@{rev}", self.owner, self.name),
            None => format!("{}/{}", self.owner, self.name),
        }
    }

    fn download_args(&self) -> String {
        match &self.revision {
            Some(rev) => format!("{}/{} --revision {rev}", self.owner, self.name),
            None => format!("{}/{}", self.owner, self.name),
        }
    }
}

/// Resolves a step's model: a local path against `base_dir`, or an `hf://models/...` reference
/// through the mirror in [`MIRROR_ENV`].
pub fn resolve_model(base_dir: &Path, spec: &str) -> Result<PathBuf, ModelRefError> {
    let mirror = std::env::var_os(MIRROR_ENV).filter(|v| !v.is_empty());
    resolve_model_in(base_dir, spec, mirror.as_deref().map(Path::new))
}

/// [`resolve_model`] with the mirror given (`None`: not configured). A relative mirror is
/// taken against the current directory.
pub(crate) fn resolve_model_in(
    base_dir: &Path,
    spec: &str,
    mirror: Option<&Path>,
) -> Result<PathBuf, ModelRefError> {
    let Some(model) = ModelRef::parse(spec)? else {
        return Ok(resolve_path(base_dir, spec));
    };
    let Some(mirror) = mirror else {
        return Err(ModelRefError::NoMirror {
            reference: spec.to_owned(),
            repo: model.download_args(),
        });
    };
    let folder = mirror.join(model.mirror_folder());
    if folder.is_dir() {
        Ok(folder)
    } else {
        Err(ModelRefError::NotMirrored {
            reference: spec.to_owned(),
            repo: model.download_args(),
            looked_at: folder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_resolve_against_the_base_dir() {
        let got = resolve_model_in(Path::new("/w"), "models/x", None).unwrap();
        assert_eq!(got, PathBuf::from("/w/models/x"));
    }

    #[test]
    fn references_resolve_in_the_mirror_with_and_without_a_revision() {
        let mirror = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(mirror.path().join("abacusai/Smaug-72B-v0.1")).unwrap();
        std::fs::create_dir_all(mirror.path().join("o/n@abc123")).unwrap();
        let got = resolve_model_in(
            Path::new("/w"),
            "hf://models/abacusai/Smaug-72B-v0.1",
            Some(mirror.path()),
        )
        .unwrap();
        assert_eq!(got, mirror.path().join("abacusai/Smaug-72B-v0.1"));
        let pinned = resolve_model_in(
            Path::new("/w"),
            "hf://models/o/n@abc123",
            Some(mirror.path()),
        );
        assert_eq!(pinned.unwrap(), mirror.path().join("o/n@abc123"));
    }

    #[test]
    fn a_missing_model_names_the_reference_and_the_folder() {
        let mirror = tempfile::tempdir().unwrap();
        let error = resolve_model_in(Path::new("/w"), "hf://models/o/n@v2", Some(mirror.path()))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("hf://models/o/n@v2: not in the model mirror"),
            "{error}"
        );
        assert!(
            error.contains(&mirror.path().join("o/n@v2").display().to_string()),
            "{error}"
        );
        assert!(error.contains("--revision v2"), "{error}");
        let unset = resolve_model_in(Path::new("/w"), "hf://models/o/n", None).unwrap_err();
        assert!(
            unset.to_string().contains("set EREBOR_HF_MODELS"),
            "{unset}"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "hf://models/o",
            "hf://models/o/n/extra",
            "hf://models/../n",
            "hf://models/o/n@",
            "hf://models/o/n@a/b",
        ] {
            let error = ModelRef::parse(bad).unwrap_err();
            assert!(
                matches!(error, ModelRefError::BadReference { .. }),
                "{bad}: {error}"
            );
        }
    }
}
