//! Typed access to the fields of a raw row, with errors that name the row and the field.

use crate::error::{RowError, RowLocation};
use crate::read::RawRow;
use serde_json::{Map, Value};

/// A raw row seen through the accessors that mappings use.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    /// Where the row is.
    pub location: &'a RowLocation,
    /// The row's value.
    pub value: &'a Value,
}

/// A short description of a JSON value for error messages: `a number (3)`, `null`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => format!("a boolean ({flag})"),
        Value::Number(number) => format!("a number ({number})"),
        Value::String(text) if text.chars().count() > 40 => {
            format!(
                "a string (\"{}…\")",
                text.chars().take(40).collect::<String>()
            )
        }
        Value::String(text) => format!("a string (\"{text}\")"),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".into(),
    }
}

impl<'a> Fields<'a> {
    /// Wraps a raw row.
    pub fn new(row: &'a RawRow) -> Self {
        Self {
            location: &row.location,
            value: &row.value,
        }
    }

    /// An error about `field` of this row.
    pub fn error(&self, field: Option<&str>, message: impl Into<String>) -> RowError {
        RowError {
            location: self.location.clone(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The row as a JSON object.
    pub fn object(&self) -> Result<&'a Map<String, Value>, RowError> {
        self.value.as_object().ok_or_else(|| {
            self.error(
                None,
                format!("expected a JSON object, found {}", describe(self.value)),
            )
        })
    }

    /// The value at a dotted path (`choices.text`, `messages.0.content`); `None` when absent or
    /// null.
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        let mut current = self.value;
        for segment in path.split('.') {
            current = match current {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!current.is_null()).then_some(current)
    }

    /// The value at `path`, or an error saying it is missing.
    pub fn require(&self, path: &str) -> Result<&'a Value, RowError> {
        self.object()?;
        self.get(path)
            .ok_or_else(|| self.error(Some(path), "missing (or null)"))
    }

    /// A string field.
    pub fn str(&self, path: &str) -> Result<&'a str, RowError> {
        let value = self.require(path)?;
        value.as_str().ok_or_else(|| {
            self.error(
                Some(path),
                format!("expected a string, found {}", describe(value)),
            )
        })
    }

    /// A string field that may be absent, null or empty (all give `None`).
    pub(crate) fn opt_str(&self, path: &str) -> Result<Option<&'a str>, RowError> {
        match self.get(path) {
            None => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                Some(path),
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    /// An array field.
    pub fn array(&self, path: &str) -> Result<&'a Vec<Value>, RowError> {
        let value = self.require(path)?;
        value.as_array().ok_or_else(|| {
            self.error(
                Some(path),
                format!("expected an array, found {}", describe(value)),
            )
        })
    }

    /// An array of strings; a bad element is named `path.N`.
    pub fn str_list(&self, path: &str) -> Result<Vec<&'a str>, RowError> {
        self.array(path)?
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str().ok_or_else(|| {
                    self.error(
                        Some(&format!("{path}.{index}")),
                        format!("expected a string, found {}", describe(item)),
                    )
                })
            })
            .collect()
    }

    /// A non-negative integer field, given as a number or as a string of digits (CSV, and
    /// HellaSwag's `label`).
    pub fn index(&self, path: &str) -> Result<usize, RowError> {
        let value = self.require(path)?;
        let parsed = match value {
            Value::Number(number) => number.as_u64().and_then(|n| usize::try_from(n).ok()),
            Value::String(text) => text.trim().parse::<usize>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.error(
                Some(path),
                format!("expected a non-negative integer, found {}", describe(value)),
            )
        })
    }

    /// A scalar field as text (a string as is, a number printed), for ids.
    pub fn scalar_text(&self, path: &str) -> Option<String> {
        match self.get(path)? {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Value) -> RawRow {
        RawRow {
            location: RowLocation::Line {
                file: "f.jsonl".into(),
                line: 3,
            },
            value,
        }
    }

    #[test]
    fn accessors_name_the_field_and_what_they_found() {
        let raw = row(json!({"q": "x", "choices": ["a", 2], "gold": "1", "nested": {"k": [5]}}));
        let fields = Fields::new(&raw);
        assert_eq!(fields.str("q").unwrap(), "x");
        assert_eq!(fields.index("gold").unwrap(), 1);
        assert_eq!(fields.get("nested.k.0"), Some(&json!(5)));
        assert_eq!(
            fields.str_list("choices").unwrap_err().to_string(),
            "f.jsonl:3: field `choices.1`: expected a string, found a number (2)"
        );
        assert_eq!(
            fields.str("missing").unwrap_err().to_string(),
            "f.jsonl:3: field `missing`: missing (or null)"
        );
        assert_eq!(
            fields.index("q").unwrap_err().to_string(),
            "f.jsonl:3: field `q`: expected a non-negative integer, found a string (\"x\")"
        );
        let not_object = row(json!([1]));
        assert_eq!(
            Fields::new(&not_object).str("q").unwrap_err().to_string(),
            "f.jsonl:3: expected a JSON object, found an array of 1 items"
        );
    }
}
