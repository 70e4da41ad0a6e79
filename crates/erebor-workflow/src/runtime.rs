//! The last template passes, when a step is about to run: the runner substitutes the outputs of
//! finished steps, and the step process substitutes secret params from its environment.

use crate::template::{self, Expr, Substitution};
use erebor_core::{OutputValue, StepId};
use std::collections::BTreeMap;

/// A template that cannot be resolved at run time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve `{expr}`: {reason}")]
pub struct RuntimeTemplateError {
    /// The expression.
    pub expr: String,
    /// Why.
    pub reason: String,
}

/// Replaces `${{ steps.ID.outputs.NAME }}` with the outputs of finished steps. Secret params stay.
pub fn substitute_outputs(
    with: &serde_json::Value,
    outputs: &dyn Fn(&StepId, &str) -> Option<OutputValue>,
) -> Result<serde_json::Value, RuntimeTemplateError> {
    map_strings(with, &mut |text| {
        let segments = parse(text)?;
        template::render(&segments, |expr| match expr {
            Expr::Output { step, output } => match outputs(&StepId::new(step.clone()), output) {
                Some(OutputValue::Path(path)) => Ok(Substitution::Value(
                    serde_json::Value::String(path.display().to_string()),
                )),
                Some(OutputValue::Metric(value)) => {
                    Ok(Substitution::Value(serde_json::Value::from(value)))
                }
                Some(OutputValue::Text(text)) => {
                    Ok(Substitution::Value(serde_json::Value::String(text)))
                }
                None => Err(RuntimeTemplateError {
                    expr: expr.to_string(),
                    reason: format!("step `{step}` finished without output `{output}`"),
                }),
            },
            other => Ok(Substitution::Keep(other.clone())),
        })
    })
}

/// Replaces secret params with their values and turns `$${{` escapes into `${{`; any other
/// template left is an error. Runs in the step process, so secrets never reach a file.
pub fn finalize(
    with: &serde_json::Value,
    secrets: &BTreeMap<String, String>,
) -> Result<serde_json::Value, RuntimeTemplateError> {
    map_strings(with, &mut |text| {
        let segments = parse(text)?;
        template::render_final(&segments, |expr| {
            match expr {
            Expr::Param(name) => secrets
                .get(name)
                .map(|value| Substitution::Value(serde_json::Value::String(value.clone())))
                .ok_or_else(|| RuntimeTemplateError {
                    expr: expr.to_string(),
                    reason: format!(
                        "secret param `{name}` was not handed to the step process (pass it with --set or its env variable)"
                    ),
                }),
            other => Err(RuntimeTemplateError {
                expr: other.to_string(),
                reason: "it should have been resolved before the step started".to_owned(),
            }),
        }
        })
    })
}

/// The template segments of one string, a syntax error naming the expression.
fn parse(text: &str) -> Result<Vec<template::Segment>, RuntimeTemplateError> {
    template::parse(text).map_err(|e| RuntimeTemplateError {
        expr: e.source_text.clone(),
        reason: e.message,
    })
}

fn map_strings(
    value: &serde_json::Value,
    f: &mut dyn FnMut(&str) -> Result<serde_json::Value, RuntimeTemplateError>,
) -> Result<serde_json::Value, RuntimeTemplateError> {
    Ok(match value {
        serde_json::Value::String(text) if template::has_template(text) => f(text)?,
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| map_strings(item, f))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), map_strings(v, f)?)))
                .collect::<Result<_, RuntimeTemplateError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_then_secrets_resolve_to_the_final_config() {
        let planned = json!({
            "model": "${{ steps.train[dpop].outputs.model }}",
            "note": "loss=${{ steps.train[dpop].outputs.loss }} key=${{ params.api_key }}",
            "literal": "$${{ kept }}",
            "n": 3
        });
        let outputs = |step: &StepId, name: &str| match (step.as_str(), name) {
            ("train[dpop]", "model") => Some(OutputValue::Path("/r/train-dpop/model".into())),
            ("train[dpop]", "loss") => Some(OutputValue::Metric(0.25)),
            _ => None,
        };
        let with = substitute_outputs(&planned, &outputs).unwrap();
        assert_eq!(with["model"], json!("/r/train-dpop/model"));
        assert_eq!(with["note"], json!("loss=0.25 key=${{ params.api_key }}"));
        let secrets = BTreeMap::from([("api_key".to_owned(), "sk-1".to_owned())]);
        let last = finalize(&with, &secrets).unwrap();
        assert_eq!(
            last,
            json!({"model": "/r/train-dpop/model", "note": "loss=0.25 key=sk-1", "literal": "${{ kept }}", "n": 3})
        );
    }

    #[test]
    fn a_missing_output_names_the_step() {
        let error =
            substitute_outputs(&json!("${{ steps.a.outputs.b }}"), &|_, _| None).unwrap_err();
        assert!(
            error
                .reason
                .contains("step `a` finished without output `b`"),
            "{error}"
        );
    }
}
