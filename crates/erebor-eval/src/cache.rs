//! Resume: per-document responses kept as they finish, so a killed evaluation continues
//! without scoring finished documents again.
//!
//! The cache is a folder of JSONL files, one per (model, task configuration):
//!
//! ```text
//! <root>/<weights sha256, 16 hex>-<dtype>/<task>-<task config sha256, 16 hex>.jsonl
//! ```
//!
//! The model's key hashes its weights, config and tokenizer bytes ([`crate::hash_memo`]); the
//! task's hashes everything that defines its requests and scores (`task_config_hash`). (lm-eval's
//! own cache keys on the requests alone, so it serves stale answers after the model changes.)
//! Each line is a `CachedDoc`, appended and flushed as soon as its document is scored; a
//! line cut short by a kill is ignored. A cached document is used only when its prompt hash
//! still matches.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::evaluator::EvalSettings;
use crate::task::{Response, Task};

/// Bump when the evaluator's scoring changes what a document's responses are.
const CACHE_FORMAT: u32 = 1;

/// One finished document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CachedDoc {
    /// The document's index in its split file.
    pub doc_id: usize,
    /// sha256 of its first request's context (lm-eval's `prompt_hash`).
    pub prompt_hash: String,
    /// The model's responses, in request order (log-probabilities stored as decimal strings
    /// that parse back to the same bits).
    #[serde(with = "exact_responses")]
    pub responses: Vec<Response>,
    /// Warnings recorded while scoring it.
    pub warnings: Vec<String>,
}

/// Responses with log-probabilities written as Rust's shortest round-trip decimal strings:
/// `serde_json`'s float parsing may differ from the written value in the last bit, and a
/// resumed document must score exactly as it did.
mod exact_responses {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::task::Response;

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Stored {
        Loglikelihood { logprob: String, is_greedy: bool },
        Generated { text: String },
    }

    pub(super) fn serialize<S: Serializer>(
        responses: &[Response],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let stored: Vec<Stored> = responses
            .iter()
            .map(|r| match r {
                Response::Loglikelihood { logprob, is_greedy } => Stored::Loglikelihood {
                    logprob: logprob.to_string(),
                    is_greedy: *is_greedy,
                },
                Response::Generated(text) => Stored::Generated { text: text.clone() },
            })
            .collect();
        stored.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Response>, D::Error> {
        Vec::<Stored>::deserialize(d)?
            .into_iter()
            .map(|stored| match stored {
                Stored::Loglikelihood { logprob, is_greedy } => logprob
                    .parse()
                    .map(|logprob| Response::Loglikelihood { logprob, is_greedy })
                    .map_err(serde::de::Error::custom),
                Stored::Generated { text } => Ok(Response::Generated(text)),
            })
            .collect()
    }
}

/// The resume cache of one model.
#[derive(Clone, Debug)]
pub struct ResumeCache {
    dir: PathBuf,
}

impl ResumeCache {
    /// The cache of the model with weights hash `weights_sha256` evaluated in `dtype`, under
    /// `root`.
    pub fn new(root: &Path, weights_sha256: &str, dtype: &str) -> Self {
        let short = &weights_sha256[..weights_sha256.len().min(16)];
        ResumeCache {
            dir: root.join(format!("{short}-{dtype}")),
        }
    }

    /// The model's cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (creating the folder) the file of task `task` with configuration hash
    /// `config_hash`, reading what it already holds.
    pub(crate) fn open_task(&self, task: &str, config_hash: &str) -> Result<TaskCache> {
        std::fs::create_dir_all(&self.dir).map_err(|source| EvalError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let safe: String = task
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let short = &config_hash[..config_hash.len().min(16)];
        let path = self.dir.join(format!("{safe}-{short}.jsonl"));
        let entries = read_entries(&path)?;
        let torn =
            std::fs::read(&path).is_ok_and(|bytes| bytes.last().is_some_and(|&b| b != b'\n'));
        Ok(TaskCache {
            path,
            entries,
            file: None,
            torn,
        })
    }
}

/// The cached documents of one task, and the file new ones are appended to.
#[derive(Debug)]
pub(crate) struct TaskCache {
    path: PathBuf,
    entries: HashMap<usize, CachedDoc>,
    file: Option<File>,
    /// The file ends in a line cut short: the next append starts on a new line.
    torn: bool,
}

impl TaskCache {
    /// The file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Documents held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no document is held.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached document `doc_id`, if its prompt hash is `prompt_hash`.
    pub(crate) fn get(&self, doc_id: usize, prompt_hash: &str) -> Option<&CachedDoc> {
        self.entries
            .get(&doc_id)
            .filter(|doc| doc.prompt_hash == prompt_hash)
    }

    /// Appends finished documents and flushes them to the file.
    pub(crate) fn append(&mut self, docs: &[CachedDoc]) -> Result<()> {
        let io = |source| EvalError::Io {
            path: self.path.clone(),
            source,
        };
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(io)?,
            ),
        };
        let mut text = String::new();
        if std::mem::take(&mut self.torn) {
            text.push('\n');
        }
        for doc in docs {
            text.push_str(&serde_json::to_string(doc).map_err(|error| io(error.into()))?);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        for doc in docs {
            self.entries.insert(doc.doc_id, doc.clone());
        }
        Ok(())
    }
}

/// Reads a cache file; a missing file is empty, unreadable lines (a write cut by a kill) are
/// skipped.
fn read_entries(path: &Path) -> Result<HashMap<usize, CachedDoc>> {
    let mut entries = HashMap::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(source) => {
            return Err(EvalError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| EvalError::Io {
            path: path.to_owned(),
            source,
        })?;
        match serde_json::from_str::<CachedDoc>(&line) {
            Ok(doc) => {
                entries.insert(doc.doc_id, doc);
            }
            Err(e) => tracing::warn!(
                file = %path.display(),
                line = n + 1,
                "skipping an unreadable resume-cache line ({e})"
            ),
        }
    }
    Ok(entries)
}

/// sha256 (hex) of a string, as lm-eval's `hash_string`.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Hash of what defines a task's responses: its name, version, configuration, few-shot count,
/// data files and notes, and the evaluator settings that change scores (BOS, window).
pub(crate) fn task_config_hash(task: &dyn Task, settings: &EvalSettings) -> String {
    let data: Vec<(String, String)> = task
        .data_files()
        .into_iter()
        .map(|f| (f.split, f.sha256))
        .collect();
    let key = serde_json::json!({
        "format": CACHE_FORMAT,
        "task": task.name(),
        "version": task.version(),
        "config": task.config(),
        "num_fewshot": task.num_fewshot(),
        "data": data,
        "add_bos": settings.add_bos,
        "max_length": settings.max_length,
    });
    sha256_hex(&key.to_string())
}

/// Files of a checkpoint folder that define the model: weights, config, tokenizer.
pub(crate) fn model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|source| EvalError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in read {
        let path = entry
            .map_err(|source| EvalError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let defines = crate::data::has_extension(name, &["safetensors", "gguf"])
            || matches!(
                name,
                "config.json"
                    | "model.safetensors.index.json"
                    | "tokenizer.json"
                    | "tokenizer_config.json"
            );
        if defines && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: usize) -> CachedDoc {
        CachedDoc {
            doc_id: id,
            prompt_hash: format!("p{id}"),
            responses: vec![Response::Loglikelihood {
                logprob: -1.5,
                is_greedy: false,
            }],
            warnings: vec![],
        }
    }

    #[test]
    fn appended_documents_survive_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResumeCache::new(dir.path(), "abcdef0123456789ffff", "f32");
        let mut task = cache
            .open_task("mmlu_anatomy", "0123456789abcdef99")
            .unwrap();
        assert!(task.is_empty());
        task.append(&[doc(0), doc(3)]).unwrap();
        // A kill in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(task.path()).unwrap();
        f.write_all(b"{\"doc_id\": 7, \"prompt").unwrap();
        drop(f);
        let again = cache
            .open_task("mmlu_anatomy", "0123456789abcdef99")
            .unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again.get(3, "p3"), Some(&doc(3)));
        assert_eq!(again.get(3, "changed prompt"), None);
        assert!(
            again
                .path()
                .ends_with("abcdef0123456789-f32/mmlu_anatomy-0123456789abcdef.jsonl")
        );
        let mut again = again;
        again.append(&[doc(7)]).unwrap();
        let third = cache
            .open_task("mmlu_anatomy", "0123456789abcdef99")
            .unwrap();
        assert_eq!(third.len(), 3);
        assert!(third.get(7, "p7").is_some());
    }
}
