//! Jinja for custom tasks, as lm-eval renders its task templates: strict undefined values, the
//! trailing newline kept, Python string methods (`minijinja-contrib`'s pycompat) plus
//! `list.index`. A string that names a field of the document is that field, as in lm-eval.

use minijinja::value::{Value as JinjaValue, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
use serde_json::Value;

/// A rendered field: text, or an index (`doc_to_text`/`doc_to_target` yielding digits when
/// the task has choices, as lm-eval's `ast.literal_eval`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rendered {
    /// Text.
    Text(String),
    /// An index into the choices.
    Index(usize),
}

/// The compiled templates of one task.
pub(super) struct Templates {
    env: Environment<'static>,
}

fn python_methods(
    state: &mut State,
    value: &JinjaValue,
    method: &str,
    args: &[JinjaValue],
) -> Result<JinjaValue, Error> {
    if method == "index" && value.kind() == ValueKind::Seq {
        let [wanted] = args else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "index() takes one argument",
            ));
        };
        return value
            .try_iter()?
            .position(|item| &item == wanted)
            .map(JinjaValue::from)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{wanted} is not in list"),
                )
            });
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Whether a template is one `{{ expression }}` and nothing else.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

impl Templates {
    /// An empty set.
    pub(super) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid");
        env.set_syntax(syntax);
        env.set_unknown_method_callback(python_methods);
        Self { env }
    }

    /// Adds the template `name`. A template for a list (`as_list`) that is one expression is
    /// rendered as JSON so the list comes back whole.
    pub(super) fn add(&mut self, name: &str, source: &str, as_list: bool) -> Result<(), Error> {
        let source = match single_expression(source) {
            Some(expression) if as_list => format!("{{{{ ({expression}) | tojson }}}}"),
            _ => source.to_string(),
        };
        self.env.add_template_owned(name.to_string(), source)
    }

    /// Renders `name` with the document's fields as variables.
    pub(super) fn render(&self, name: &str, doc: &Value) -> Result<String, Error> {
        self.env
            .get_template(name)?
            .render(minijinja::value::Serde(doc))
    }

    /// Renders a list template: its output must be a JSON list of strings (numbers are
    /// written as text).
    pub(crate) fn render_list(&self, name: &str, doc: &Value) -> Result<Vec<String>, String> {
        let text = self.render(name, doc).map_err(|e| e.to_string())?;
        let parsed: Value =
            serde_json::from_str(&text).map_err(|_| format!("did not yield a list: {text:?}"))?;
        list_of_text(&parsed).ok_or_else(|| format!("did not yield a list of strings: {text}"))
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// A JSON list as strings (numbers and booleans written as text).
pub(crate) fn list_of_text(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| match item {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            _ => None,
        })
        .collect()
}

/// A JSON value as lm-eval's `str()` of it would be for a scalar.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}
