//! Strict reading of YAML mappings: unknown keys are errors with the closest valid key, and
//! each typed getter reports a type mismatch at the value's position.

use crate::error::{ErrorKind, WorkflowError, suggestion};
use crate::node::{Key, Node, Pos, Value};
use std::time::Duration;

/// The entries of one mapping, checked against the keys it may have.
pub struct Fields<'a> {
    node: &'a Node,
    entries: &'a [(Key, Node)],
    unknown: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping with keys from `allowed`; unknown keys and a non-mapping value
    /// are pushed to `errors` (`what` names the mapping in messages, e.g. "step `train`").
    pub fn read(
        node: &'a Node,
        what: &str,
        allowed: &[&str],
        errors: &mut Vec<WorkflowError>,
    ) -> Option<Self> {
        let Value::Map(entries) = &node.value else {
            errors.push(WorkflowError::new(
                ErrorKind::TypeMismatch,
                node.pos,
                format!("{what} must be a mapping, found {}", node.type_name()),
            ));
            return None;
        };
        let mut unknown = Vec::new();
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                unknown.push(key.name.as_str());
                errors.push(
                    WorkflowError::new(
                        ErrorKind::UnknownKey,
                        key.pos,
                        format!("unknown key `{}` in {what}", key.name),
                    )
                    .help(suggestion(
                        &key.name,
                        allowed.iter().copied(),
                        "keys",
                    )),
                );
            }
        }
        Some(Self {
            node,
            entries,
            unknown,
        })
    }

    /// The mapping node itself.
    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// Where `key` itself is written (not its value).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k.pos)
    }

    /// The value of a required `key`; its absence is pushed to `errors`.
    pub fn require(
        &self,
        key: &str,
        what: &str,
        errors: &mut Vec<WorkflowError>,
    ) -> Option<&'a Node> {
        let found = self.get(key);
        // A misspelt key already has an error that suggests this one.
        let misspelt = self
            .unknown
            .iter()
            .any(|u| crate::error::closest(u, [key]).is_some());
        if found.is_none() && !misspelt {
            errors.push(
                WorkflowError::new(
                    ErrorKind::MissingKey,
                    self.node.pos,
                    format!("{what} has no `{key}`"),
                )
                .help(format!("add `{key}:` to {what}")),
            );
        }
        found
    }
}

/// A type mismatch at `node`.
pub fn mismatch(node: &Node, what: &str, expected: &str) -> WorkflowError {
    WorkflowError::new(
        ErrorKind::TypeMismatch,
        node.pos,
        format!("{what} must be {expected}, found {}", node.type_name()),
    )
}

/// A string value.
pub fn string(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<String> {
    match &node.value {
        Value::Str(text) => Some(text.clone()),
        _ => {
            errors.push(mismatch(node, what, "a string"));
            None
        }
    }
}

/// A boolean value.
pub fn boolean(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<bool> {
    match &node.value {
        Value::Bool(value) => Some(*value),
        _ => {
            errors.push(mismatch(node, what, "`true` or `false`"));
            None
        }
    }
}

/// A non-negative integer that fits `u32`.
pub fn count(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<u32> {
    if let Value::Int(value) = &node.value
        && let Ok(count) = u32::try_from(*value)
    {
        return Some(count);
    }
    errors.push(mismatch(node, what, "a whole number ≥ 0"));
    None
}

/// A list of strings with their positions.
pub fn string_list(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Vec<(String, Pos)> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| {
                string(item, &format!("each entry of {what}"), errors).map(|s| (s, item.pos))
            })
            .collect(),
        Value::Str(text) => vec![(text.clone(), node.pos)],
        _ => {
            errors.push(mismatch(node, what, "a list of strings"));
            Vec::new()
        }
    }
}

/// A duration such as `90s`, `10m`, `2h`, `1h30m`, `500ms`, `1d`; a bare number is seconds.
pub fn duration(node: &Node, what: &str, errors: &mut Vec<WorkflowError>) -> Option<Duration> {
    let parsed = match &node.value {
        Value::Int(seconds) if *seconds >= 0 => Ok(Duration::from_secs(seconds.unsigned_abs())),
        Value::Float(seconds) if *seconds >= 0.0 && seconds.is_finite() => {
            Ok(Duration::from_secs_f64(*seconds))
        }
        Value::Str(text) => parse_duration(text).map_err(|e| e.to_string()),
        _ => Err(format!("found {}", node.type_name())),
    };
    match parsed {
        Ok(duration) => Some(duration),
        Err(reason) => {
            errors.push(
                WorkflowError::new(
                    ErrorKind::TypeMismatch,
                    node.pos,
                    format!("{what} must be a duration: {reason}"),
                )
                .help("write it like `90s`, `10m`, `2h` or `1h30m`"),
            );
            None
        }
    }
}

/// Why a duration's text does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but whitespace.
    #[error("it is empty")]
    Empty,
    /// A unit with no number before it (`h`, `1h m`).
    #[error("`{0}` has a unit without a number")]
    NoNumber(String),
    /// Digits and dots that are not a number (`1.2.3s`).
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A unit other than ms, s, m, h, d.
    #[error("unknown unit `{0}` (use ms, s, m, h or d)")]
    UnknownUnit(String),
}

/// Parses `1h30m`, `90s`, `500ms`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::NoNumber(text.to_owned()));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::NotANumber(rest[..digits].to_owned()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit.trim() {
            "ms" => number / 1000.0,
            "" | "s" | "sec" => number,
            "m" | "min" => number * 60.0,
            "h" => number * 3600.0,
            "d" => number * 86400.0,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        total += Duration::from_secs_f64(seconds);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_hours(48)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("h").is_err());
    }
}
