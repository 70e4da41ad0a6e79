//! Cron expressions read in a time zone, and the daylight-saving rule.
//!
//! The expression (5 fields, or 6 with seconds first; croner's Vixie-cron syntax) is matched
//! against the zone's wall clock; each matching wall time is then placed on the time line:
//! - a wall time that occurs once is that instant;
//! - a wall time that occurs twice (fall-back night) fires once, at its first occurrence;
//! - a wall time that does not occur (spring-forward gap) fires once, at the first instant
//!   after the gap; ticks that land on the same instant (two in one gap, or one in the gap and
//!   one at its end) are one tick.
//!
//! Ticks are identified by their instant (ms since the epoch), strictly increasing.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// Why a cron expression or time zone was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CronSpecError {
    /// The expression does not parse.
    #[error(
        "invalid cron expression `{expr}`: {reason} (5 fields `MIN HOUR DOM MON DOW`, or 6 with seconds first)"
    )]
    Expression {
        /// The expression.
        expr: String,
        /// croner's reason.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error(
        "unknown time zone `{0}`: give an IANA name such as UTC, Europe/Berlin or America/New_York"
    )]
    TimeZone(String),
}

/// A cron expression in a time zone.
#[derive(Clone, Debug)]
pub(crate) struct CronSpec {
    cron: croner::Cron,
    tz: Tz,
}

/// How far apart two matching wall times may be before the search gives up (a pattern such as
/// `0 0 30 2 *` never matches).
const MAX_STEPS: usize = 200_000;

impl CronSpec {
    /// Parses `expr` (seconds optional) and the IANA zone `tz`.
    pub(crate) fn parse(expr: &str, tz: &str) -> Result<Self, CronSpecError> {
        let tz = Tz::from_str(tz).map_err(|_| CronSpecError::TimeZone(tz.to_owned()))?;
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|error| CronSpecError::Expression {
                expr: expr.to_owned(),
                reason: error.to_string(),
            })?;
        // A pattern that never matches (February 30th) is refused now, not at the first tick.
        let spec = Self { cron, tz };
        if spec.next_after(0).is_none() {
            return Err(CronSpecError::Expression {
                expr: expr.to_owned(),
                reason: "it never matches".to_owned(),
            });
        }
        Ok(spec)
    }

    /// The zone.
    pub(crate) fn tz(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after_ms`.
    pub(crate) fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        let mut wall = start.with_timezone(&self.tz).naive_local();
        for _ in 0..MAX_STEPS {
            let as_utc = Utc.from_utc_datetime(&wall);
            let next = self.cron.find_next_occurrence(&as_utc, false).ok()?;
            wall = next.naive_utc();
            let instant = self.place(wall)?;
            if instant > after_ms {
                return Some(instant);
            }
        }
        None
    }

    /// The ticks in `(after_ms, until_ms]`, oldest first, at most the newest `cap` of them,
    /// and whether older ones were left out. The search starts an hour before `until_ms` and
    /// doubles its window until it holds `cap` ticks or reaches `after_ms`, so a scheduler that
    /// was down for a year does not walk a per-second schedule tick by tick.
    pub(crate) fn ticks_between(
        &self,
        after_ms: i64,
        until_ms: i64,
        cap: usize,
    ) -> (Vec<i64>, bool) {
        let mut window: i64 = 3_600_000;
        loop {
            let from = after_ms.max(until_ms.saturating_sub(window));
            let ticks = self.scan(from, until_ms);
            if ticks.len() >= cap || from == after_ms {
                let left_out = ticks.len() > cap || (from > after_ms && ticks.len() == cap);
                let start = ticks.len().saturating_sub(cap);
                return (ticks[start..].to_vec(), left_out);
            }
            window = window.saturating_mul(2);
        }
    }

    /// Every tick in `(after_ms, until_ms]`, oldest first.
    fn scan(&self, after_ms: i64, until_ms: i64) -> Vec<i64> {
        let mut ticks = Vec::new();
        let mut at = after_ms;
        while let Some(next) = self.next_after(at) {
            if next > until_ms {
                break;
            }
            ticks.push(next);
            at = next;
        }
        ticks
    }

    /// Places a wall time on the time line by the daylight-saving rule (module docs).
    fn place(&self, wall: NaiveDateTime) -> Option<i64> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.timestamp_millis()),
            LocalResult::Ambiguous(first, second) => {
                Some(first.timestamp_millis().min(second.timestamp_millis()))
            }
            LocalResult::None => self.first_instant_after_gap(wall),
        }
    }

    /// The first instant whose wall time is later than `wall` (a wall time inside a gap): the
    /// end of the gap. Wall time only jumps forward around a gap, so a binary search over a
    /// day either side finds it to the millisecond.
    fn first_instant_after_gap(&self, wall: NaiveDateTime) -> Option<i64> {
        let guess = wall.and_utc().timestamp_millis();
        let day = 86_400_000;
        let (mut lo, mut hi) = (guess - day, guess + day);
        let later = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .is_none_or(|t| t.with_timezone(&self.tz).naive_local() > wall)
        };
        if !later(hi) {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if later(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn utc(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    }

    fn ticks(expr: &str, tz: &str, from: &str, to: &str) -> Vec<String> {
        let spec = CronSpec::parse(expr, tz).unwrap();
        let (ticks, left_out) = spec.ticks_between(ms(from), ms(to), 1000);
        assert!(!left_out);
        ticks.into_iter().map(utc).collect()
    }

    #[test]
    fn five_and_six_field_expressions_in_utc() {
        assert_eq!(
            ticks(
                "0 * * * *",
                "UTC",
                "2026-03-01T00:00:00Z",
                "2026-03-01T02:30:00Z"
            ),
            ["2026-03-01T01:00:00+00:00", "2026-03-01T02:00:00+00:00"]
        );
        assert_eq!(
            ticks(
                "*/5 * * * * *",
                "UTC",
                "2026-03-01T00:00:00Z",
                "2026-03-01T00:00:12Z"
            ),
            ["2026-03-01T00:00:05+00:00", "2026-03-01T00:00:10+00:00"]
        );
    }

    #[test]
    fn a_spring_forward_gap_fires_once_at_its_end() {
        // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC). A daily 02:30
        // tick does not exist that night; it fires at 03:00 CEST, once.
        assert_eq!(
            ticks(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-28T00:00:00Z",
                "2026-03-30T12:00:00Z"
            ),
            [
                "2026-03-28T01:30:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-30T00:30:00+00:00"
            ]
        );
        // Every 30 minutes: 02:00 and 02:30 fall in the gap and merge with 03:00.
        assert_eq!(
            ticks(
                "*/30 * * * *",
                "Europe/Berlin",
                "2026-03-29T00:15:00Z",
                "2026-03-29T01:45:00Z"
            ),
            [
                "2026-03-29T00:30:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T01:30:00+00:00"
            ]
        );
    }

    #[test]
    fn a_fall_back_repeated_wall_time_fires_once_at_its_first_occurrence() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC), so 02:30 happens
        // at 00:30 UTC and again at 01:30 UTC; it fires at 00:30 UTC only.
        assert_eq!(
            ticks(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-24T00:00:00Z",
                "2026-10-26T12:00:00Z"
            ),
            [
                "2026-10-24T00:30:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-26T01:30:00+00:00"
            ]
        );
        // Hourly: the repeated 02:00 wall hour fires once.
        assert_eq!(
            ticks(
                "0 * * * *",
                "Europe/Berlin",
                "2026-10-24T23:30:00Z",
                "2026-10-25T02:30:00Z"
            ),
            ["2026-10-25T00:00:00+00:00", "2026-10-25T02:00:00+00:00"]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_the_reason() {
        let error = CronSpec::parse("61 * * * *", "UTC").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("invalid cron expression `61 * * * *`"),
            "{error}"
        );
        let error = CronSpec::parse("every day", "UTC").unwrap_err();
        assert!(matches!(error, CronSpecError::Expression { .. }));
        let error = CronSpec::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(error.to_string().contains("never matches"), "{error}");
        assert_eq!(
            CronSpec::parse("0 * * * *", "Mars/Olympus").unwrap_err(),
            CronSpecError::TimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn the_newest_ticks_are_kept_when_there_are_too_many() {
        let spec = CronSpec::parse("* * * * * *", "UTC").unwrap();
        let (ticks, left_out) = spec.ticks_between(0, 10_000, 3);
        assert_eq!(ticks, [8_000, 9_000, 10_000]);
        assert!(left_out);
        let (ticks, left_out) = spec.ticks_between(7_000, 10_000, 3);
        assert_eq!(ticks, [8_000, 9_000, 10_000]);
        assert!(!left_out);
        // A year of a per-second schedule: only the newest are looked at.
        let year = 365 * 86_400_000;
        let (ticks, left_out) = spec.ticks_between(0, year, 1000);
        assert_eq!((ticks.len(), ticks[999], left_out), (1000, year, true));
        // A weekly schedule over years is found by widening the window.
        let weekly = CronSpec::parse("0 3 * * MON", "UTC").unwrap();
        let (ticks, left_out) = weekly.ticks_between(0, 3 * year, 1000);
        assert_eq!((ticks.len(), left_out), (156, false));
    }
}
