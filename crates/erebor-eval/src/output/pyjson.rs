//! JSON written byte for byte as Python's `json.dumps(..., ensure_ascii=False)` writes it, so
//! that samples files and their sha256 hashes match lm-evaluation-harness's.
//!
//! Python differs from `serde_json` in three ways that matter here: separators (`", "` and
//! `": "` on one line; `","` and `": "` with an indent), floats (`repr`: `1.0`, `1e-05`,
//! `-12.5`) and key order (insertion order, which [`PyValue::Dict`] keeps).

use std::fmt::Write;

/// A JSON value with Python's distinction between ints and floats and ordered dict keys.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `null` (`None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An `int`.
    Int(i128),
    /// A `float`, written as Python's `repr`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `dict`, keys in insertion order.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// A dict from `(key, value)` pairs, in that order.
    pub fn dict<K: Into<String>>(entries: impl IntoIterator<Item = (K, PyValue)>) -> Self {
        PyValue::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string.
    pub fn str(text: impl Into<String>) -> Self {
        PyValue::Str(text.into())
    }
}

impl PyValue {
    /// Parses JSON text as Python's `json.loads` does: dict keys in the order written (`serde_json`
    /// without `preserve_order` would sort them), numbers with a fraction or exponent as
    /// floats, others as ints.
    pub fn parse(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// The value under `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` of a dict: replaces the value in place if present (Python keeps the key's
    /// position), else appends it. No effect on other values.
    pub fn set(&mut self, key: &str, value: PyValue) {
        if let PyValue::Dict(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for PyValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PyValueVisitor)
    }
}

impl serde::Serialize for PyValue {
    /// As JSON of the same shape (dict keys in order); Python's formatting is [`dumps`]'s.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            PyValue::Null => serializer.serialize_unit(),
            PyValue::Bool(b) => serializer.serialize_bool(*b),
            PyValue::Int(i) => match i64::try_from(*i) {
                Ok(small) => serializer.serialize_i64(small),
                Err(_) => serializer.serialize_i128(*i),
            },
            PyValue::Float(f) => serializer.serialize_f64(*f),
            PyValue::Str(s) => serializer.serialize_str(s),
            PyValue::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            PyValue::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct PyValueVisitor;

impl<'de> serde::de::Visitor<'de> for PyValueVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }
    fn visit_none<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Int(i128::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<PyValue, E> {
        Ok(PyValue::Int(i128::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(PyValue::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, PyValue>()? {
            // A repeated key keeps its first position and its last value, as a Python dict.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(PyValue::Dict(entries))
    }
}

impl From<&serde_json::Value> for PyValue {
    fn from(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => PyValue::Null,
            Value::Bool(b) => PyValue::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => PyValue::Int(i128::from(i)),
                (None, Some(u)) => PyValue::Int(i128::from(u)),
                _ => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => PyValue::Str(s.clone()),
            Value::Array(items) => PyValue::List(items.iter().map(PyValue::from).collect()),
            Value::Object(map) => PyValue::Dict(
                map.iter()
                    .map(|(k, v)| (k.clone(), PyValue::from(v)))
                    .collect(),
            ),
        }
    }
}

/// `json.dumps(value, ensure_ascii=False)` (`indent = None`) or with `indent=n`.
pub fn dumps(value: &PyValue, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_value(&mut out, value, indent, 0);
    out
}

/// `json.dumps(value)` with Python's defaults (`ensure_ascii=True`, one line): as [`dumps`],
/// with every character outside `' '..='~'` that is not already escaped written as `\uXXXX`
/// (UTF-16 surrogate pairs above U+FFFF, lowercase hex). FastChat writes its JSONL this way.
pub fn dumps_ascii(value: &PyValue) -> String {
    let text = dumps(value, None);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            let _ = write!(out, "\\u{unit:04x}");
        }
    }
    out
}

fn write_value(out: &mut String, value: &PyValue, indent: Option<usize>, level: usize) {
    match value {
        PyValue::Null => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(f) => out.push_str(&json_float(*f)),
        PyValue::Str(s) => write_str(out, s),
        PyValue::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, indent, level + 1);
                write_value(out, item, indent, level + 1);
            }
            close(out, indent, level);
            out.push(']');
        }
        PyValue::Dict(entries) => {
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                separator(out, i, indent, level + 1);
                write_str(out, key);
                out.push_str(": ");
                write_value(out, item, indent, level + 1);
            }
            close(out, indent, level);
            out.push('}');
        }
    }
}

/// Before item `i` of a container: `", "` inline; `","`, newline and indent with an indent.
fn separator(out: &mut String, i: usize, indent: Option<usize>, level: usize) {
    match indent {
        None if i > 0 => out.push_str(", "),
        None => {}
        Some(n) => {
            if i > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(n * level));
    }
}

/// A string as Python's encoder writes it with `ensure_ascii=False`.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as `json.dumps` writes it: `repr`, with `NaN`, `Infinity`, `-Infinity`.
fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        py_float_repr(f)
    }
}

/// Python's `repr(float)` (and `str(float)`): the shortest digits that round-trip, in fixed
/// notation when the decimal exponent is in `-4..16`, else as `1.5e-05` / `1e+16`; integral
/// values keep `.0`; `nan`, `inf`, `-inf`.
///
/// # Panics
/// Never in practice: Rust's `{:e}` of a finite float always ends in an integer exponent.
pub(crate) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if (-4..16).contains(&exp) {
        let fixed = format!("{f}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_python_reprs_them() {
        // Each pair was printed by CPython 3.12's repr().
        for (x, py) in [
            (1.0, "1.0"),
            (-12.0, "-12.0"),
            (0.1, "0.1"),
            (-2.302_585_092_994_045_5, "-2.3025850929940455"),
            (1e-05, "1e-05"),
            (-3.2e-05, "-3.2e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1_234_567_890_123_456.0, "1234567890123456.0"),
            (1.5e300, "1.5e+300"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (123_456.789, "123456.789"),
        ] {
            assert_eq!(py_float_repr(x), py, "{x}");
        }
        assert_eq!(py_float_repr(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn dumps_uses_pythons_separators_and_escapes() {
        let v = PyValue::dict([
            ("b", PyValue::Int(1)),
            (
                "a",
                PyValue::List(vec![PyValue::Float(1.0), PyValue::str("é\n\"\u{1}")]),
            ),
            ("e", PyValue::Dict(vec![])),
            ("l", PyValue::List(vec![])),
            ("n", PyValue::Null),
        ]);
        assert_eq!(
            dumps(&v, None),
            r#"{"b": 1, "a": [1.0, "é\n\"\u0001"], "e": {}, "l": [], "n": null}"#
        );
        assert_eq!(
            dumps(&v, Some(2)),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.0,\n    \"é\\n\\\"\\u0001\"\n  ],\n  \"e\": {},\n  \"l\": [],\n  \"n\": null\n}"
        );
    }

    #[test]
    fn dumps_ascii_escapes_as_pythons_default() {
        // python3 -c 'import json; print(json.dumps({"k": "é\x7f😀\t~"}))'
        let v = PyValue::dict([("k", PyValue::str("é\u{7f}😀\t~"))]);
        assert_eq!(dumps_ascii(&v), r#"{"k": "\u00e9\u007f\ud83d\ude00\t~"}"#);
    }

    #[test]
    fn serde_numbers_keep_int_and_float_apart() {
        let v: serde_json::Value = serde_json::from_str(r#"{"i": 3, "f": 3.0, "g": 0.5}"#).unwrap();
        assert_eq!(
            dumps(&PyValue::from(&v), None),
            r#"{"f": 3.0, "g": 0.5, "i": 3}"#
        );
    }
}
