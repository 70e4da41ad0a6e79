//! Tasks as a user names them: a leaderboard task (`arc_challenge`, `mmlu`, …) or a custom
//! task file (`tasks/arith.yaml`), turned into [`Task`]s.

use std::path::{Path, PathBuf};

use erebor_core::kind::resolve_path;

use crate::error::{EvalError, Result};
use crate::task::{Task, TaskOptions};

/// A task named in `--tasks` or a step's `tasks:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskSpec {
    /// A built-in (leaderboard) task or group name.
    Builtin(String),
    /// A custom task file (lm-eval-style YAML).
    File(PathBuf),
}

impl TaskSpec {
    /// A name ending in `.yaml` / `.yml` or containing a path separator is a file; anything
    /// else a built-in name.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let is_file = crate::data::has_extension(text, &["yaml", "yml"])
            || text.contains('/')
            || text.contains(std::path::MAIN_SEPARATOR);
        if is_file {
            TaskSpec::File(PathBuf::from(text))
        } else {
            TaskSpec::Builtin(text.to_owned())
        }
    }

    /// A file spec resolved against `base_dir`.
    #[must_use]
    pub fn resolved(self, base_dir: &Path) -> Self {
        match self {
            TaskSpec::File(path) => TaskSpec::File(resolve_path(base_dir, path)),
            TaskSpec::Builtin(name) => TaskSpec::Builtin(name),
        }
    }
}

/// Whether the registry ([`crate::tasks::leaderboard_tasks`]) knows a built-in name.
pub(crate) fn is_known_task(name: &str) -> bool {
    let subject = name
        .strip_prefix("mmlu_")
        .or_else(|| name.strip_prefix("hendrycksTest-"));
    crate::tasks::TASK_NAMES.contains(&name)
        || name == "hendrycksTest"
        || subject.is_some_and(|s| crate::tasks::MMLU_SUBJECTS.contains(&s))
}

/// A built-in task name the registry does not know; its message lists the ones it does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown task `{name}`: expected one of {}, mmlu_<subject>, or a task file (.yaml)",
    crate::tasks::TASK_NAMES.join(", ")
)]
pub(crate) struct UnknownTask {
    /// The name as written.
    pub name: String,
}

/// Checks that every built-in name is one the registry knows (at plan time, without data).
pub(crate) fn check_builtin_names(specs: &[TaskSpec]) -> std::result::Result<(), UnknownTask> {
    for spec in specs {
        if let TaskSpec::Builtin(name) = spec
            && !is_known_task(name)
        {
            return Err(UnknownTask { name: name.clone() });
        }
    }
    Ok(())
}

/// Builds the tasks in the order named: consecutive built-in names through the leaderboard
/// registry, files through the custom-task loader.
/// `hf://datasets/...` data (`data_dir`, `gsm8k_exemplars`) is resolved to local paths first.
pub fn build_tasks(specs: &[TaskSpec], options: &TaskOptions) -> Result<Vec<Box<dyn Task>>> {
    let local = options.with_local_data()?;
    let options = &local;
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for spec in specs {
        match spec {
            TaskSpec::Builtin(name) => names.push(name.clone()),
            TaskSpec::File(path) => {
                tasks.extend(builtin(&std::mem::take(&mut names), options)?);
                tasks.push(Box::new(crate::custom::CustomTask::from_file(
                    path, options,
                )?));
            }
        }
    }
    tasks.extend(builtin(&names, options)?);
    let mut seen = std::collections::HashSet::new();
    for task in &tasks {
        if !seen.insert(task.name().to_owned()) {
            return Err(EvalError::Task {
                task: task.name().to_owned(),
                message: "named twice".into(),
            });
        }
    }
    Ok(tasks)
}

fn builtin(names: &[String], options: &TaskOptions) -> Result<Vec<Box<dyn Task>>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::tasks::leaderboard_tasks(&refs, options)
}
