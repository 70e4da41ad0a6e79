//! Typed parsing of a step's `with:` block.
//!
//! Each step kind owns a config struct (`#[serde(deny_unknown_fields)]`) and parses the resolved
//! `with:` JSON through [`parse_with`]. The error carries the path of the offending field, so the
//! workflow crate can point at its line and column in the YAML file.

use serde::de::DeserializeOwned;
use std::fmt;

/// One segment of a path into the `with:` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(key) => f.write_str(key),
            PathSegment::Index(index) => write!(f, "{index}"),
        }
    }
}

/// A problem with one field of a step's `with:` block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", display_path(.path))]
pub struct ConfigError {
    /// Where in `with:` the problem is; empty for the block itself.
    pub path: Vec<PathSegment>,
    /// What is wrong, and what to do about it.
    pub message: String,
    /// For an unknown key: the keys that would have been accepted.
    pub expected_keys: Vec<String>,
}

impl ConfigError {
    /// An error about the field at `path`.
    pub fn at(path: Vec<PathSegment>, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
            expected_keys: Vec::new(),
        }
    }

    /// An error about a top-level key of the `with:` block.
    pub fn field(key: &str, message: impl Into<String>) -> Self {
        Self::at(vec![PathSegment::Key(key.to_owned())], message)
    }

    /// The same error about a field nested under `prefix` (a sub-config's check, placed in the
    /// block that holds it).
    #[must_use]
    pub fn within(mut self, prefix: &[PathSegment]) -> Self {
        self.path.splice(0..0, prefix.iter().cloned());
        self
    }

    /// The path as `a.b.0.c`, or `with` when empty.
    pub fn path_string(&self) -> String {
        display_path(&self.path)
    }
}

fn display_path(path: &[PathSegment]) -> String {
    if path.is_empty() {
        return "with".to_owned();
    }
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Deserialises a step's resolved `with:` block into the kind's config type.
///
/// Unknown keys (with `deny_unknown_fields`), missing keys and type mismatches become a
/// [`ConfigError`] naming the field path; for unknown keys the accepted keys are listed in
/// [`ConfigError::expected_keys`] so callers can suggest the closest one.
pub fn parse_with<T: DeserializeOwned>(with: &serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(with).map_err(|error| {
        let mut path: Vec<PathSegment> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(PathSegment::Index(*index)),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(PathSegment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let message = error.inner().to_string();
        let expected_keys = parse_unknown_field(&message)
            .map(|(unknown, expected)| {
                let last_is_unknown =
                    matches!(path.last(), Some(PathSegment::Key(key)) if *key == unknown);
                if !last_is_unknown {
                    path.push(PathSegment::Key(unknown));
                }
                expected
            })
            .unwrap_or_default();
        ConfigError {
            path,
            message,
            expected_keys,
        }
    })
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Loss {
        beta: f64,
        lambda: Option<f64>,
        #[serde(default)]
        arms: Vec<Arm>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Arm {
        name: String,
    }

    #[test]
    fn unknown_key_names_the_key_and_the_accepted_ones() {
        let error = parse_with::<Loss>(&json!({"beta": 0.3, "lamda": 50})).unwrap_err();
        assert_eq!(error.path_string(), "lamda");
        assert_eq!(error.expected_keys, vec!["beta", "lambda", "arms"]);
    }

    #[test]
    fn type_mismatch_names_the_nested_field() {
        let error = parse_with::<Loss>(&json!({"beta": 0.3, "arms": [{"name": "a"}, {"name": 3}]}))
            .unwrap_err();
        assert_eq!(error.path_string(), "arms.1.name");
        assert!(
            error.message.contains("expected a string"),
            "{}",
            error.message
        );
    }

    #[test]
    fn missing_key_is_reported_on_the_block() {
        let error = parse_with::<Loss>(&json!({})).unwrap_err();
        assert!(
            error.message.contains("missing field `beta`"),
            "{}",
            error.message
        );
    }
}
