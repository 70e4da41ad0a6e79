//! Python's `str.format` with named fields, as FastChat fills its judge prompts: `{name}` is
//! replaced, `{{` and `}}` are literal braces; a field the prompt names but the caller does not
//! give is an error (Python raises `KeyError`).

use std::collections::BTreeMap;

/// Why a template could not be filled (Python: `KeyError` or `ValueError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A `{` with no `}` after it.
    #[error("unclosed `{{` at byte {at}")]
    Unclosed {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` that is neither doubled nor closes a field.
    #[error("single `}}` at byte {at}")]
    SingleClose {
        /// Byte offset of the `}`.
        at: usize,
    },
    /// A field the template names and the caller does not give.
    #[error("the template names `{{{name}}}`, which is not given")]
    Missing {
        /// The field's name.
        name: String,
    },
}

/// Fills `template`'s `{name}` fields from `values`. Errors name the missing field or the
/// unbalanced brace.
pub fn format(template: &str, values: &BTreeMap<&str, &str>) -> Result<String, FormatError> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut chars = template.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &template[at + 1..];
                let end = rest.find('}').ok_or(FormatError::Unclosed { at })?;
                let name = &rest[..end];
                let value = values.get(name).ok_or_else(|| FormatError::Missing {
                    name: name.to_owned(),
                })?;
                out.push_str(value);
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            '}' => return Err(FormatError::SingleClose { at }),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The field names `template` uses, in order of first use.
pub fn fields(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template.replace("{{", "").replace("}}", "");
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else {
            break;
        };
        let name = rest[start + 1..start + 1 + len].to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
        rest = rest[start + 2 + len..].to_owned();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_fields_and_keeps_escaped_braces() {
        let values = BTreeMap::from([("question", "2+2?"), ("answer", "{4}")]);
        assert_eq!(
            format("Q: {question}\nA: {answer} {{x}}", &values).unwrap(),
            "Q: 2+2?\nA: {4} {x}"
        );
        let missing = format("{missing}", &values).unwrap_err();
        assert!(missing.to_string().contains("`{missing}`"), "{missing}");
        assert_eq!(
            format("{question", &values),
            Err(FormatError::Unclosed { at: 0 })
        );
        assert_eq!(
            format("a } b", &values),
            Err(FormatError::SingleClose { at: 2 })
        );
        assert_eq!(fields("{a} {{b}} {c} {a}"), vec!["a", "c"]);
    }
}
