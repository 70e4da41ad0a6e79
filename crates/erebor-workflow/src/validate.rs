//! Each step kind validates its own `with:` block; its [`ConfigError`]s are mapped back to the
//! line and column of the offending field.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::node::PathStep;
use crate::registry::KindRegistry;
use crate::resolve::StepIndex;
use crate::schema::StepDecl;
use crate::template::{self, Expr, Segment};
use crate::workflow::PlannedStep;
use erebor_core::OutputType;
use erebor_core::config::{ConfigError, PathSegment};
use std::path::Path;

/// Runs `StepKind::validate` for every step and pushes its errors with positions.
pub fn validate_with_kinds<'a>(
    steps: &[PlannedStep],
    decl_of: &dyn Fn(&PlannedStep) -> Option<&'a StepDecl>,
    index: &StepIndex,
    registry: &KindRegistry,
    base_dir: &Path,
    errors: &mut Vec<WorkflowError>,
) {
    for step in steps {
        let Some(kind) = registry.get(&step.kind) else {
            continue;
        };
        let view = placeholder_view(&step.with, index);
        if let Err(error) = kind.validate(&view, base_dir) {
            let Some(decl) = decl_of(step) else { continue };
            errors.push(config_error(step, decl, &error));
        }
    }
}

fn config_error(step: &PlannedStep, decl: &StepDecl, error: &ConfigError) -> WorkflowError {
    let path: Vec<PathStep<'_>> = error
        .path
        .iter()
        .map(|segment| match segment {
            PathSegment::Key(key) => PathStep::Key(key.as_str()),
            PathSegment::Index(index) => PathStep::Index(*index),
        })
        .collect();
    let pos = if path.is_empty() {
        decl.with.pos
    } else {
        decl.with.locate(&path)
    };
    let field = format!("with.{}", error.path_string());
    let field = if error.path.is_empty() {
        "with".to_owned()
    } else {
        field
    };
    if !error.expected_keys.is_empty() {
        let pos = decl.with.locate_key(&path);
        let unknown = error
            .path
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        return WorkflowError::new(
            ErrorKind::UnknownKey,
            pos,
            format!(
                "unknown key `{field}` for step kind `{}` in step `{}`",
                step.kind, step.base
            ),
        )
        .help(suggestion(
            &unknown,
            error.expected_keys.iter().map(String::as_str),
            "keys",
        ));
    }
    let kind = if error.message.starts_with("invalid type")
        || error.message.starts_with("invalid value")
    {
        ErrorKind::TypeMismatch
    } else {
        ErrorKind::StepConfig
    };
    WorkflowError::new(
        kind,
        pos,
        format!(
            "`{field}` of step `{}` ({}): {}",
            step.id, step.kind, error.message
        ),
    )
    .help(format!("see the `{}` section of docs/steps.md", step.kind))
}

/// The `with:` block a kind sees at validation time: a string that is exactly one reference to
/// a metric output becomes the number 0 (its value is unknown until the run), every other
/// reference stays a placeholder string.
fn placeholder_view(with: &serde_json::Value, index: &StepIndex) -> serde_json::Value {
    match with {
        serde_json::Value::String(text) if template::has_template(text) => {
            if let Ok(segments) = template::parse(text)
                && let [
                    Segment::Expr {
                        expr: Expr::Output { step, output },
                        ..
                    },
                ] = segments.as_slice()
                && let Some(target) = index.by_id(step)
                && index.steps[target]
                    .outputs
                    .iter()
                    .any(|(name, ty)| name == output && *ty == OutputType::Metric)
            {
                return serde_json::Value::from(0);
            }
            with.clone()
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|i| placeholder_view(i, index)).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), placeholder_view(v, index)))
                .collect(),
        ),
        other => other.clone(),
    }
}
