//! A YAML document as a tree of nodes that keep their line and column.
//!
//! serde-saphyr parses the text (it reports syntax errors with a location and never panics);
//! every node is captured with [`serde_saphyr::Spanned`], so later checks (unknown keys, bad
//! templates, a step kind's own config errors) can point at the exact place in the file.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A 1-based line and column in the workflow file; `0:0` when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters).
    pub col: u32,
}

impl Pos {
    /// A position.
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }

    fn of(location: &serde_saphyr::Location) -> Self {
        Self {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            col: u32::try_from(location.column()).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML value whose children are nodes with positions.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts.
    pub pos: Pos,
}

/// A mapping key and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
}

impl Node {
    /// A node without a known position.
    pub fn detached(value: Value) -> Self {
        Self {
            value,
            pos: Pos::default(),
        }
    }

    /// What the value is, for error messages ("a string", "a mapping").
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The value of `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node for `key`, if this is a mapping that has it.
    pub fn key(&self, key: &str) -> Option<&Key> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| k),
            _ => None,
        }
    }

    /// Converts to JSON, dropping positions.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The position of the key at the end of `path` (for unknown keys), else as [`Node::locate`].
    pub fn locate_key(&self, path: &[PathStep<'_>]) -> Pos {
        let Some((last, parents)) = path.split_last() else {
            return self.pos;
        };
        let mut node = self;
        for step in parents {
            let next = match (step, &node.value) {
                (PathStep::Key(name), Value::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| k.name == *name)
                    .map(|(_, v)| v),
                (PathStep::Index(index), Value::Seq(items)) => items.get(*index),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return self.locate(path),
            }
        }
        match (last, &node.value) {
            (PathStep::Key(name), Value::Map(entries)) => entries
                .iter()
                .find(|(k, _)| k.name == *name)
                .map_or(node.pos, |(k, _)| k.pos),
            _ => self.locate(path),
        }
    }

    /// The position of the node at `path` below this one (keys and indexes), falling back to
    /// the deepest ancestor that exists; for a key that is the last segment, the key's position.
    pub fn locate(&self, path: &[PathStep<'_>]) -> Pos {
        let Some((first, rest)) = path.split_first() else {
            return self.pos;
        };
        match (first, &self.value) {
            (PathStep::Key(name), Value::Map(entries)) => {
                match entries.iter().find(|(k, _)| k.name == *name) {
                    Some((key, value)) if rest.is_empty() => {
                        if matches!(value.value, Value::Map(_) | Value::Seq(_)) {
                            key.pos
                        } else {
                            value.pos
                        }
                    }
                    Some((_, value)) => value.locate(rest),
                    None => self.pos,
                }
            }
            (PathStep::Index(index), Value::Seq(items)) => match items.get(*index) {
                Some(item) => item.locate(rest),
                None => self.pos,
            },
            _ => self.pos,
        }
    }
}

/// One step of a path into a node tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathStep<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// Parses YAML text into a node tree; the error carries serde-saphyr's location.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    let root: Spanned<RawNode> = serde_saphyr::from_str(text)?;
    Ok(into_node(root))
}

fn into_node(spanned: Spanned<RawNode>) -> Node {
    Node {
        value: spanned.value.0,
        pos: Pos::of(&spanned.referenced),
    }
}

/// The deserialisation target: a value whose children are spanned.
struct RawNode(Value);

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode(Value::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawNode, E> {
        Ok(RawNode(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode(Value::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode(Value::Str(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode(Value::Str(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(into_node(item));
        }
        Ok(RawNode(Value::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((
                Key {
                    name: key.value,
                    pos: Pos::of(&key.referenced),
                },
                into_node(value),
            ));
        }
        Ok(RawNode(Value::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_line_and_column() {
        let text = "name: demo\nsteps:\n  - id: a\n    with: {x: 1.5, y: [true, ~]}\n";
        let root = parse(text).unwrap();
        assert_eq!(root.key("steps").unwrap().pos, Pos::new(2, 1));
        let steps = root.get("steps").unwrap();
        let Value::Seq(items) = &steps.value else {
            panic!("{steps:?}")
        };
        assert_eq!(items[0].key("id").unwrap().pos, Pos::new(3, 5));
        let with = items[0].get("with").unwrap();
        assert_eq!(with.get("x").unwrap().value, Value::Float(1.5));
        assert_eq!(with.get("x").unwrap().pos, Pos::new(4, 15));
        let y = with.get("y").unwrap();
        assert_eq!(y.locate(&[PathStep::Index(1)]), Pos::new(4, 30));
        assert_eq!(
            with.to_json(),
            serde_json::json!({"x": 1.5, "y": [true, null]})
        );
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.location().is_some(), "{error}");
    }
}
