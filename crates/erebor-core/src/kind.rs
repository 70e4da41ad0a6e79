//! The step-kind trait: what every kind (`convert`, `sft`, `preference`, `eval`, `mt-bench`,
//! `report`, `command`) implements so the workflow crate can validate it and the engine can run it.

use crate::{ConfigError, StepContext, StepFailure, StepOutputs};
use std::path::{Path, PathBuf};

/// The type of a declared output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputType {
    /// A Hugging Face checkpoint folder (`config.json`, safetensors, tokenizer, chat template).
    Model,
    /// A PEFT-style LoRA adapter folder.
    Adapter,
    /// A converted dataset folder (see [`crate::dataset`]).
    Dataset,
    /// Reference-model log-probabilities of a preference dataset.
    RefLogps,
    /// A human-readable report (Markdown, HTML or JSON).
    Report,
    /// Any other file or folder.
    File,
    /// A scalar metric.
    Metric,
    /// A short text value.
    Text,
}

impl OutputType {
    /// Whether values of this type are files or folders (recorded as artifacts).
    pub fn is_path(self) -> bool {
        !matches!(self, OutputType::Metric | OutputType::Text)
    }
}

/// One output a step kind promises, referenced in templates as `steps.ID.outputs.NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputDecl {
    /// The output's name.
    pub name: &'static str,
    /// What it is.
    pub ty: OutputType,
    /// One line for `docs/steps.md` and `erebor kinds`.
    pub doc: &'static str,
}

/// Static facts about a step kind.
#[derive(Clone, Copy, Debug)]
pub struct StepKindInfo {
    /// The name used in `uses:`.
    pub name: &'static str,
    /// Version of this kind's own code. Bump it when a change alters what the kind produces
    /// from the same inputs; it is part of the step fingerprint, the erebor version is not.
    pub code_version: u32,
    /// One line on what the kind does.
    pub summary: &'static str,
    /// Outputs the kind may produce (some only for some configs).
    pub outputs: &'static [OutputDecl],
}

impl StepKindInfo {
    /// The declared output called `name`.
    pub fn output(&self, name: &str) -> Option<&OutputDecl> {
        self.outputs.iter().find(|output| output.name == name)
    }
}

/// A step kind: validated at plan time, run in a step process.
pub trait StepKind: Send + Sync {
    /// Static facts: name, code version, outputs.
    fn info(&self) -> &'static StepKindInfo;

    /// Checks a `with:` block after templating. References to other steps' outputs, unknown at
    /// plan time, appear as placeholder strings; a kind must accept any string where it expects
    /// a path. Relative paths are relative to `base_dir`, the workflow file's folder.
    fn validate(&self, with: &serde_json::Value, base_dir: &Path) -> Result<(), ConfigError>;

    /// The outputs a step with this `with:` block produces, as (name, type). The default is
    /// every output in [`StepKindInfo::outputs`]; kinds whose outputs depend on the config (such
    /// as `command`, whose `outputs:` names files) override it. Templates naming
    /// `steps.ID.outputs.NAME` are checked against this list.
    fn outputs_for(&self, _with: &serde_json::Value) -> Vec<(String, OutputType)> {
        self.info()
            .outputs
            .iter()
            .map(|output| (output.name.to_owned(), output.ty))
            .collect()
    }

    /// Files and folders named in `with:` whose contents belong in the step fingerprint. The
    /// default takes every string value that names an existing path, and every
    /// `hf://models/...` reference as the mirror folder it resolves to.
    fn input_paths(&self, with: &serde_json::Value, base_dir: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        collect_existing_paths(with, base_dir, &mut paths);
        paths.sort();
        paths.dedup();
        paths
    }

    /// Lines `erebor plan` shows under the step (e.g. a memory estimate). None by default.
    fn plan_notes(&self, _with: &serde_json::Value, _base_dir: &Path) -> Vec<String> {
        Vec::new()
    }

    /// Why the step cannot run on the hardware erebor sees (its memory estimate against the
    /// device's memory), known before anything runs; `erebor plan` and `erebor run` refuse the
    /// workflow then. None by default, and when the step's inputs are not there yet.
    fn plan_refusal(&self, _with: &serde_json::Value, _base_dir: &Path) -> Option<String> {
        None
    }

    /// Whether the runner must gather the run's recorded data (steps, metrics, results) for
    /// this step before it starts; the step then finds it as JSON at
    /// [`StepContext::run_data`](crate::StepContext::run_data) and needs no access to the run
    /// store. False by default.
    fn needs_run_data(&self) -> bool {
        false
    }

    /// Runs the step. Outputs go under `ctx.work_dir`.
    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure>;
}

/// Resolves `path` against `base_dir` unless it is absolute.
pub fn resolve_path(base_dir: &Path, path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

fn collect_existing_paths(value: &serde_json::Value, base_dir: &Path, out: &mut Vec<PathBuf>) {
    match value {
        serde_json::Value::String(text) if !text.is_empty() && !text.contains('\n') => {
            // An `hf://models/...` reference counts as the mirrored folder it resolves to, so
            // replacing the mirror's files changes the step's fingerprint as a local path would.
            let candidate = if text.starts_with("hf://models/") {
                match crate::hub_models::resolve_model(base_dir, text) {
                    Ok(folder) => folder,
                    Err(_) => return,
                }
            } else {
                resolve_path(base_dir, text)
            };
            if candidate.exists() {
                out.push(candidate);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_existing_paths(item, base_dir, out);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values() {
                collect_existing_paths(item, base_dir, out);
            }
        }
        _ => {}
    }
}
