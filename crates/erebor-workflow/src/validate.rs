//! Each step kind validates its own `with:` block; its [`ConfigError`]s are mapped back to the
//! line and column of the offending field.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::node::PathStep;
use crate::node::Pos;
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
    let pos = match path.first() {
        None => decl.with.pos,
        // A key missing from `with` itself: point at `with:`, not at whichever key comes first.
        Some(PathStep::Key(key)) if decl.with.get(key).is_none() => decl.with_pos,
        Some(_) => decl.with.locate(&path),
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
    if let Some((value, supported)) = parse_unknown_variant(&error.message) {
        return unknown_value(step, &field, pos, &value, &supported);
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

/// The error for a value outside a closed set (a device, loss, precision, schedule...), with
/// the supported values in the help and the closest one suggested.
fn unknown_value(
    step: &PlannedStep,
    field: &str,
    pos: Pos,
    value: &str,
    supported: &[String],
) -> WorkflowError {
    let listed: Vec<String> = supported.iter().map(|v| format!("`{v}`")).collect();
    let listed = listed.join(", ");
    let help = match closest_value(value, supported) {
        Some(best) => format!("did you mean `{best}`? supported values: {listed}"),
        None => format!("supported values: {listed}"),
    };
    WorkflowError::new(
        ErrorKind::TypeMismatch,
        pos,
        format!(
            "`{field}` of step `{}` ({}): unknown value `{value}`",
            step.id, step.kind
        ),
    )
    .help(help)
}

/// The supported value `value` is most likely a typo of: fewer than a third of its characters
/// differ. Stricter than the key suggestions, since values are short: `gpu` is one letter from
/// `cpu` but means `cuda:N`.
fn closest_value<'a>(value: &str, supported: &'a [String]) -> Option<&'a str> {
    supported
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(value, candidate), candidate))
        .filter(|(distance, candidate)| 3 * distance < value.len().max(candidate.len()))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// Reads serde's "unknown variant `x`, expected one of `a`, `b`" (also "expected `a` or `b`"
/// and "expected `a`"), which closed sets deserialised as enums produce.
fn parse_unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (value, rest) = rest.split_once('`')?;
    let expected = rest.strip_prefix(", expected ")?;
    let supported: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (!supported.is_empty()).then(|| (value.to_owned(), supported))
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

#[cfg(test)]
mod tests {
    use super::{closest_value, parse_unknown_variant};

    #[test]
    fn values_are_suggested_only_for_small_typos() {
        let devices = ["cpu", "tch-cpu", "cuda:N"].map(str::to_owned);
        assert_eq!(closest_value("gpu", &devices), None);
        assert_eq!(closest_value("tch_cpu", &devices), Some("tch-cpu"));
        let schedules = ["constant", "linear", "cosine"].map(str::to_owned);
        assert_eq!(closest_value("cosin", &schedules), Some("cosine"));
        assert_eq!(closest_value("exponential", &schedules), None);
    }

    #[test]
    fn serde_unknown_variant_messages_give_the_value_and_the_supported_ones() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_unknown_variant("unknown variant `gpu`, expected one of `cpu`, `cuda:N`"),
            Some(("gpu".to_owned(), owned(&["cpu", "cuda:N"])))
        );
        assert_eq!(
            parse_unknown_variant("unknown variant `x`, expected `a` or `b`"),
            Some(("x".to_owned(), owned(&["a", "b"])))
        );
        assert_eq!(
            parse_unknown_variant("unknown variant `x`, expected `a`"),
            Some(("x".to_owned(), owned(&["a"])))
        );
        assert_eq!(
            parse_unknown_variant("unknown variant `x`, there are no variants"),
            None
        );
        assert_eq!(parse_unknown_variant("invalid type: string"), None);
    }
}
