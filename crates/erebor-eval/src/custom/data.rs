//! Where a custom task's splits come from. Relative paths are relative to the task file's
//! folder.
//!
//! - `dataset: {path: FOLDER}`: `FOLDER/<split>.jsonl`, else `FOLDER/<task>_<split>.jsonl` (a
//!   converted dataset's `eval.jsonl`, or a `--data-dir` style folder).
//! - `dataset: {path: FILE.jsonl}`: that file serves every split.
//! - `dataset: {data_files: {SPLIT: FILE, …}}`, or lm-eval's `dataset_path: json` with
//!   `dataset_kwargs: {data_files: …}` (one file is the `train` split, as in `datasets`).
//! - lm-eval's `dataset_path: FOLDER` is read as `dataset: {path: FOLDER}`.
//! - none of these: the data directory of the run (`--data-dir`, the step's `data_dir:`) as a
//!   folder, so a workflow can point a static task file at an earlier step's dataset.
//!
//! Any of these paths may be `hf://datasets/OWNER/NAME[@REV][/PATH]` ([`crate::hub`]): a
//! reference ending in `.jsonl` is a file, anything else a folder of `.jsonl` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{CustomTaskConfig, DataFiles};
use crate::data::{JsonlFile, read_first_existing};
use crate::error::{EvalError, Result};

/// How a custom task finds a split's file.
#[derive(Clone, Debug)]
pub(crate) enum SplitSource {
    /// A folder of `<split>.jsonl` / `<task>_<split>.jsonl`.
    Folder(PathBuf),
    /// One file for every split.
    File(PathBuf),
    /// Files by split.
    Files(BTreeMap<String, PathBuf>),
}

impl SplitSource {
    /// From the task file's `dataset` / `dataset_path` / `dataset_kwargs`, else `data_dir`;
    /// `hf://` references resolve through the Hub cache `hub_cache`.
    pub(crate) fn from_config(
        config: &CustomTaskConfig,
        base_dir: &Path,
        data_dir: Option<&Path>,
        hub_cache: &Path,
        origin: &str,
    ) -> Result<Self> {
        let resolve = |p: &str| -> Result<PathBuf> {
            if p.starts_with(crate::hub::HUB_PREFIX) {
                crate::hub::local_path(Path::new(p), hub_cache)
            } else {
                Ok(resolve(base_dir, p))
            }
        };
        let by_split = |files: &DataFiles| -> Result<Self> {
            Ok(match files {
                DataFiles::One(file) => {
                    Self::Files(BTreeMap::from([("train".to_string(), resolve(file)?)]))
                }
                DataFiles::BySplit(map) => Self::Files(
                    map.iter()
                        .map(|(s, f)| Ok((s.clone(), resolve(f)?)))
                        .collect::<Result<_>>()?,
                ),
            })
        };
        if let Some(dataset) = &config.dataset {
            if config.dataset_path.is_some() || config.dataset_kwargs.is_some() {
                return Err(config_error(
                    origin,
                    "give `dataset` or lm-eval's `dataset_path`/`dataset_kwargs`, not both",
                ));
            }
            return match (&dataset.path, &dataset.data_files) {
                (Some(path), None) => Ok(Self::path(resolve(path)?)),
                (None, Some(files)) => by_split(files),
                _ => Err(config_error(
                    origin,
                    "`dataset` needs exactly one of `path` and `data_files`",
                )),
            };
        }
        match (config.dataset_path.as_deref(), &config.dataset_kwargs) {
            (_, Some(kwargs)) => by_split(&kwargs.data_files),
            (Some("json"), None) => Err(config_error(
                origin,
                "`dataset_path: json` needs `dataset_kwargs: {data_files: …}`",
            )),
            (Some(path), None) => Ok(Self::path(resolve(path)?)),
            (None, None) => match data_dir {
                Some(dir) => Ok(Self::Folder(crate::hub::local_path(dir, hub_cache)?)),
                None => Err(config_error(
                    origin,
                    "no data: set `dataset: {path: …}` or `dataset: {data_files: {test: …}}`, or give a data directory",
                )),
            },
        }
    }

    fn path(path: PathBuf) -> Self {
        if path.is_dir() {
            Self::Folder(path)
        } else {
            Self::File(path)
        }
    }

    /// Reads the file of `split`.
    pub(super) fn read(&self, task: &str, split: &str) -> Result<JsonlFile> {
        match self {
            Self::File(path) => JsonlFile::read(path),
            Self::Folder(dir) => read_first_existing(
                task,
                &[
                    dir.join(format!("{split}.jsonl")),
                    dir.join(format!("{task}_{split}.jsonl")),
                ],
            ),
            Self::Files(files) => match files.get(split) {
                Some(path) => JsonlFile::read(path),
                None => Err(EvalError::Task {
                    task: task.to_string(),
                    message: format!(
                        "no data file for split `{split}` (data_files has {})",
                        files.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                }),
            },
        }
    }
}

fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// An error in the task file `origin`.
pub(super) fn config_error(origin: &str, message: impl Into<String>) -> EvalError {
    EvalError::Task {
        task: origin.to_string(),
        message: message.into(),
    }
}
