//! Where steps run, as the workflow says it: the top-level `executor:` (`local`, or
//! `{type: slurm, partition, account, extra: [...]}`), a step's own `executor: local|slurm`, and
//! the `resources:` a cluster executor turns into scheduler options (CPUs, memory, free-form
//! sbatch options; `gpus` is read by the schema as before).

use crate::error::{ErrorKind, WorkflowError};
use crate::fields::{self, Fields};
use crate::node::{Node, Pos, Value};

/// The executors a workflow can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExecutorKind {
    /// A child process of the runner per step.
    Local,
    /// A Slurm job per attempt.
    Slurm,
}

impl ExecutorKind {
    /// The name used in workflow files, on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            _ => None,
        }
    }
}

/// The workflow's `executor:`: which executor runs its steps, and its settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExecutorDecl {
    /// Which executor (None: the command line's choice, `local` by default).
    pub kind: Option<ExecutorKind>,
    /// Slurm partition (`--partition`); the cluster's default when absent.
    pub partition: Option<String>,
    /// Slurm account (`--account`).
    pub account: Option<String>,
    /// Free-form sbatch options added to every job, e.g. `["--qos=high"]`.
    pub extra: Vec<String>,
    /// Where `executor:` is written.
    pub pos: Pos,
}

/// What a step asks of a cluster scheduler beyond GPUs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StepResources {
    /// CPUs per task (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// Memory in MiB (`--mem`), written like `16G`, `512M` or a number of MiB.
    pub memory_mb: Option<u64>,
    /// Free-form sbatch options for this step only, e.g. `["--constraint=a100"]`.
    pub sbatch: Vec<String>,
}

const EXECUTOR_KEYS: &[&str] = &["type", "partition", "account", "extra"];
const EXECUTOR_HELP: &str = "write `executor: local`, or `executor: {type: slurm, partition: gpu, account: lab, extra: [\"--qos=high\"]}`";

/// Reads the top-level `executor:` (a name, or a mapping with `type:`).
pub fn read_executor(node: &Node, errors: &mut Vec<WorkflowError>) -> ExecutorDecl {
    let mut decl = ExecutorDecl {
        pos: node.pos,
        ..ExecutorDecl::default()
    };
    if let Value::Str(_) = node.value {
        decl.kind = executor_kind(node, "`executor`", errors);
        return decl;
    }
    let Some(fields) = Fields::read(node, "`executor`", EXECUTOR_KEYS, errors) else {
        return decl;
    };
    decl.kind = fields
        .require("type", "`executor`", errors)
        .and_then(|n| executor_kind(n, "`executor.type`", errors));
    decl.partition = fields
        .get("partition")
        .and_then(|n| option_word(n, "`executor.partition`", errors));
    decl.account = fields
        .get("account")
        .and_then(|n| option_word(n, "`executor.account`", errors));
    decl.extra = fields
        .get("extra")
        .map(|n| sbatch_options(n, "`executor.extra`", errors))
        .unwrap_or_default();
    let slurm_only = decl.partition.is_some() || decl.account.is_some() || !decl.extra.is_empty();
    if decl.kind == Some(ExecutorKind::Local) && slurm_only {
        errors.push(
            WorkflowError::new(
                ErrorKind::TypeMismatch,
                node.pos,
                "`partition`, `account` and `extra` are Slurm settings; the local executor takes none",
            )
            .help(EXECUTOR_HELP),
        );
    }
    decl
}

/// Reads a step's `executor: local|slurm`.
pub fn read_step_executor(
    node: &Node,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> Option<ExecutorKind> {
    executor_kind(node, &format!("`executor` of {what}"), errors)
}

fn executor_kind(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<ExecutorKind> {
    let name = fields::string(node, what, errors)?;
    let kind = ExecutorKind::parse(&name);
    if kind.is_none() {
        errors.push(
            WorkflowError::new(
                ErrorKind::TypeMismatch,
                node.pos,
                format!("{what} is `{name}`; the executors are `local` and `slurm`"),
            )
            .help(EXECUTOR_HELP),
        );
    }
    kind
}

/// A partition or account name: one word, no spaces or `=` (it becomes one sbatch option).
fn option_word(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<String> {
    let word = fields::string(node, what, errors)?;
    let valid = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ','));
    if !valid {
        errors.push(WorkflowError::new(
            ErrorKind::TypeMismatch,
            node.pos,
            format!("{what} `{word}` must be a name (letters, digits, `-`, `_`, `.`, `,`)"),
        ));
        return None;
    }
    Some(word)
}

/// Free-form sbatch options: each must be a long option (`--name` or `--name=value`), so a
/// value cannot smuggle in a second option or a script path.
pub fn sbatch_options(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Vec<String> {
    let mut out = Vec::new();
    for (option, pos) in fields::string_list(node, what, errors) {
        match check_sbatch_option(&option) {
            Ok(()) => out.push(option),
            Err(reason) => errors.push(
                WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    pos,
                    format!("`{option}` in {what} {reason}"),
                )
                .help(
                    "write each option as `--name=value`, e.g. `--qos=high` or `--constraint=a100`",
                ),
            ),
        }
    }
    out
}

/// Options erebor sets itself and a workflow may not override.
const RESERVED_OPTIONS: &[&str] = &[
    "--export",
    "--parsable",
    "--job-name",
    "--output",
    "--error",
    "--wrap",
    "--chdir",
    "--export-file",
];

fn check_sbatch_option(option: &str) -> Result<(), String> {
    if !option.starts_with("--") || option.len() < 3 {
        return Err("is not a long option (`--name=value`)".to_owned());
    }
    if option.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains white space; give one option per entry".to_owned());
    }
    let name = option.split('=').next().unwrap_or(option);
    if RESERVED_OPTIONS.contains(&name) {
        return Err(format!("sets `{name}`, which erebor sets itself"));
    }
    Ok(())
}

/// Reads `cpus`, `memory` and `sbatch` of a step's `resources:` (its `gpus` is read apart).
pub fn read_resources(
    fields: &Fields<'_>,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> StepResources {
    let cpus = fields
        .get("cpus")
        .and_then(|n| fields::count(n, &format!("`resources.cpus` of {what}"), errors))
        .filter(|&n| n > 0);
    let memory_mb = fields
        .get("memory")
        .and_then(|n| memory(n, &format!("`resources.memory` of {what}"), errors));
    let sbatch = fields
        .get("sbatch")
        .map(|n| sbatch_options(n, &format!("`resources.sbatch` of {what}"), errors))
        .unwrap_or_default();
    StepResources {
        cpus,
        memory_mb,
        sbatch,
    }
}

fn memory(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<u64> {
    let parsed = match &node.value {
        Value::Int(mb) if *mb > 0 => Ok(mb.unsigned_abs()),
        Value::Str(text) => parse_memory(text).map_err(|e| e.to_string()),
        _ => Err(format!("found {}", node.type_name())),
    };
    match parsed {
        Ok(mb) => Some(mb),
        Err(reason) => {
            errors.push(
                WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    node.pos,
                    format!("{what} must be an amount like `16G`, `512M` or `1T`: {reason}"),
                )
                .help("a bare number is MiB; suffixes are K, M, G and T (powers of 1024)"),
            );
            None
        }
    }
}

/// Why a memory amount does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// No leading digits.
    #[error("`{0}` does not start with a whole number")]
    NoNumber(String),
    /// A suffix other than K, M, G, T (with an optional B or iB).
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// Rounds to 0 MiB.
    #[error("it is zero")]
    Zero,
}

/// `16G` → 16384 (MiB); `512M` → 512; `1T` → 1048576; `2048` → 2048; `1024K` → 1.
pub fn parse_memory(text: &str) -> Result<u64, MemoryError> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| MemoryError::NoNumber(text.to_owned()))?;
    let unit = unit.trim().trim_end_matches(['B', 'b', 'i']);
    let kib = match unit.to_ascii_uppercase().as_str() {
        "K" => value,
        "" | "M" => value.saturating_mul(1024),
        "G" => value.saturating_mul(1024 * 1024),
        "T" => value.saturating_mul(1024 * 1024 * 1024),
        other => return Err(MemoryError::UnknownUnit(other.to_owned())),
    };
    let mb = kib.div_ceil(1024);
    if mb == 0 {
        return Err(MemoryError::Zero);
    }
    Ok(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_amounts() {
        assert_eq!(parse_memory("16G"), Ok(16 * 1024));
        assert_eq!(parse_memory("512M"), Ok(512));
        assert_eq!(parse_memory("512MiB"), Ok(512));
        assert_eq!(parse_memory("1T"), Ok(1024 * 1024));
        assert_eq!(parse_memory("2048"), Ok(2048));
        assert_eq!(parse_memory("1500K"), Ok(2));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("0G").is_err());
        assert!(parse_memory("3X").is_err());
    }

    #[test]
    fn sbatch_options_are_checked() {
        assert!(check_sbatch_option("--qos=high").is_ok());
        assert!(check_sbatch_option("--exclusive").is_ok());
        assert!(check_sbatch_option("-p gpu").is_err());
        assert!(check_sbatch_option("--qos=high --export=ALL").is_err());
        assert!(check_sbatch_option("--export=ALL").is_err());
        assert!(check_sbatch_option("--output=/tmp/x").is_err());
    }
}
