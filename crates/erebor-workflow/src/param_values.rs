//! Param values: defaults, `--set` overrides and environment variables; secrets masked.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::node::Pos;
use crate::params::ParamDecl;
use std::collections::BTreeMap;

/// How strictly params without a value are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingParams {
    /// A param with no default, no `--set` and no environment value is an error (run, plan).
    Error,
    /// It gets a placeholder string (validate).
    Placeholder,
}

/// The value of each param after defaults, `--set` overrides and environment variables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamValues {
    /// Name to value.
    pub values: BTreeMap<String, serde_json::Value>,
    /// Names of secret params.
    pub secret_names: Vec<String>,
}

impl ParamValues {
    /// The values with every secret masked as `***`, safe to store and print.
    pub fn redacted(&self) -> BTreeMap<String, serde_json::Value> {
        self.values
            .iter()
            .map(|(name, value)| {
                let shown = if self.secret_names.contains(name) {
                    serde_json::Value::String("***".to_owned())
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect()
    }

    /// The text of every secret value, for masking logs.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_names
            .iter()
            .filter_map(|name| self.values.get(name))
            .map(crate::template::value_text)
            .filter(|text| !text.is_empty())
            .collect()
    }

    /// The secret params as name → text, handed to step processes through their environment.
    pub fn secrets(&self) -> BTreeMap<String, String> {
        self.secret_names
            .iter()
            .filter_map(|name| {
                self.values
                    .get(name)
                    .map(|value| (name.clone(), crate::template::value_text(value)))
            })
            .collect()
    }
}

/// Applies `--set NAME=VALUE` overrides and environment values to the declarations.
pub fn resolve_values(
    params: &[ParamDecl],
    overrides: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    missing: MissingParams,
    errors: &mut Vec<WorkflowError>,
) -> ParamValues {
    let mut result = ParamValues {
        values: override_values(params, overrides, errors),
        secret_names: Vec::new(),
    };
    for decl in params {
        if decl.secret {
            result.secret_names.push(decl.name.clone());
        }
        if result.values.contains_key(&decl.name) {
            continue;
        }
        if let Some(value) = fallback_value(decl, env, missing, errors) {
            result.values.insert(decl.name.clone(), value);
        }
    }
    result
}

/// The values given by `--set` flags; a flag naming an undeclared param, or a value that does
/// not parse as its param's type, is an error and gives no value.
fn override_values(
    params: &[ParamDecl],
    overrides: &[(String, String)],
    errors: &mut Vec<WorkflowError>,
) -> BTreeMap<String, serde_json::Value> {
    let mut values = BTreeMap::new();
    for (name, text) in overrides {
        let Some(decl) = params.iter().find(|p| &p.name == name) else {
            errors.push(
                WorkflowError::new(
                    ErrorKind::BadParam,
                    Pos::default(),
                    format!("`--set {name}=...` names a param the workflow does not declare"),
                )
                .help(suggestion(
                    name,
                    params.iter().map(|p| p.name.as_str()),
                    "params",
                )),
            );
            continue;
        };
        match decl.ty.parse_cli(text) {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(reason) => errors.push(WorkflowError::new(
                ErrorKind::BadParam,
                Pos::default(),
                format!(
                    "`--set {name}=...`: param `{name}` is of type `{}`: {reason}",
                    decl.ty.as_str()
                ),
            )),
        }
    }
    values
}

/// The value of a param no `--set` gives: its environment variable's (an error if it does not
/// parse, then falling through), else its default, else by `missing` an error or a placeholder.
fn fallback_value(
    decl: &ParamDecl,
    env: &dyn Fn(&str) -> Option<String>,
    missing: MissingParams,
    errors: &mut Vec<WorkflowError>,
) -> Option<serde_json::Value> {
    if let Some(text) = decl.env.as_deref().and_then(env) {
        match decl.ty.parse_cli(&text) {
            Ok(value) => return Some(value),
            Err(reason) => errors.push(WorkflowError::new(
                ErrorKind::BadParam,
                decl.pos,
                format!(
                    "${} (for param `{}`): {reason}",
                    decl.env.as_deref().unwrap_or_default(),
                    decl.name
                ),
            )),
        }
    }
    if let Some(default) = &decl.default {
        return Some(default.clone());
    }
    match missing {
        MissingParams::Error => {
            let mut help = format!("pass `--set {}=...`", decl.name);
            if let Some(var) = &decl.env {
                help.push_str(&format!(" or set ${var}"));
            }
            errors.push(
                WorkflowError::new(
                    ErrorKind::BadParam,
                    decl.pos,
                    format!("param `{}` has no value", decl.name),
                )
                .help(help),
            );
            None
        }
        MissingParams::Placeholder => Some(serde_json::Value::String(format!("<{}>", decl.name))),
    }
}

/// A `--set` flag that is not `NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`--set {flag}` must look like `--set name=value`")]
pub struct SetFlagError {
    /// The flag's text.
    pub flag: String,
}

/// Splits `NAME=VALUE` from a `--set` flag.
pub fn parse_set_flag(flag: &str) -> Result<(String, String), SetFlagError> {
    match flag.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(SetFlagError {
            flag: flag.to_owned(),
        }),
    }
}
