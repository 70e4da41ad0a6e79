//! Workflow params: typed declarations with defaults, `--set` overrides, secrets.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::fields::{self, Fields};
use crate::node::{Node, Pos, Value};

/// The type of a param.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// `true` / `false`.
    Bool,
    /// A file or folder path (text; relative to the workflow file's folder).
    Path,
    /// A list of scalars (e.g. matrix values).
    List,
}

impl ParamType {
    /// The name used in `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::Path => "path",
            ParamType::List => "list",
        }
    }

    const ALL: [ParamType; 6] = [
        ParamType::String,
        ParamType::Int,
        ParamType::Float,
        ParamType::Bool,
        ParamType::Path,
        ParamType::List,
    ];

    fn infer(node: &Node) -> Option<Self> {
        Some(match node.value {
            Value::Str(_) => ParamType::String,
            Value::Int(_) => ParamType::Int,
            Value::Float(_) => ParamType::Float,
            Value::Bool(_) => ParamType::Bool,
            Value::Seq(_) => ParamType::List,
            Value::Null | Value::Map(_) => return None,
        })
    }

    /// Checks and normalises a JSON value for this type (an int is accepted as a float).
    pub fn coerce(self, value: &serde_json::Value) -> Result<serde_json::Value, ParamValueError> {
        use serde_json::Value as J;
        let ok = match (self, value) {
            (ParamType::Int, J::Number(n)) => n.is_i64() || n.is_u64(),
            (ParamType::Float, J::Number(n)) => {
                return Ok(J::from(n.as_f64().unwrap_or_default()));
            }
            (ParamType::String | ParamType::Path, J::String(_)) | (ParamType::Bool, J::Bool(_)) => {
                true
            }
            (ParamType::List, J::Array(items)) => items
                .iter()
                .all(|item| matches!(item, J::String(_) | J::Number(_) | J::Bool(_))),
            _ => false,
        };
        if ok {
            Ok(value.clone())
        } else {
            Err(ParamValueError::WrongType {
                expected: self.describe(),
                found: json_type(value),
            })
        }
    }

    /// Parses a `--set` value for this type.
    pub fn parse_cli(self, text: &str) -> Result<serde_json::Value, ParamValueError> {
        let text_owned = || text.to_owned();
        match self {
            ParamType::String | ParamType::Path => Ok(serde_json::Value::String(text.to_owned())),
            ParamType::Int => text
                .trim()
                .parse::<i64>()
                .map(serde_json::Value::from)
                .map_err(|_| ParamValueError::NotWholeNumber(text_owned())),
            ParamType::Float => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(serde_json::Value::from)
                .ok_or_else(|| ParamValueError::NotNumber(text_owned())),
            ParamType::Bool => match text.trim() {
                "true" => Ok(serde_json::Value::Bool(true)),
                "false" => Ok(serde_json::Value::Bool(false)),
                _ => Err(ParamValueError::NotBool(text_owned())),
            },
            ParamType::List => {
                let node = crate::node::parse(text).map_err(|e| ParamValueError::NotList {
                    text: text_owned(),
                    column: e.location().map(|l| l.column()),
                })?;
                self.coerce(&node.to_json())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ParamType::String | ParamType::Path => "a string",
            ParamType::Int => "a whole number",
            ParamType::Float => "a number",
            ParamType::Bool => "`true` or `false`",
            ParamType::List => "a list of scalars",
        }
    }
}

/// Why a value does not fit a param's type; the message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamValueError {
    /// A value of another JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the type takes (`a whole number`, …).
        expected: &'static str,
        /// What was given.
        found: &'static str,
    },
    /// An `int` param's text that is not an integer.
    #[error("`{0}` is not a whole number")]
    NotWholeNumber(String),
    /// A `float` param's text that is not a finite number.
    #[error("`{0}` is not a number")]
    NotNumber(String),
    /// A `bool` param's text other than `true` / `false`.
    #[error("`{0}` is not `true` or `false`")]
    NotBool(String),
    /// A `list` param's text that is not YAML.
    #[error(
        "`{text}` is not a YAML list such as `[dpo, dpop]`: {}",
        column.map(|c| format!("column {c}")).unwrap_or_default()
    )]
    NotList {
        /// The text.
        text: String,
        /// Where the YAML parser stopped.
        column: Option<u64>,
    },
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a number",
        serde_json::Value::Number(_) => "a whole number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// One declared param.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Its name, used as `${{ params.NAME }}` and `--set NAME=...`.
    pub name: String,
    /// Where it is declared.
    pub pos: Pos,
    /// Its type.
    pub ty: ParamType,
    /// The default, if any.
    pub default: Option<serde_json::Value>,
    /// Never stored or logged; masked as `***`.
    pub secret: bool,
    /// An environment variable that supplies the value when `--set` does not.
    pub env: Option<String>,
    /// One line on what it is.
    pub description: Option<String>,
}

const PARAM_KEYS: &[&str] = &["type", "default", "secret", "env", "description"];

/// Reads the `params:` mapping.
pub fn read_params(node: &Node, errors: &mut Vec<WorkflowError>) -> Vec<ParamDecl> {
    let Value::Map(entries) = &node.value else {
        errors.push(fields::mismatch(
            node,
            "`params`",
            "a mapping of name to default or declaration",
        ));
        return Vec::new();
    };
    let mut params = Vec::new();
    for (key, value) in entries {
        if !crate::template::is_name(&key.name) {
            errors.push(WorkflowError::new(
                ErrorKind::TypeMismatch,
                key.pos,
                format!(
                    "param name `{}` may only use letters, digits, `_` and `-`",
                    key.name
                ),
            ));
            continue;
        }
        let what = format!("param `{}`", key.name);
        let decl = if let Value::Map(_) = value.value {
            read_declaration(&key.name, key.pos, value, &what, errors)
        } else {
            match ParamType::infer(value) {
                Some(ty) => Some(ParamDecl {
                    name: key.name.clone(),
                    pos: key.pos,
                    ty,
                    default: ty.coerce(&value.to_json()).ok(),
                    secret: false,
                    env: None,
                    description: None,
                }),
                None => {
                    errors.push(
                        WorkflowError::new(
                            ErrorKind::TypeMismatch,
                            value.pos,
                            format!("{what} has no default and no type"),
                        )
                        .help(format!(
                            "write `{}: {{type: string}}` or give a default value",
                            key.name
                        )),
                    );
                    None
                }
            }
        };
        params.extend(decl);
    }
    params
}

fn read_declaration(
    name: &str,
    pos: Pos,
    node: &Node,
    what: &str,
    errors: &mut Vec<WorkflowError>,
) -> Option<ParamDecl> {
    let fields = Fields::read(node, what, PARAM_KEYS, errors)?;
    let declared_type = match fields.get("type") {
        Some(type_node) => {
            let text = fields::string(type_node, &format!("`type` of {what}"), errors)?;
            match ParamType::ALL.iter().find(|ty| ty.as_str() == text) {
                Some(ty) => Some(*ty),
                None => {
                    errors.push(
                        WorkflowError::new(
                            ErrorKind::TypeMismatch,
                            type_node.pos,
                            format!("unknown param type `{text}` for {what}"),
                        )
                        .help(suggestion(
                            &text,
                            ParamType::ALL.iter().map(|t| t.as_str()),
                            "types",
                        )),
                    );
                    return None;
                }
            }
        }
        None => None,
    };
    let default_node = fields.get("default").filter(|n| n.value != Value::Null);
    let ty = match (declared_type, default_node) {
        (Some(ty), _) => ty,
        (None, Some(default)) => ParamType::infer(default).unwrap_or(ParamType::String),
        (None, None) => ParamType::String,
    };
    let default = match default_node {
        Some(default) => match ty.coerce(&default.to_json()) {
            Ok(value) => Some(value),
            Err(reason) => {
                errors.push(WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    default.pos,
                    format!(
                        "default of {what} does not match its type `{}`: {reason}",
                        ty.as_str()
                    ),
                ));
                return None;
            }
        },
        None => None,
    };
    let secret = fields
        .get("secret")
        .and_then(|n| fields::boolean(n, &format!("`secret` of {what}"), errors))
        .unwrap_or(false);
    if secret
        && default.is_some()
        && let Some(default) = default_node
    {
        errors.push(
            WorkflowError::new(
                ErrorKind::BadParam,
                default.pos,
                format!("secret {what} has a default in the file, where it would be stored with every run"),
            )
            .help(format!("remove `default:` and pass the value with `--set {name}=...` or `env: VARIABLE`")),
        );
    }
    let env = fields
        .get("env")
        .and_then(|n| fields::string(n, &format!("`env` of {what}"), errors));
    let description = fields
        .get("description")
        .and_then(|n| fields::string(n, &format!("`description` of {what}"), errors));
    Some(ParamDecl {
        name: name.to_owned(),
        pos,
        ty,
        default,
        secret,
        env,
        description,
    })
}
