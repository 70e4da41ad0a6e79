//! Regression detection over a schedule's history: a metric is out of band when it lies
//! outside median ± k·MAD of the same metric in the schedule's earlier fresh runs, judged only
//! with at least [`MIN_RUNS`] of them. Pure functions, no I/O.
//!
//! MAD is the median absolute deviation (unscaled). When every earlier value is the same the
//! MAD is 0 and any value that differs by more than a rounding error ([`TOLERANCE`] relative)
//! is out of band: a deterministic recipe that changes its number has changed.

use std::collections::BTreeMap;

/// Earlier fresh runs needed before a band is drawn.
pub(crate) const MIN_RUNS: usize = 3;
/// At most this many of the newest earlier fresh runs make the band.
pub(crate) const WINDOW: usize = 20;
/// Relative tolerance of a band of zero width.
pub(crate) const TOLERANCE: f64 = 1e-9;

/// The band a metric is expected in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Band {
    /// Median of the earlier values.
    pub(crate) median: f64,
    /// Their median absolute deviation.
    pub(crate) mad: f64,
    /// Lower edge.
    pub(crate) low: f64,
    /// Upper edge.
    pub(crate) high: f64,
}

/// The median of `values` (not empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[mid - 1], sorted[mid])
    } else {
        sorted[mid]
    }
}

/// The band over `earlier` with half-width k·MAD, or None with fewer than [`MIN_RUNS`] values.
pub(crate) fn band(earlier: &[f64], k: f64) -> Option<Band> {
    if earlier.len() < MIN_RUNS {
        return None;
    }
    let median = median(earlier);
    let deviations: Vec<f64> = earlier.iter().map(|v| (v - median).abs()).collect();
    let mad = self::median(&deviations);
    let half = (k * mad).max(TOLERANCE * median.abs().max(1.0));
    Some(Band {
        median,
        mad,
        low: median - half,
        high: median + half,
    })
}

/// Why a run regressed: its `expect:` misses, then each metric outside its band over the
/// earlier fresh runs (`earlier`, oldest first; the newest [`WINDOW`] are used). Empty when
/// it did not.
pub(crate) fn regression_reasons(
    expect_failures: &[String],
    measurements: &BTreeMap<String, f64>,
    earlier: &[BTreeMap<String, f64>],
    k: f64,
) -> Vec<String> {
    let mut reasons: Vec<String> = expect_failures
        .iter()
        .map(|failure| format!("expect: {failure}"))
        .collect();
    let window = &earlier[earlier.len().saturating_sub(WINDOW)..];
    for (key, &value) in measurements {
        let history: Vec<f64> = window.iter().filter_map(|m| m.get(key).copied()).collect();
        let Some(band) = band(&history, k) else {
            continue;
        };
        if value < band.low || value > band.high {
            reasons.push(format!(
                "{key} = {value} is outside median {} ± {k}·MAD {} = [{}, {}] of {} earlier fresh runs",
                band.median,
                band.mad,
                band.low,
                band.high,
                history.len()
            ));
        }
    }
    reasons
}

#[cfg(test)]
// Medians and bands of small integers and halves are exact: equality is the check.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn runs(values: &[f64]) -> Vec<BTreeMap<String, f64>> {
        values
            .iter()
            .map(|v| BTreeMap::from([("eval/acc".to_owned(), *v)]))
            .collect()
    }

    fn one(value: f64) -> BTreeMap<String, f64> {
        BTreeMap::from([("eval/acc".to_owned(), value)])
    }

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        // values 1 2 3 4 100: median 3, deviations 2 1 0 1 97 -> MAD 1.
        let band = band(&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0).unwrap();
        assert_eq!(
            (band.median, band.mad, band.low, band.high),
            (3.0, 1.0, 0.0, 6.0)
        );
    }

    #[test]
    fn fewer_than_three_earlier_runs_draw_no_band() {
        assert!(band(&[1.0, 2.0], 3.0).is_none());
        assert!(regression_reasons(&[], &one(100.0), &runs(&[1.0, 1.0]), 3.0).is_empty());
    }

    #[test]
    fn values_outside_the_band_regress_and_inside_do_not() {
        let earlier = runs(&[0.50, 0.52, 0.48, 0.51]);
        // median 0.505, deviations .005 .015 .025 .005 -> MAD 0.01, k 3 -> [0.475, 0.535]
        assert!(regression_reasons(&[], &one(0.53), &earlier, 3.0).is_empty());
        let reasons = regression_reasons(&[], &one(0.40), &earlier, 3.0);
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("eval/acc = 0.4 is outside median 0.505"),
            "{reasons:?}"
        );
        // A wider k lets it through.
        assert!(regression_reasons(&[], &one(0.44), &earlier, 10.0).is_empty());
    }

    #[test]
    fn identical_history_flags_any_change_beyond_rounding() {
        let earlier = runs(&[2.0, 2.0, 2.0]);
        assert!(regression_reasons(&[], &one(2.0 + 1e-12), &earlier, 3.0).is_empty());
        assert_eq!(regression_reasons(&[], &one(2.1), &earlier, 3.0).len(), 1);
    }

    #[test]
    fn expect_misses_regress_without_history() {
        let reasons = regression_reasons(&["acc >= 0.5 (got 0.4)".into()], &one(0.4), &[], 3.0);
        assert_eq!(reasons, ["expect: acc >= 0.5 (got 0.4)"]);
    }

    #[test]
    fn only_the_newest_window_counts() {
        let mut values = vec![100.0; 30];
        values.extend([1.0; WINDOW]);
        assert!(regression_reasons(&[], &one(1.0), &runs(&values), 3.0).is_empty());
    }
}
