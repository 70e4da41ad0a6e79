//! The on-disk format of a converted dataset: written by the `convert` step (erebor-data), read
//! by the `sft` and `preference` steps (erebor-train). `docs/steps.md` describes it for users.
//!
//! A dataset is a folder:
//!
//! ```text
//! manifest.json            DatasetManifest: kind, splits, tokenizer, statistics
//! train.jsonl              untokenised records (SftRecord or PreferenceRecord), one per line
//! train.tokens.jsonl       the same rows tokenised (TokenisedSft or TokenisedPreference), same order
//! eval.jsonl, eval.tokens.jsonl   the held-out split, when there is one
//! ```
//!
//! The untokenised records stay next to the tokens so a different model can re-tokenise them.

use crate::jsonl::{JsonlError, read_jsonl};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of this format; readers refuse newer ones.
pub const DATASET_FORMAT_VERSION: u32 = 1;

/// The manifest's file name inside a dataset folder.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";

/// What the rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Conversations for supervised fine-tuning.
    Sft,
    /// Prompt, chosen answer, rejected answer.
    Preference,
}

/// One message of a conversation: a dataset row's, and what erebor-model's chat templates
/// render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (templates may accept others).
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// An untokenised SFT row: a conversation whose assistant turns are the targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftRecord {
    /// Stable row id (source file and row, or the source's own id).
    pub id: String,
    /// The conversation, in order.
    pub messages: Vec<ChatMessage>,
}

/// An untokenised preference row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceRecord {
    /// Stable row id.
    pub id: String,
    /// The conversation up to and including the last user turn (system message included).
    pub prompt: Vec<ChatMessage>,
    /// The preferred assistant answer.
    pub chosen: String,
    /// The dispreferred assistant answer.
    pub rejected: String,
}

/// A tokenised SFT row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenisedSft {
    /// Id of the untokenised row.
    pub id: String,
    /// The whole conversation rendered with the chat template and tokenised.
    pub input_ids: Vec<u32>,
    /// Half-open `[start, end)` token ranges that are training targets (assistant turns with
    /// their end-of-turn tokens); every other token is masked out of the loss.
    pub target_spans: Vec<[u32; 2]>,
}

impl TokenisedSft {
    /// Number of target tokens.
    pub fn target_tokens(&self) -> usize {
        self.target_spans
            .iter()
            .map(|[start, end]| (end - start) as usize)
            .sum()
    }
}

/// A tokenised preference row. The policy scores `prompt_ids ++ chosen_ids` and
/// `prompt_ids ++ rejected_ids`; log-probabilities are summed over the completion tokens only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenisedPreference {
    /// Id of the untokenised row.
    pub id: String,
    /// The prompt rendered with the chat template, generation prompt included.
    pub prompt_ids: Vec<u32>,
    /// The chosen completion, end-of-turn tokens included.
    pub chosen_ids: Vec<u32>,
    /// The rejected completion, end-of-turn tokens included.
    pub rejected_ids: Vec<u32>,
}

/// Which tokenizer and template made the `.tokens.jsonl` files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerRef {
    /// The model or tokenizer folder as given in the step config.
    pub source: String,
    /// SHA-256 of the `tokenizer.json` used.
    pub tokenizer_sha256: String,
    /// The chat template used: a built-in name, or `model` for the checkpoint's own.
    pub chat_template: String,
    /// SHA-256 of the template text actually rendered.
    pub chat_template_sha256: String,
}

/// The files of one split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitFiles {
    /// Number of rows.
    pub rows: u64,
    /// Untokenised records file, relative to the dataset folder.
    pub records: String,
    /// Tokenised rows file, relative to the dataset folder, when tokenised.
    pub tokens: Option<String>,
}

/// `manifest.json` of a dataset folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetManifest {
    /// [`DATASET_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// What the rows are.
    pub kind: DatasetKind,
    /// Split name (`train`, `eval`) to its files.
    pub splits: BTreeMap<String, SplitFiles>,
    /// The tokenizer, when the rows are tokenised.
    pub tokenizer: Option<TokenizerRef>,
    /// Statistics recorded by the converter (counts, lengths, edit distances).
    #[serde(default)]
    pub stats: serde_json::Value,
}

/// A dataset folder that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The manifest is missing or unreadable.
    #[error("{path}: cannot read dataset manifest: {message}")]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The folder holds a different kind of dataset than the step needs.
    #[error("{path}: is a {found:?} dataset, this step needs a {wanted:?} dataset")]
    WrongKind {
        /// The dataset folder.
        path: PathBuf,
        /// The kind the step needs.
        wanted: DatasetKind,
        /// The kind the manifest declares.
        found: DatasetKind,
    },
    /// The split is not in the manifest, or not tokenised.
    #[error("{path}: {message}")]
    Split {
        /// The dataset folder.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A rows file is unreadable.
    #[error(transparent)]
    Rows(#[from] JsonlError),
}

impl DatasetManifest {
    /// Reads `manifest.json` from a dataset folder and checks its version.
    pub fn read(dir: &Path) -> Result<Self, DatasetError> {
        let path = dir.join(MANIFEST_FILE);
        let manifest_error = |message: String| DatasetError::Manifest {
            path: path.clone(),
            message,
        };
        let text =
            std::fs::read_to_string(&path).map_err(|error| manifest_error(error.to_string()))?;
        let manifest: Self =
            serde_json::from_str(&text).map_err(|error| manifest_error(error.to_string()))?;
        if manifest.format_version > DATASET_FORMAT_VERSION {
            return Err(manifest_error(format!(
                "format version {} is newer than this erebor understands ({}); upgrade erebor",
                manifest.format_version, DATASET_FORMAT_VERSION
            )));
        }
        Ok(manifest)
    }

    /// Writes `manifest.json` into a dataset folder.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(MANIFEST_FILE), text)
    }

    /// Fails unless the dataset is of kind `wanted`.
    pub fn expect_kind(&self, dir: &Path, wanted: DatasetKind) -> Result<(), DatasetError> {
        if self.kind == wanted {
            Ok(())
        } else {
            Err(DatasetError::WrongKind {
                path: dir.to_owned(),
                wanted,
                found: self.kind,
            })
        }
    }

    /// Path of the tokenised rows of `split`.
    pub(crate) fn tokens_path(&self, dir: &Path, split: &str) -> Result<PathBuf, DatasetError> {
        let files = self.splits.get(split).ok_or_else(|| DatasetError::Split {
            path: dir.to_owned(),
            message: format!(
                "no split `{split}` (the dataset has: {})",
                self.splits.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
        let tokens = files.tokens.as_ref().ok_or_else(|| DatasetError::Split {
            path: dir.to_owned(),
            message: format!("split `{split}` is not tokenised; give the convert step a tokenizer"),
        })?;
        Ok(dir.join(tokens))
    }
}

/// Reads the tokenised preference rows of `split` from a dataset folder.
pub fn read_tokenised_preference(
    dir: &Path,
    split: &str,
) -> Result<Vec<TokenisedPreference>, DatasetError> {
    let manifest = DatasetManifest::read(dir)?;
    manifest.expect_kind(dir, DatasetKind::Preference)?;
    Ok(read_jsonl(&manifest.tokens_path(dir, split)?)?)
}

/// Reads the tokenised SFT rows of `split` from a dataset folder.
pub fn read_tokenised_sft(dir: &Path, split: &str) -> Result<Vec<TokenisedSft>, DatasetError> {
    let manifest = DatasetManifest::read(dir)?;
    manifest.expect_kind(dir, DatasetKind::Sft)?;
    Ok(read_jsonl(&manifest.tokens_path(dir, split)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::write_jsonl;

    #[test]
    fn a_written_preference_dataset_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![TokenisedPreference {
            id: "arc/0/1".into(),
            prompt_ids: vec![1, 2, 3],
            chosen_ids: vec![4, 5],
            rejected_ids: vec![6],
        }];
        write_jsonl(&dir.path().join("train.tokens.jsonl"), &rows).unwrap();
        let manifest = DatasetManifest {
            format_version: DATASET_FORMAT_VERSION,
            kind: DatasetKind::Preference,
            splits: BTreeMap::from([(
                "train".to_owned(),
                SplitFiles {
                    rows: 1,
                    records: "train.jsonl".into(),
                    tokens: Some("train.tokens.jsonl".into()),
                },
            )]),
            tokenizer: None,
            stats: serde_json::Value::Null,
        };
        manifest.write(dir.path()).unwrap();
        assert_eq!(
            read_tokenised_preference(dir.path(), "train").unwrap(),
            rows
        );

        let wrong = read_tokenised_sft(dir.path(), "train")
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("needs a Sft dataset"), "{wrong}");
        let missing = read_tokenised_preference(dir.path(), "eval")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("no split `eval` (the dataset has: train)"),
            "{missing}"
        );
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"format_version": 99, "kind": "sft", "splits": {}, "tokenizer": null}"#,
        )
        .unwrap();
        let error = DatasetManifest::read(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("newer than this erebor understands"),
            "{error}"
        );
    }
}
