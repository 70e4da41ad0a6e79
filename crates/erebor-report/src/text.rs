//! Text in charts and tables: numbers with a true minus sign (U+2212, which no renderer clips
//! or drops the way a hyphen at a label's edge was), label widths for layout, escaping.

/// The minus sign used in every rendered number.
pub(crate) const MINUS: char = '\u{2212}';

/// A number with about six significant digits, trailing zeros dropped, and U+2212 for negative
/// values: `-0.129769` → `−0.129769`, `2.0` → `2`, NaN → `NaN`.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "∞" } else { "−∞" }.to_owned();
    }
    let text = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 1e-4 {
        // `value` is finite and at least 1e-4 in size: its decimal exponent is within -4..=308.
        #[allow(clippy::cast_possible_truncation)]
        let magnitude = value.abs().log10().floor() as i32;
        let decimals = usize::try_from(5 - magnitude).map_or(0, |d| d.min(12));
        let text = format!("{value:.decimals$}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{value:.3e}")
    };
    with_minus(&text)
}

/// A tick label: `value` with as many decimals as the tick step needs (step 0.05 → 2).
pub(crate) fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        // A finite positive `step` has a decimal exponent within -324..=308.
        #[allow(clippy::cast_possible_truncation)]
        let exponent = step.log10().floor() as i32;
        usize::try_from(-exponent).unwrap_or(0)
    } else {
        2
    };
    // Avoid "−0" for a tick that is zero up to rounding.
    let value = if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    };
    if value.abs() >= 1e6 || (value != 0.0 && value.abs() < 1e-4) {
        return with_minus(&format!("{value:.1e}"));
    }
    with_minus(&format!("{value:.decimals$}"))
}

/// Replaces a hyphen-minus in a formatted number by U+2212.
pub(crate) fn with_minus(text: &str) -> String {
    text.replace('-', &MINUS.to_string())
}

/// Parses a number as rendered here (U+2212 or `-`), for tests that read charts back.
pub fn parse_number(text: &str) -> Option<f64> {
    text.trim().replace(MINUS, "-").parse().ok()
}

/// A duration for people: `0.2 s`, `42 s`, `1 min 24 s`, `2 h 5 min`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_owned();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    // Finite and at least 10 (checked above); beyond `u64::MAX` seconds it saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, (whole % 3600) / 60),
    }
}

/// An upper estimate of the width in pixels of `text` set in a sans-serif font of size
/// `font_px` (DejaVu Sans, the widest common one: digits are 0.64 em). Layout uses it to size
/// margins so that no label is clipped.
pub fn width(text: &str, font_px: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '|' | '!' | '\'' | 'I' | '[' | ']' | '('
            | ')' | ' ' | 'f' | 't' | 'r' => 0.42,
            'm' | 'w' | 'M' | 'W' | '@' | '%' | '—' => 1.0,
            c if c.is_ascii_uppercase() => 0.76,
            _ => 0.66,
        })
        .sum();
    em * font_px
}

/// `text` cut with `…` so that it is at most `max_px` wide at `font_px`.
pub fn fit(text: &str, max_px: f64, font_px: f64) -> String {
    if width(text, font_px) <= max_px {
        return text.to_owned();
    }
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if width(&out, font_px) + width("…", font_px) > max_px {
            out.pop();
            break;
        }
    }
    out.push('…');
    out
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A file-name-safe slug of a chart title: `eval/logps/chosen` → `eval-logps-chosen`.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_numbers_carry_a_true_minus_sign() {
        assert_eq!(number(-0.129_769), "−0.129769");
        assert_eq!(number(-0.0717), "−0.0717");
        assert_eq!(number(2.0), "2");
        assert_eq!(tick_label(-0.05, 0.05), "−0.05");
        assert_eq!(tick_label(-1e-12, 0.5), "0.0");
        assert_eq!(tick_label(150.0, 50.0), "150");
        assert_eq!(parse_number("−0.05"), Some(-0.05));
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(0.21), "0.2 s");
        assert_eq!(duration(84.4), "1 min 24 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }

    #[test]
    fn fitted_labels_end_in_an_ellipsis_within_the_width() {
        let long = "train[dpop] (reused from r-20261201-034512-abcd:train[dpop])";
        let cut = fit(long, 120.0, 11.0);
        assert!(cut.ends_with('…') && width(&cut, 11.0) <= 120.0, "{cut}");
        assert_eq!(fit("loss", 120.0, 11.0), "loss");
        assert_eq!(
            slug("eval/logps/chosen_after_edit"),
            "eval-logps-chosen_after_edit"
        );
    }
}
