//! Python's `str.format` with named fields, as FastChat fills its judge prompts: `{name}` is
//! replaced, `{{` and `}}` are literal braces; a field the prompt names but the caller does not
//! give is an error (Python raises `KeyError`).

use std::collections::BTreeMap;

/// Fills `template`'s `{name}` fields from `values`. Errors name the missing field or the
/// unbalanced brace.
pub fn format(template: &str, values: &BTreeMap<&str, &str>) -> Result<String, String> {
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
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` at byte {at}"))?;
                let name = &rest[..end];
                let value = values.get(name).ok_or_else(|| {
                    format!("the template names `{{{name}}}`, which is not given")
                })?;
                out.push_str(value);
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => return Err(format!("single `}}` at byte {at}")),
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
        assert!(
            format("{missing}", &values)
                .unwrap_err()
                .contains("`{missing}`")
        );
        assert!(format("{question", &values).is_err());
        assert!(format("a } b", &values).is_err());
        assert_eq!(fields("{a} {{b}} {c} {a}"), vec!["a", "c"]);
    }
}
