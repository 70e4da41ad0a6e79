//! Output helpers: plain-text tables, times, durations, CSV.

use chrono::{DateTime, Local, TimeZone, Utc};

/// A table printed with aligned columns.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether it has no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders with two spaces between columns; the last column is not padded.
    pub(crate) fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A time in ms since the epoch as local `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn time(ms: i64) -> String {
    match Local.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "?".to_owned(),
    }
}

/// A duration in ms as `1h02m`, `3m04s` or `5.2s` (whole units rounded down).
pub(crate) fn duration_ms(ms: i64) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    let ms = ms.max(0);
    if ms >= HOUR {
        format!("{}h{:02}m", ms / HOUR, ms % HOUR / MINUTE)
    } else if ms >= MINUTE {
        format!("{}m{:02}s", ms / MINUTE, ms % MINUTE / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// A duration in whole milliseconds, as the store's times are (saturating at `i64::MAX`).
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A metric value: integers without decimals, others with up to 6 significant digits.
pub(crate) fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        // The decimal exponent of a finite float lies within ±400 (an infinite one saturates,
        // which the clamp below turns into no decimals, as wanted).
        #[allow(clippy::cast_possible_truncation)]
        let magnitude = value.abs().log10().floor() as i32;
        let decimals = usize::try_from((5 - magnitude).clamp(0, 12)).unwrap_or(0);
        let text = format!("{value:.decimals$}");
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        trimmed.to_owned()
    }
}

/// Quotes a CSV field when needed.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Parses `--since`: a duration ago (`2d`, `12h`), a date (`2026-11-27`) or an RFC 3339 time.
pub(crate) fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(ago) = erebor_workflow::fields::parse_duration(text) {
        return Ok(Utc::now().timestamp_millis() - millis(ago));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).ok_or("bad date")?;
        if let Some(local) = Local.from_local_datetime(&midnight).earliest() {
            return Ok(local.timestamp_millis());
        }
    }
    Err(format!(
        "`--since {text}`: use a duration ago (`2d`, `12h`), a date (`2026-11-27`) or an RFC 3339 time"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.123_456_789), "0.123457");
        assert_eq!(number(1234.5678), "1234.57");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(duration_ms(5_200), "5.2s");
        assert_eq!(duration_ms(184_000), "3m04s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["a", "bb"]);
        table.row(vec!["xxx".into(), "1".into()]);
        assert_eq!(table.render(), "a    bb\nxxx  1\n");
    }

    #[test]
    fn since_accepts_durations_and_dates() {
        let day_ago = parse_since("1d").unwrap();
        assert!((Utc::now().timestamp_millis() - day_ago - 86_400_000).abs() < 5_000);
        assert!(parse_since("2026-11-27").is_ok());
        assert!(parse_since("yesterday").is_err());
    }
}
