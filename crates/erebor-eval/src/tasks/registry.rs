//! Building tasks by name: the leaderboard's names and groups (`leaderboard`, `mmlu`,
//! `mmlu_<subject>`, lm-eval's old `hendrycksTest-` names) and custom task files.

use std::path::Path;

use super::mmlu::MMLU_SUBJECTS;
use super::{arc, gsm8k, hellaswag, mmlu, truthfulqa, winogrande};
use crate::error::{EvalError, Result};
use crate::task::{Task, TaskOptions};

/// The tasks of the Open LLM Leaderboard v1, in its order.
pub const LEADERBOARD: [&str; 6] = [
    "arc_challenge",
    "hellaswag",
    "mmlu",
    "truthfulqa_mc",
    "winogrande",
    "gsm8k",
];

/// Every name [`leaderboard_tasks`] accepts besides `mmlu_<subject>` and task files.
pub(crate) const TASK_NAMES: [&str; 9] = [
    "arc_easy",
    "arc_challenge",
    "hellaswag",
    "mmlu",
    "truthfulqa_mc",
    "truthfulqa",
    "winogrande",
    "gsm8k",
    "leaderboard",
];

/// Builds the named tasks: built-in names (see [`crate::tasks`]), `mmlu` (57 tasks),
/// `leaderboard` (the six), `mmlu_<subject>`, or paths of custom task YAML files. Duplicates
/// are built once, in first-mention order.
pub fn leaderboard_tasks(names: &[&str], options: &TaskOptions) -> Result<Vec<Box<dyn Task>>> {
    let mut expanded: Vec<String> = Vec::new();
    for name in names {
        for one in expand(name) {
            if !expanded.contains(&one) {
                expanded.push(one);
            }
        }
    }
    let subjects: Vec<&str> = expanded
        .iter()
        .filter_map(|name| name.strip_prefix("mmlu_"))
        .collect();
    let mut mmlu_tasks = if subjects.is_empty() {
        Vec::new()
    } else {
        mmlu::tasks(&subjects, options)?
    };
    mmlu_tasks.reverse();
    let mut tasks: Vec<Box<dyn Task>> = Vec::with_capacity(expanded.len());
    for name in &expanded {
        if name.starts_with("mmlu_") {
            let task = mmlu_tasks.pop().ok_or_else(|| EvalError::Task {
                task: name.clone(),
                message: "no MMLU task was built for this subject".to_owned(),
            })?;
            tasks.push(Box::new(task));
        } else {
            tasks.push(build_one(name, options)?);
        }
    }
    Ok(tasks)
}

fn expand(name: &str) -> Vec<String> {
    let name = name.trim();
    match name {
        "leaderboard" => LEADERBOARD.iter().flat_map(|n| expand(n)).collect(),
        "mmlu" | "hendrycksTest" => MMLU_SUBJECTS.iter().map(|s| format!("mmlu_{s}")).collect(),
        "truthfulqa" => vec!["truthfulqa_mc".into()],
        other => match other.strip_prefix("hendrycksTest-") {
            Some(subject) => vec![format!("mmlu_{subject}")],
            None => vec![other.to_string()],
        },
    }
}

fn build_one(name: &str, options: &TaskOptions) -> Result<Box<dyn Task>> {
    if is_task_file(name) {
        return Ok(Box::new(crate::custom::CustomTask::from_file(
            Path::new(name),
            options,
        )?));
    }
    let task: Box<dyn Task> = match name {
        "arc_easy" | "arc_challenge" => Box::new(arc::task(name, options)?),
        "hellaswag" => Box::new(hellaswag::task(options)?),
        "truthfulqa_mc" => Box::new(truthfulqa::task(options)?),
        "winogrande" => Box::new(winogrande::task(options)?),
        "gsm8k" => Box::new(gsm8k::task(options)?),
        other => {
            return Err(EvalError::Task {
                task: other.to_string(),
                message: format!(
                    "unknown task: expected one of {}, mmlu_<subject>, or a task file (.yaml)",
                    TASK_NAMES.join(", ")
                ),
            });
        }
    };
    Ok(task)
}

/// Whether a task name is a custom task file's path.
pub(crate) fn is_task_file(name: &str) -> bool {
    crate::data::has_extension(name, &["yaml", "yml"])
}
