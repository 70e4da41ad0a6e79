//! The minijinja environment configured like transformers' `_compile_jinja_template`:
//! `trim_blocks`, `lstrip_blocks`, loop controls, Python string/dict methods (`.strip()`,
//! `.items()`...), `raise_exception`, `strftime_now`, and a `tojson` that writes what Python's
//! `json.dumps(ensure_ascii=False)` writes. The `{% generation %}` tag of assistant-mask templates
//! is rewritten into markers so the rendered assistant spans can be recovered.

use std::sync::LazyLock;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use regex::Regex;

/// Marks the start of a `{% generation %}` block in rendered output.
pub(crate) const GEN_START: char = '\u{E000}';
/// Marks the end of a `{% generation %}` block in rendered output.
pub(crate) const GEN_END: char = '\u{E001}';
/// Name under which the template is registered in its environment.
pub(crate) const TEMPLATE_NAME: &str = "chat";

static GEN_OPEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{%([-+]?)\s*generation\s*([-+]?)%\}").expect("valid regex"));
static GEN_CLOSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{%([-+]?)\s*endgeneration\s*([-+]?)%\}").expect("valid regex"));

/// Rewrites `{% generation %}`/`{% endgeneration %}` (which minijinja does not know) into marker
/// output wrapped in no-op `set` tags, so whitespace control and trim/lstrip behave as around the
/// original block tags. Returns the rewritten source and whether any tag was found.
pub(crate) fn rewrite_generation_tags(source: &str) -> (String, bool) {
    if !GEN_OPEN.is_match(source) {
        return (source.to_string(), false);
    }
    let open = GEN_OPEN.replace_all(source, |c: &regex::Captures<'_>| {
        format!(
            "{{%{} set __erebor_gen = 1 %}}{{{{ '{}' }}}}{{% set __erebor_gen = 1 {}%}}",
            &c[1], GEN_START, &c[2]
        )
    });
    let close = GEN_CLOSE.replace_all(&open, |c: &regex::Captures<'_>| {
        format!(
            "{{%{} set __erebor_gen = 0 %}}{{{{ '{}' }}}}{{% set __erebor_gen = 0 {}%}}",
            &c[1], GEN_END, &c[2]
        )
    });
    (close.into_owned(), true)
}

/// Builds the environment holding `source` under [`TEMPLATE_NAME`].
pub(crate) fn build_environment(source: String) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    let syntax = env
        .syntax()
        .to_builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_filter("tojson", tojson);
    env.add_template_owned(TEMPLATE_NAME, source)?;
    Ok(env)
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// `strftime_now(fmt)`: the current UTC time formatted with the common strftime codes.
fn strftime_now(format: &str) -> Value {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Value::from(strftime_utc(secs, format))
}

/// Formats a UNIX time (UTC) with `%Y %m %d %H %M %S %B %b %d %A %a %%`.
pub(crate) fn strftime_utc(secs: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // `rem_euclid(7)` is in 0..7 and `month` in 1..=12: both are valid indexes.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (weekday, month_name) = (
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
    );
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{year:04}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('%') | None => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

/// `tojson` as transformers overrides it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`, keys in insertion order.
// minijinja hands keyword arguments over only by value (`Kwargs` is no `ArgType` by reference).
#[allow(clippy::needless_pass_by_value)]
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let _ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([a, b]) => (a.clone(), b.clone()),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be a pair",
            ));
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let style = PyJsonStyle {
        indent,
        sort_keys: sort_keys.unwrap_or(false),
        item_sep,
        key_sep,
    };
    let mut out = String::new();
    write_py_json(value, &style, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct PyJsonStyle {
    indent: Option<usize>,
    sort_keys: bool,
    item_sep: String,
    key_sep: String,
}

fn newline(style: &PyJsonStyle, level: usize, out: &mut String) {
    if let Some(n) = style.indent {
        out.push('\n');
        out.push_str(&" ".repeat(n * level));
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Writes `v` the way Python's json.dumps does with the given style.
fn write_py_json(
    v: &Value,
    style: &PyJsonStyle,
    level: usize,
    out: &mut String,
) -> Result<(), Error> {
    use minijinja::value::ValueKind as K;
    match v.kind() {
        K::Undefined | K::None => out.push_str("null"),
        K::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        K::Number => match v.as_i64() {
            Some(i) if v.is_integer() => out.push_str(&i.to_string()),
            _ => {
                let f = f64::try_from(v.clone())?;
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
                    out.push_str(&format!("{f:.1}"));
                } else if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&f.to_string());
                }
            }
        },
        K::String => json_string(v.as_str().unwrap_or_default(), out),
        K::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if style.sort_keys {
                keys.sort_by_key(ToString::to_string);
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, level + 1, out);
                json_string(&k.to_string(), out);
                out.push_str(&style.key_sep);
                write_py_json(&v.get_item(k)?, style, level + 1, out)?;
            }
            newline(style, level, out);
            out.push('}');
        }
        K::Seq | K::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, level + 1, out);
                write_py_json(item, style, level + 1, out)?;
            }
            newline(style, level, out);
            out.push(']');
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot serialise a {other} value"),
            ));
        }
    }
    Ok(())
}
