//! Matrix fan-out: `matrix: {loss: [dpo, dpop]}` turns one step into one step per value, with
//! ids like `train[dpop]` (several axes: `train[dpo,0.1]`, axes in file order).

use crate::error::{ErrorKind, WorkflowError};
use crate::node::{Node, Value};
use crate::param_values::ParamValues;
use crate::schema::MatrixAxis;
use crate::template::{self, Expr, Segment};

/// One arm: the value of each axis, in axis order.
pub type Arm = Vec<(String, serde_json::Value)>;

/// The label of an arm as it appears between brackets in the step id.
pub fn arm_label(arm: &Arm) -> String {
    arm.iter()
        .map(|(_, value)| template::value_text(value))
        .collect::<Vec<_>>()
        .join(",")
}

/// The expanded id: `base` without a matrix, `base[label]` with one.
pub fn arm_id(base: &str, arm: &Arm) -> String {
    if arm.is_empty() {
        base.to_owned()
    } else {
        format!("{base}[{}]", arm_label(arm))
    }
}

/// Normalises an id written by a user (`train[dpo, 0.1]` → `train[dpo,0.1]`).
pub fn normalise_id(id: &str) -> String {
    match id.split_once('[') {
        Some((base, rest)) => {
            let inner = rest.trim_end_matches(']');
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            format!("{base}[{}]", parts.join(","))
        }
        None => id.to_owned(),
    }
}

/// The arms of a step: the cartesian product of its axes (one empty arm without a matrix).
pub fn expand(
    step_id: &str,
    axes: &[MatrixAxis],
    params: &ParamValues,
    errors: &mut Vec<WorkflowError>,
) -> Vec<Arm> {
    let mut arms: Vec<Arm> = vec![Vec::new()];
    for axis in axes {
        let Some(values) = axis_values(step_id, axis, params, errors) else {
            return Vec::new();
        };
        arms = arms
            .into_iter()
            .flat_map(|arm| {
                values.iter().map(move |value| {
                    let mut next = arm.clone();
                    next.push((axis.name.clone(), value.clone()));
                    next
                })
            })
            .collect();
    }
    arms
}

fn axis_values(
    step_id: &str,
    axis: &MatrixAxis,
    params: &ParamValues,
    errors: &mut Vec<WorkflowError>,
) -> Option<Vec<serde_json::Value>> {
    let what = format!("matrix axis `{}` of step `{step_id}`", axis.name);
    match written_values(axis, params, &what)
        .and_then(|values| checked_values(values, &axis.values, &what))
    {
        Ok(values) => Some(values),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// The axis's values, each with the node it was written at: a YAML list, or the list param
/// named by the axis's one template (every value then at the template).
fn written_values<'a>(
    axis: &'a MatrixAxis,
    params: &ParamValues,
    what: &str,
) -> Result<Vec<(serde_json::Value, &'a Node)>, WorkflowError> {
    match &axis.values.value {
        Value::Seq(items) => Ok(items.iter().map(|item| (item.to_json(), item)).collect()),
        Value::Str(text) if template::has_template(text) => {
            let param = template_param(text, &axis.values, what)?;
            param_list(&param, &axis.values, params, what)
        }
        _ => Err(crate::fields::mismatch(
            &axis.values,
            what,
            "a list of values",
        )),
    }
}

/// The param named by `text`, which must be exactly one `${{ params.NAME }}`.
fn template_param(text: &str, node: &Node, what: &str) -> Result<String, WorkflowError> {
    let segments = template::parse(text).map_err(|error| {
        WorkflowError::new(ErrorKind::BadTemplate, node.pos, error.message).help(error.help)
    })?;
    match segments.as_slice() {
        [
            Segment::Expr {
                expr: Expr::Param(name),
                ..
            },
        ] => Ok(name.clone()),
        _ => Err(WorkflowError::new(
            ErrorKind::BadTemplate,
            node.pos,
            format!(
                "{what} must be a list or exactly one `${{{{ params.NAME }}}}` naming a list param"
            ),
        )),
    }
}

/// The values of list param `param`, each placed at `node` (the template naming it).
fn param_list<'a>(
    param: &str,
    node: &'a Node,
    params: &ParamValues,
    what: &str,
) -> Result<Vec<(serde_json::Value, &'a Node)>, WorkflowError> {
    match params.values.get(param) {
        Some(serde_json::Value::Array(items)) => {
            Ok(items.iter().map(|item| (item.clone(), node)).collect())
        }
        Some(other) => Err(WorkflowError::new(
            ErrorKind::TypeMismatch,
            node.pos,
            format!(
                "{what} names param `{param}`, which is {} and not a list",
                json_kind(other)
            ),
        )),
        None => Err(WorkflowError::new(
            ErrorKind::UnknownReference,
            node.pos,
            format!("{what} names param `{param}`, which is not declared"),
        )
        .help(crate::error::suggestion(
            param,
            params.values.keys().map(String::as_str),
            "params",
        ))),
    }
}

/// The values once each is known to make a label (a non-empty scalar without `[`, `]` or `,`)
/// and no label repeats; there must be at least one (else the error is at `axis_node`).
fn checked_values(
    values: Vec<(serde_json::Value, &Node)>,
    axis_node: &Node,
    what: &str,
) -> Result<Vec<serde_json::Value>, WorkflowError> {
    if values.is_empty() {
        return Err(WorkflowError::new(
            ErrorKind::TypeMismatch,
            axis_node.pos,
            format!("{what} has no values"),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (value, node) in values {
        let label = template::value_text(&value);
        let scalar = matches!(
            value,
            serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
        );
        if !scalar || label.is_empty() || label.contains(['[', ']', ',']) {
            return Err(WorkflowError::new(
                ErrorKind::TypeMismatch,
                node.pos,
                format!(
                    "{what}: each value must be a non-empty string, number or boolean without `[`, `]` or `,`"
                ),
            ));
        }
        if seen.contains(&label) {
            return Err(WorkflowError::new(
                ErrorKind::TypeMismatch,
                node.pos,
                format!("{what} lists `{label}` twice"),
            ));
        }
        seen.push(label);
        out.push(value);
    }
    Ok(out)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        _ => "not a list",
    }
}

/// Whether arm `upstream` matches arm `downstream` on every axis they share.
pub fn pairs_with(upstream: &Arm, downstream: &Arm) -> bool {
    upstream.iter().all(|(axis, value)| {
        downstream
            .iter()
            .find(|(other, _)| other == axis)
            .is_none_or(|(_, other_value)| other_value == value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_pairing() {
        let dpo: Arm = vec![("loss".into(), json!("dpo"))];
        let dpop: Arm = vec![("loss".into(), json!("dpop"))];
        let dpop_beta: Arm = vec![("loss".into(), json!("dpop")), ("beta".into(), json!(0.3))];
        assert_eq!(arm_id("train", &dpop_beta), "train[dpop,0.3]");
        assert_eq!(arm_id("data", &Vec::new()), "data");
        assert!(pairs_with(&dpop, &dpop_beta));
        assert!(!pairs_with(&dpo, &dpop_beta));
        assert!(pairs_with(&dpo, &Vec::new()));
        assert_eq!(normalise_id("train[dpo, 0.3]"), "train[dpo,0.3]");
    }
}
