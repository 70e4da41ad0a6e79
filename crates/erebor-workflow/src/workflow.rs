//! Loading a workflow: parse, check, expand the matrix, resolve templates, order the DAG and
//! let each step kind validate its own `with:` block.

use crate::error::{ErrorKind, WorkflowError, WorkflowErrors, suggestion, syntax_error};
use crate::executors::{ExecutorDecl, ExecutorKind, StepResources};
use crate::matrix::{self, Arm};
use crate::node::{self, Pos};
use crate::param_values::{self, MissingParams, ParamValues};
use crate::params::ParamDecl;
use crate::registry::KindRegistry;
use crate::resolve::{IndexedStep, Resolver, SourceText, StepIndex};
use crate::schema::{self, Expectation, StepDecl};
use crate::validate::validate_with_kinds;
use erebor_core::StepId;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to load a workflow.
pub struct LoadOptions<'a> {
    /// `--set NAME=VALUE` overrides.
    pub overrides: Vec<(String, String)>,
    /// Reads environment variables for params declared with `env:`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether params without a value are errors.
    pub missing: MissingParams,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self {
            overrides: Vec::new(),
            env: &|name| std::env::var(name).ok(),
            missing: MissingParams::Error,
        }
    }
}

/// A loaded, validated workflow with its steps expanded and in topological order.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// The workflow's `name:`.
    pub name: String,
    /// Its `description:`.
    pub description: Option<String>,
    /// The file as given.
    pub file: PathBuf,
    /// The folder relative paths in `with:` are relative to.
    pub base_dir: PathBuf,
    /// The file's text.
    pub text: Arc<str>,
    /// SHA-256 of the text.
    pub text_hash: String,
    /// Declared params.
    pub param_decls: Vec<ParamDecl>,
    /// Param values after overrides.
    pub params: ParamValues,
    /// `executor:`: which executor runs the steps (unless the command line says), and its
    /// settings.
    pub executor: ExecutorDecl,
    /// Expanded steps, dependencies first.
    pub steps: Vec<PlannedStep>,
}

/// One expanded step, ready to fingerprint and run.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    /// `train[dpop]`, or the plain id without a matrix.
    pub id: StepId,
    /// The id as written in the file.
    pub base: String,
    /// Axis values of this arm (empty without a matrix).
    pub arm: Arm,
    /// The step kind.
    pub kind: String,
    /// One line on what it does.
    pub description: Option<String>,
    /// Steps that must finish first (explicit `needs` and referenced outputs), in plan order.
    pub needs: Vec<StepId>,
    /// The `with:` block with params and matrix values substituted; output references (canonical,
    /// one arm) and secret params remain as `${{ ... }}` templates.
    pub with: serde_json::Value,
    /// Retries after a retryable failure.
    pub retries: u32,
    /// First delay between retries.
    pub retry_backoff: Duration,
    /// Wall-clock limit per attempt.
    pub timeout: Option<Duration>,
    /// GPU slots.
    pub gpus: u32,
    /// CPUs, memory and scheduler options for a cluster executor (GPUs are `gpus`).
    pub resources: StepResources,
    /// The step's own executor, overriding the workflow's (e.g. a judge step that needs the
    /// internet runs `local` while the rest runs on Slurm).
    pub executor: Option<ExecutorKind>,
    /// Whether cached results may be reused.
    pub cache: bool,
    /// Checks on its metrics.
    pub expect: Vec<Expectation>,
    /// Where the step is declared.
    pub pos: Pos,
}

impl Workflow {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.id.as_str() == id)
    }

    /// The steps whose id or base id is `selector` (a base selects every arm).
    pub fn select(&self, selector: &str) -> Vec<&PlannedStep> {
        let selector = matrix::normalise_id(selector);
        self.steps
            .iter()
            .filter(|s| s.id.as_str() == selector || s.base == selector)
            .collect()
    }

    /// Every step that depends on `id`, directly or not, in plan order.
    pub fn descendants(&self, id: &StepId) -> Vec<StepId> {
        let mut found: BTreeSet<StepId> = BTreeSet::new();
        found.insert(id.clone());
        let mut out = Vec::new();
        for step in &self.steps {
            if step.needs.iter().any(|n| found.contains(n)) {
                found.insert(step.id.clone());
                out.push(step.id.clone());
            }
        }
        out
    }
}

/// Loads and validates a workflow file.
pub fn load_file(
    path: &Path,
    registry: &KindRegistry,
    options: &LoadOptions<'_>,
) -> Result<Workflow, WorkflowErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        WorkflowErrors::new(
            path,
            Arc::from(""),
            vec![
                WorkflowError::new(
                    ErrorKind::Io,
                    Pos::default(),
                    format!("cannot read the workflow file: {error}"),
                )
                .help("check the path; workflow files are YAML, e.g. workflows/quickstart.yaml"),
            ],
        )
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base_dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_owned());
    load_str(path, &text, &base_dir, registry, options)
}

/// Loads and validates workflow text; `file` is only used in messages.
pub fn load_str(
    file: &Path,
    text: &str,
    base_dir: &Path,
    registry: &KindRegistry,
    options: &LoadOptions<'_>,
) -> Result<Workflow, WorkflowErrors> {
    let source: Arc<str> = Arc::from(text);
    let fail = |errors: Vec<WorkflowError>| WorkflowErrors::new(file, Arc::clone(&source), errors);
    let root = node::parse(text).map_err(|error| fail(vec![syntax_error(&error)]))?;
    let mut errors = Vec::new();
    let Some(parsed) = schema::read_workflow(&root, &mut errors) else {
        return Err(fail(errors));
    };
    let params = param_values::resolve_values(
        &parsed.params,
        &options.overrides,
        options.env,
        options.missing,
        &mut errors,
    );
    check_ids_and_kinds(&parsed.steps, registry, &mut errors);
    if !errors.is_empty() {
        return Err(fail(errors));
    }

    let (index, origin) = expand_matrices(&parsed.steps, registry, &params, &mut errors);
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let (withs, deps) = resolve_steps(&parsed.steps, &index, &origin, &params, text, &mut errors);
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let order = match crate::dag::topological_order(&deps) {
        Ok(order) => order,
        Err(cycle) => {
            return Err(fail(vec![cycle_error(
                &cycle,
                &index,
                &origin,
                &parsed.steps,
            )]));
        }
    };
    let expanded = Expanded {
        decls: &parsed.steps,
        index: &index,
        origin: &origin,
    };
    let steps = planned_steps(&expanded, &order, &withs, &deps);

    let decl_of = |step: &PlannedStep| parsed.steps.iter().find(|d| d.id == step.base);
    validate_with_kinds(&steps, &decl_of, &index, registry, base_dir, &mut errors);
    if !errors.is_empty() {
        return Err(fail(errors));
    }

    Ok(Workflow {
        name: parsed.name,
        description: parsed.description,
        file: file.to_owned(),
        base_dir: base_dir.to_owned(),
        text_hash: hex::encode(Sha256::digest(text.as_bytes())),
        text: source.clone(),
        param_decls: parsed.params,
        params,
        executor: parsed.executor,
        steps,
    })
}

/// The steps after matrix expansion: each expanded step's declaration is `decls[origin[i]]`.
struct Expanded<'a> {
    decls: &'a [StepDecl],
    index: &'a StepIndex,
    origin: &'a [usize],
}

/// Expands matrices into the index that templates and needs resolve against, and for each
/// expanded step the index of its declaration.
fn expand_matrices(
    decls: &[StepDecl],
    registry: &KindRegistry,
    params: &ParamValues,
    errors: &mut Vec<WorkflowError>,
) -> (StepIndex, Vec<usize>) {
    let mut index = StepIndex { steps: Vec::new() };
    let mut origin: Vec<usize> = Vec::new();
    for (decl_index, decl) in decls.iter().enumerate() {
        let raw_with = decl.with.to_json();
        let outputs = registry
            .get(&decl.uses)
            .map(|kind| kind.outputs_for(&raw_with))
            .unwrap_or_default();
        for arm in matrix::expand(&decl.id, &decl.matrix, params, errors) {
            index.steps.push(IndexedStep {
                id: matrix::arm_id(&decl.id, &arm),
                base: decl.id.clone(),
                arm,
                outputs: outputs.clone(),
            });
            origin.push(decl_index);
        }
    }
    (index, origin)
}

/// Resolves each expanded step's templates; returns its `with:` and the steps it depends on
/// (referenced outputs and `needs:`).
fn resolve_steps(
    decls: &[StepDecl],
    index: &StepIndex,
    origin: &[usize],
    params: &ParamValues,
    text: &str,
    errors: &mut Vec<WorkflowError>,
) -> (Vec<serde_json::Value>, Vec<Vec<usize>>) {
    let mut withs = Vec::with_capacity(index.steps.len());
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(index.steps.len());
    for (current, &decl_index) in origin.iter().enumerate() {
        let decl = &decls[decl_index];
        let mut resolver = Resolver {
            params,
            index,
            source: SourceText(text),
            current,
            errors: Vec::new(),
            deps: BTreeSet::new(),
        };
        let with = resolver.resolve(&decl.with);
        let mut step_deps = resolver.deps;
        errors.extend(resolver.errors);
        needs_targets(decl, index, current, &mut step_deps, errors);
        withs.push(with);
        deps.push(step_deps.into_iter().collect());
    }
    (withs, deps)
}

/// Adds the targets of expanded step `current`'s `needs:` to `deps`; a reference to no step is
/// an error.
fn needs_targets(
    decl: &StepDecl,
    index: &StepIndex,
    current: usize,
    deps: &mut BTreeSet<usize>,
    errors: &mut Vec<WorkflowError>,
) {
    for (reference, pos) in &decl.needs {
        match index.targets(reference, &index.steps[current].arm) {
            Ok(targets) => deps.extend(targets),
            Err(reason) => {
                let base = reference.split('[').next().unwrap_or_default();
                errors.push(
                    WorkflowError::new(
                        ErrorKind::MissingDependency,
                        *pos,
                        format!("step `{}` needs `{reference}`, but {reason}", decl.id),
                    )
                    .help(suggestion(base, index.bases(), "steps")),
                );
            }
        }
    }
}

/// The expanded steps in `order`, each with its resolved `with:` and its dependencies in plan
/// order.
fn planned_steps(
    expanded: &Expanded<'_>,
    order: &[usize],
    withs: &[serde_json::Value],
    deps: &[Vec<usize>],
) -> Vec<PlannedStep> {
    let index = expanded.index;
    let mut steps = Vec::with_capacity(order.len());
    for &i in order {
        let decl = &expanded.decls[expanded.origin[i]];
        let mut needs: Vec<usize> = deps[i].clone();
        needs.sort_by_key(|d| order.iter().position(|o| o == d));
        steps.push(PlannedStep {
            id: StepId::new(index.steps[i].id.clone()),
            base: decl.id.clone(),
            arm: index.steps[i].arm.clone(),
            kind: decl.uses.clone(),
            description: decl.description.clone(),
            needs: needs
                .into_iter()
                .map(|d| StepId::new(index.steps[d].id.clone()))
                .collect(),
            with: withs[i].clone(),
            retries: decl.retries,
            retry_backoff: decl.retry_backoff,
            timeout: decl.timeout,
            gpus: decl.gpus,
            resources: decl.resources.clone(),
            executor: decl.executor,
            cache: decl.cache,
            expect: decl.expect.clone(),
            pos: decl.id_pos,
        });
    }
    steps
}

fn check_ids_and_kinds(
    steps: &[StepDecl],
    registry: &KindRegistry,
    errors: &mut Vec<WorkflowError>,
) {
    for (i, step) in steps.iter().enumerate() {
        if let Some(first) = steps[..i].iter().find(|s| s.id == step.id) {
            errors.push(
                WorkflowError::new(
                    ErrorKind::DuplicateStep,
                    step.id_pos,
                    format!("step id `{}` is used twice", step.id),
                )
                .note(format!("first used at line {}", first.id_pos.line))
                .help("give each step its own id"),
            );
        }
        if registry.get(&step.uses).is_none() {
            errors.push(
                WorkflowError::new(
                    ErrorKind::UnknownStepKind,
                    step.uses_pos,
                    format!("step `{}` uses unknown step kind `{}`", step.id, step.uses),
                )
                .help(format!(
                    "{} (`erebor kinds` lists them)",
                    suggestion(&step.uses, registry.names(), "kinds")
                )),
            );
        }
    }
}

fn cycle_error(
    cycle: &[usize],
    index: &StepIndex,
    origin: &[usize],
    decls: &[StepDecl],
) -> WorkflowError {
    let names: Vec<&str> = cycle.iter().map(|&i| index.steps[i].id.as_str()).collect();
    let first = decls[origin[cycle[0]]].id_pos;
    let mut error = WorkflowError::new(
        ErrorKind::Cycle,
        first,
        format!(
            "the steps depend on each other in a cycle: {}",
            names.join(" → ")
        ),
    )
    .help("remove one of these dependencies (in `needs:` or a `${{ steps... }}` reference)");
    for pair in cycle.windows(2) {
        let decl = &decls[origin[pair[0]]];
        error = error.note(format!(
            "`{}` (line {}) needs `{}`",
            index.steps[pair[0]].id, decl.id_pos.line, index.steps[pair[1]].id
        ));
    }
    error
}
