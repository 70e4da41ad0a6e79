//! `${{ ... }}` templates in workflow values.
//!
//! Three kinds of expression exist: `params.NAME`, `matrix.AXIS` and
//! `steps.ID.outputs.NAME` (ID may name one matrix arm, `train[dpop]`). `$${{` writes a literal
//! `${{`. A value that is exactly one expression keeps the referenced value's type (a float
//! param stays a number); otherwise the pieces are joined as text.

use std::fmt;

/// One parsed expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expr {
    /// `params.NAME`
    Param(String),
    /// `matrix.AXIS`
    Matrix(String),
    /// `steps.ID.outputs.NAME`
    Output {
        /// The step id as written (a base id or one arm, `train[dpop]`).
        step: String,
        /// The output name.
        output: String,
    },
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Param(name) => write!(f, "params.{name}"),
            Expr::Matrix(axis) => write!(f, "matrix.{axis}"),
            Expr::Output { step, output } => write!(f, "steps.{step}.outputs.{output}"),
        }
    }
}

impl Expr {
    /// The canonical template text, `${{ params.x }}`.
    pub fn to_template(&self) -> String {
        format!("${{{{ {self} }}}}")
    }
}

/// A piece of a template string.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// Literal text.
    Text(String),
    /// An expression; `source` is its text as written, `offset` its byte offset in the string.
    Expr {
        /// The parsed expression.
        expr: Expr,
        /// The `${{ ... }}` text as written.
        source: String,
        /// Byte offset of `${{` in the string.
        offset: usize,
    },
}

/// A template that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Byte offset of the problem in the string.
    pub offset: usize,
    /// The text of the bad expression.
    pub source_text: String,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

/// Whether `text` contains a template (cheap check before parsing).
pub fn has_template(text: &str) -> bool {
    text.contains("${{")
}

/// Splits a string into text and expressions.
pub fn parse(text: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(start) = rest.find("${{") {
        if start > 0 && rest[..start].ends_with('$') {
            literal.push_str(&rest[..start - 1]);
            literal.push_str("${{");
            rest = &rest[start + 3..];
            consumed += start + 3;
            continue;
        }
        literal.push_str(&rest[..start]);
        let offset = consumed + start;
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError {
                offset,
                source_text: rest[start..].to_owned(),
                message: format!("`{}` is not closed", &rest[start..]),
                help: "close the expression with `}}`, e.g. `${{ params.lr }}`".to_owned(),
            });
        };
        let source = &rest[start..start + 3 + end + 2];
        let expr = parse_expr(after[..end].trim()).map_err(|(message, help)| TemplateError {
            offset,
            source_text: source.to_owned(),
            message,
            help,
        })?;
        if !literal.is_empty() {
            segments.push(Segment::Text(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Expr {
            expr,
            source: source.to_owned(),
            offset,
        });
        let advance = start + 3 + end + 2;
        rest = &rest[advance..];
        consumed += advance;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    Ok(segments)
}

const FORMS: &str =
    "write `${{ params.NAME }}`, `${{ matrix.AXIS }}` or `${{ steps.ID.outputs.NAME }}`";

fn parse_expr(body: &str) -> Result<Expr, (String, String)> {
    let bad = |message: String| Err((message, FORMS.to_owned()));
    if body.is_empty() {
        return bad("empty expression `${{ }}`".to_owned());
    }
    if let Some(name) = body.strip_prefix("params.") {
        return if is_name(name) {
            Ok(Expr::Param(name.to_owned()))
        } else {
            bad(format!("`{body}` is not a param reference"))
        };
    }
    if let Some(axis) = body.strip_prefix("matrix.") {
        return if is_name(axis) {
            Ok(Expr::Matrix(axis.to_owned()))
        } else {
            bad(format!("`{body}` is not a matrix reference"))
        };
    }
    if let Some(rest) = body.strip_prefix("steps.") {
        let step_end = match rest.find('[') {
            Some(open) if rest[..open].find('.').is_none() => match rest[open..].find(']') {
                Some(close) => open + close + 1,
                None => return bad(format!("`{body}` has an unclosed `[`")),
            },
            _ => rest.find('.').unwrap_or(rest.len()),
        };
        let step = &rest[..step_end];
        let Some(output) = rest[step_end..].strip_prefix(".outputs.") else {
            return bad(format!(
                "`{body}` does not name an output; step references look like `steps.{step}.outputs.NAME`"
            ));
        };
        let base = step.split('[').next().unwrap_or_default();
        if !is_name(base) || !is_name(output) {
            return bad(format!("`{body}` is not a step output reference"));
        }
        return Ok(Expr::Output {
            step: step.to_owned(),
            output: output.to_owned(),
        });
    }
    let root = body.split('.').next().unwrap_or(body);
    Err((
        format!("unknown template root `{root}` in `{body}`"),
        FORMS.to_owned(),
    ))
}

/// Whether `name` is a valid identifier for params, axes, step ids and outputs.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What a lookup makes of one expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Substitution {
    /// Replace it with this value.
    Value(serde_json::Value),
    /// Leave it as template text (a secret, or an output not known yet), written canonically.
    Keep(Expr),
}

/// Renders parsed segments. A single expression keeps the value's JSON type; otherwise the
/// parts are joined as text.
pub fn render<E>(
    segments: &[Segment],
    mut lookup: impl FnMut(&Expr) -> Result<Substitution, E>,
) -> Result<serde_json::Value, E> {
    if let [Segment::Expr { expr, .. }] = segments {
        return Ok(match lookup(expr)? {
            Substitution::Value(value) => value,
            Substitution::Keep(expr) => serde_json::Value::String(expr.to_template()),
        });
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(text) => out.push_str(&text.replace("${{", "$${{")),
            Segment::Expr { expr, .. } => match lookup(expr)? {
                Substitution::Value(value) => out.push_str(&value_text(&value)),
                Substitution::Keep(expr) => out.push_str(&expr.to_template()),
            },
        }
    }
    Ok(serde_json::Value::String(out))
}

/// Like [`render`], but literal `$${{` escapes become `${{` (for the final value a step sees).
pub fn render_final<E>(
    segments: &[Segment],
    lookup: impl FnMut(&Expr) -> Result<Substitution, E>,
) -> Result<serde_json::Value, E> {
    let rendered = render(segments, lookup)?;
    Ok(match rendered {
        serde_json::Value::String(text) => serde_json::Value::String(text.replace("$${{", "${{")),
        other => other,
    })
}

/// The text form of a substituted value.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_all_three_forms_and_keeps_text() {
        let segments =
            parse("a ${{ params.lr }}-${{matrix.loss}} ${{ steps.train[dpop].outputs.model }}")
                .unwrap();
        let exprs: Vec<_> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Expr { expr, .. } => Some(expr.clone()),
                Segment::Text(_) => None,
            })
            .collect();
        assert_eq!(
            exprs,
            vec![
                Expr::Param("lr".into()),
                Expr::Matrix("loss".into()),
                Expr::Output {
                    step: "train[dpop]".into(),
                    output: "model".into()
                }
            ]
        );
    }

    #[test]
    fn single_expression_keeps_its_type_and_mixed_text_is_joined() {
        let lookup = |_: &Expr| Ok::<_, ()>(Substitution::Value(json!(0.5)));
        assert_eq!(
            render(&parse("${{ params.lr }}").unwrap(), lookup),
            Ok(json!(0.5))
        );
        assert_eq!(
            render(&parse("lr=${{ params.lr }}!").unwrap(), lookup),
            Ok(json!("lr=0.5!"))
        );
    }

    #[test]
    fn escaped_dollar_is_literal() {
        let segments = parse("$${{ not.a.template }}").unwrap();
        assert_eq!(
            segments,
            vec![Segment::Text("${{ not.a.template }}".into())]
        );
        let rendered = render_final(&segments, |_| Ok::<_, ()>(Substitution::Value(json!(1))));
        assert_eq!(rendered, Ok(json!("${{ not.a.template }}")));
    }

    #[test]
    fn bad_templates_say_where_and_why() {
        let error = parse("x ${{ params.lr").unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.message.contains("not closed"));
        let error = parse("${{ env.HOME }}").unwrap_err();
        assert!(error.message.contains("unknown template root `env`"));
        let error = parse("${{ steps.train.model }}").unwrap_err();
        assert!(error.message.contains("does not name an output"));
    }
}
