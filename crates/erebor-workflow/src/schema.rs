//! The workflow file's schema, read strictly from the node tree: unknown keys are errors.

use crate::error::{ErrorKind, WorkflowError};
use crate::executors::{ExecutorDecl, ExecutorKind, StepResources};
use crate::fields::{self, Fields};
use crate::node::{Key, Node, Pos, Value};
use crate::params::{ParamDecl, read_params};
use std::time::Duration;

/// Keys of the top-level mapping.
pub const TOP_KEYS: &[&str] = &["name", "description", "params", "executor", "steps"];
/// Keys of a step.
pub const STEP_KEYS: &[&str] = &[
    "id",
    "uses",
    "description",
    "needs",
    "with",
    "matrix",
    "retries",
    "retry_backoff",
    "timeout",
    "resources",
    "executor",
    "cache",
    "expect",
];
const RESOURCE_KEYS: &[&str] = &["gpus", "cpus", "memory", "sbatch"];

/// Default first delay between retries; it doubles each time.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(2);

/// A parsed (not yet expanded) workflow file.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowFile {
    /// The workflow's name (runs are listed by it).
    pub name: String,
    /// One paragraph on what it does.
    pub description: Option<String>,
    /// Declared params.
    pub params: Vec<ParamDecl>,
    /// `executor:` (which executor runs the steps, and its settings).
    pub executor: ExecutorDecl,
    /// Steps, in file order.
    pub steps: Vec<StepDecl>,
}

/// One step as written, before matrix expansion.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDecl {
    /// The step's id.
    pub id: String,
    /// Where the id is.
    pub id_pos: Pos,
    /// The step kind.
    pub uses: String,
    /// Where `uses:` value is.
    pub uses_pos: Pos,
    /// One line on what it does.
    pub description: Option<String>,
    /// Explicit dependencies: step ids, matrix bases or single arms.
    pub needs: Vec<(String, Pos)>,
    /// The kind's config (an empty mapping when absent).
    pub with: Node,
    /// Where the `with:` key is (the step's position when there is none): where an error
    /// about a key missing from `with` points.
    pub with_pos: Pos,
    /// Matrix axes in file order.
    pub matrix: Vec<MatrixAxis>,
    /// Retries after a retryable failure.
    pub retries: u32,
    /// First delay between retries (doubles each time).
    pub retry_backoff: Duration,
    /// Wall-clock limit per attempt.
    pub timeout: Option<Duration>,
    /// GPU slots the step needs.
    pub gpus: u32,
    /// CPUs, memory and scheduler options for a cluster executor.
    pub resources: StepResources,
    /// The step's own `executor:` (overrides the workflow's).
    pub executor: Option<ExecutorKind>,
    /// Whether a finished result with the same fingerprint may be reused.
    pub cache: bool,
    /// Checks on the step's metrics after it finishes.
    pub expect: Vec<Expectation>,
}

/// One matrix axis: `loss: [dpo, dpop]` (or a template naming a list param).
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixAxis {
    /// The axis name (`matrix.NAME` in templates).
    pub name: String,
    /// Where the axis key is.
    pub pos: Pos,
    /// The values node.
    pub values: Node,
}

/// A comparison in `expect:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Comparison {
    /// `>=`
    AtLeast,
    /// `>`
    Above,
    /// `<=`
    AtMost,
    /// `<`
    Below,
    /// `==`
    Equal,
}

impl Comparison {
    /// Whether `value` passes against `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= threshold,
            Comparison::Above => value > threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Below => value < threshold,
            #[allow(
                clippy::float_cmp,
                reason = "`equal` asks for the exact value the user wrote"
            )]
            Comparison::Equal => value == threshold,
        }
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::Above => ">",
            Comparison::AtMost => "<=",
            Comparison::Below => "<",
            Comparison::Equal => "==",
        }
    }
}

/// `expect: {eval/accuracy: ">= 0.45"}`: a metric or metric output must pass a comparison.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Expectation {
    /// An output name of metric type, or a metric key (its last value).
    pub key: String,
    /// The comparison.
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.key,
            self.comparison.symbol(),
            self.threshold
        )
    }
}

/// Reads a workflow document's node tree.
pub fn read_workflow(root: &Node, errors: &mut Vec<WorkflowError>) -> Option<WorkflowFile> {
    let top = Fields::read(root, "the workflow file", TOP_KEYS, errors)?;
    let name = top
        .require("name", "the workflow file", errors)
        .and_then(|n| fields::string(n, "`name`", errors))
        .unwrap_or_default();
    let description = top
        .get("description")
        .and_then(|n| fields::string(n, "`description`", errors));
    let params = top
        .get("params")
        .filter(|n| n.value != Value::Null)
        .map(|n| read_params(n, errors))
        .unwrap_or_default();
    let executor = top
        .get("executor")
        .map(|n| crate::executors::read_executor(n, errors))
        .unwrap_or_default();
    let mut steps = Vec::new();
    if let Some(steps_node) = top.require("steps", "the workflow file", errors) {
        match &steps_node.value {
            Value::Seq(items) if !items.is_empty() => {
                for (index, item) in items.iter().enumerate() {
                    steps.extend(read_step(index, item, errors));
                }
            }
            Value::Seq(_) => errors.push(
                WorkflowError::new(ErrorKind::TypeMismatch, steps_node.pos, "`steps` is empty")
                    .help("add at least one step with `id:` and `uses:`"),
            ),
            _ => errors.push(fields::mismatch(steps_node, "`steps`", "a list of steps")),
        }
    }
    Some(WorkflowFile {
        name,
        description,
        params,
        executor,
        steps,
    })
}

fn read_step(index: usize, node: &Node, errors: &mut Vec<WorkflowError>) -> Option<StepDecl> {
    let provisional = match node.get("id").and_then(Node::as_str) {
        Some(id) => format!("step `{id}`"),
        None => format!("step #{}", index + 1),
    };
    let what = provisional.as_str();
    let fields = Fields::read(node, what, STEP_KEYS, errors)?;
    let (id, id_node) = read_step_id(&fields, what, errors)?;
    let uses_node = fields.require("uses", what, errors)?;
    let uses = fields::string(uses_node, &format!("`uses` of {what}"), errors)?;
    let description = fields
        .get("description")
        .and_then(|n| fields::string(n, &format!("`description` of {what}"), errors));
    let needs = fields
        .get("needs")
        .map(|n| fields::string_list(n, &format!("`needs` of {what}"), errors))
        .unwrap_or_default();
    let with = read_with(fields.get("with"), node, what, errors);
    let with_pos = fields.key_pos("with").unwrap_or(node.pos);
    let matrix = fields
        .get("matrix")
        .map(|n| read_matrix(n, what, errors))
        .unwrap_or_default();
    let retries = fields
        .get("retries")
        .and_then(|n| fields::count(n, &format!("`retries` of {what}"), errors))
        .unwrap_or(0);
    let retry_backoff = fields
        .get("retry_backoff")
        .and_then(|n| fields::duration(n, &format!("`retry_backoff` of {what}"), errors))
        .unwrap_or(DEFAULT_RETRY_BACKOFF);
    let timeout = fields
        .get("timeout")
        .and_then(|n| fields::duration(n, &format!("`timeout` of {what}"), errors));
    let (gpus, resources) = read_resources(fields.get("resources"), what, errors);
    let executor = fields
        .get("executor")
        .and_then(|n| crate::executors::read_step_executor(n, what, errors));
    let cache = fields
        .get("cache")
        .and_then(|n| fields::boolean(n, &format!("`cache` of {what}"), errors))
        .unwrap_or(true);
    let expect = fields
        .get("expect")
        .map(|n| read_expect(n, what, errors))
        .unwrap_or_default();
    Some(StepDecl {
        id,
        id_pos: id_node.pos,
        uses,
        uses_pos: uses_node.pos,
        description,
        needs,
        with,
        with_pos,
        matrix,
        retries,
        retry_backoff,
        timeout,
        gpus,
        resources,
        executor,
        cache,
        expect,
    })
}

/// A step's `id`, which must be a plain name (matrix arms add their brackets), and its node.
fn read_step_id<'a>(
    fields: &Fields<'a>,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> Option<(String, &'a Node)> {
    let id_node = fields.require("id", what, errors)?;
    let id = fields::string(id_node, &format!("`id` of {what}"), errors)?;
    if !crate::template::is_name(&id) {
        errors.push(
            WorkflowError::new(
                ErrorKind::TypeMismatch,
                id_node.pos,
                format!("step id `{id}` may only use letters, digits, `_` and `-`"),
            )
            .help(
                "matrix arms get `[value]` appended automatically; do not write brackets in `id`",
            ),
        );
        return None;
    }
    Some((id, id_node))
}

/// A step's `with:` mapping; empty (at the key, or at the step when absent) when it is absent,
/// null or not a mapping (an error then).
fn read_with(
    with: Option<&Node>,
    step: &Node,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> Node {
    let empty_at = |pos| Node {
        value: Value::Map(Vec::new()),
        pos,
    };
    match with {
        Some(node) if node.value == Value::Null => empty_at(node.pos),
        Some(node) if matches!(node.value, Value::Map(_)) => node.clone(),
        Some(node) => {
            errors.push(fields::mismatch(
                node,
                &format!("`with` of {what}"),
                "a mapping",
            ));
            empty_at(node.pos)
        }
        None => empty_at(step.pos),
    }
}

/// A step's `resources:`: GPU slots, and what a cluster executor asks its scheduler for.
fn read_resources(
    node: Option<&Node>,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> (u32, StepResources) {
    let Some(fields) = node
        .and_then(|n| Fields::read(n, &format!("`resources` of {what}"), RESOURCE_KEYS, errors))
    else {
        return (0, StepResources::default());
    };
    let gpus = fields
        .get("gpus")
        .and_then(|n| fields::count(n, &format!("`resources.gpus` of {what}"), errors))
        .unwrap_or(0);
    (
        gpus,
        crate::executors::read_resources(&fields, what, errors),
    )
}

fn read_matrix(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Vec<MatrixAxis> {
    let Value::Map(entries) = &node.value else {
        errors.push(fields::mismatch(
            node,
            &format!("`matrix` of {what}"),
            "a mapping of axis to values, e.g. `{loss: [dpo, dpop]}`",
        ));
        return Vec::new();
    };
    if entries.is_empty() {
        errors.push(WorkflowError::new(
            ErrorKind::TypeMismatch,
            node.pos,
            format!("`matrix` of {what} has no axes"),
        ));
    }
    entries
        .iter()
        .filter_map(|(Key { name, pos }, values)| {
            if !crate::template::is_name(name) {
                errors.push(WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    *pos,
                    format!("matrix axis `{name}` may only use letters, digits, `_` and `-`"),
                ));
                return None;
            }
            Some(MatrixAxis {
                name: name.clone(),
                pos: *pos,
                values: values.clone(),
            })
        })
        .collect()
}

fn read_expect(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Vec<Expectation> {
    let Value::Map(entries) = &node.value else {
        errors.push(fields::mismatch(
            node,
            &format!("`expect` of {what}"),
            "a mapping of metric to a check such as `\">= 0.5\"`",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in entries {
        let parsed = match &value.value {
            Value::Str(text) => parse_check(text),
            Value::Int(_) | Value::Float(_) => value
                .to_json()
                .as_f64()
                .map(|threshold| (Comparison::Equal, threshold))
                .ok_or_else(|| "not a number".to_owned()),
            _ => Err(format!("found {}", value.type_name())),
        };
        match parsed {
            Ok((comparison, threshold)) => out.push(Expectation {
                key: key.name.clone(),
                comparison,
                threshold,
            }),
            Err(reason) => errors.push(
                WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    value.pos,
                    format!(
                        "check on `{}` in `expect` of {what} is not a comparison: {reason}",
                        key.name
                    ),
                )
                .help("write it like `\">= 0.45\"`, `\"< 2.0\"` or `\"== 1\"`"),
            ),
        }
    }
    out
}

fn parse_check(text: &str) -> Result<(Comparison, f64), String> {
    let text = text.trim();
    let (comparison, rest) = [
        (">=", Comparison::AtLeast),
        ("<=", Comparison::AtMost),
        ("==", Comparison::Equal),
        (">", Comparison::Above),
        ("<", Comparison::Below),
    ]
    .iter()
    .find_map(|(symbol, comparison)| text.strip_prefix(symbol).map(|rest| (*comparison, rest)))
    .ok_or_else(|| format!("`{text}` does not start with >=, >, <=, < or =="))?;
    let threshold: f64 = rest
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number", rest.trim()))?;
    Ok((comparison, threshold))
}
