//! The scheduler's clock: the system clock, or for tests a file shared across processes.
//!
//! When `EREBOR_TEST_CLOCK` names a file, "now" is its content (ms since the epoch, or an
//! RFC 3339 time), read afresh each time; tests move time forward by rewriting it, so no test
//! waits for a real minute. Without the variable the system clock is used.

use anyhow::Context;
use std::path::PathBuf;

/// The environment variable naming the test clock file.
pub(crate) const TEST_CLOCK_ENV: &str = "EREBOR_TEST_CLOCK";

/// Where "now" comes from.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    file: Option<PathBuf>,
}

impl Clock {
    /// The test clock when `EREBOR_TEST_CLOCK` is set, else the system clock.
    pub(crate) fn from_env() -> Self {
        Self {
            file: std::env::var_os(TEST_CLOCK_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// Now, in ms since the epoch.
    pub(crate) fn now_ms(&self) -> anyhow::Result<i64> {
        let Some(file) = &self.file else {
            return Ok(erebor_store::now_ms());
        };
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "reading the test clock {} ({TEST_CLOCK_ENV})",
                file.display()
            )
        })?;
        parse_time(text.trim())
            .with_context(|| format!("the test clock {} ({TEST_CLOCK_ENV})", file.display()))
    }
}

/// Parses ms since the epoch or an RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("`{text}` is neither ms since the epoch nor an RFC 3339 time"))?;
    Ok(time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ms_and_rfc3339() {
        assert_eq!(parse_time("1500").unwrap(), 1500);
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_time("tomorrow").is_err());
    }
}
