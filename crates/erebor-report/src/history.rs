//! A metric over time across the runs of a schedule, regressions marked in red. Not yet fed by
//! `erebor schedule history`: [`svg`] takes plain (time, value, regressed) points.

use crate::axis::{Axis, Frame};
use crate::line::{
    FONT, LegendItem, PAD, TITLE_FONT, WIDTH, axes, legend_rows, open, range, title_and_legend,
};
use crate::model::HistoryChart;
use crate::text::width;
use std::fmt::Write;

/// Colour of a regression marker.
pub(crate) const REGRESSION: &str = "#d62728";

/// The SVG of a history chart.
pub fn svg(chart: &HistoryChart) -> String {
    let legend = vec![
        LegendItem {
            color: crate::PALETTE[0].to_owned(),
            dashed: false,
            label: "value per run".to_owned(),
        },
        LegendItem {
            color: REGRESSION.to_owned(),
            dashed: false,
            label: "regression".to_owned(),
        },
    ];
    let (frame, labels) = layout(chart, legend_rows(&legend, WIDTH));
    let height = frame.bottom() + 2.0 * FONT + 18.0 + PAD;
    let mut svg = open(&chart.title, "history", WIDTH, height);
    title_and_legend(&mut svg, &chart.title, &legend, WIDTH);
    axes(&mut svg, &frame, &labels, "run time (UTC)", &chart.y_label);
    let points: Vec<(f64, f64, bool)> = chart
        .points
        .iter()
        .filter(|p| p.value.is_finite())
        .map(|p| {
            let (x, y) = frame.project(p.at_ms as f64, p.value);
            (x, y, p.regressed)
        })
        .collect();
    if points.len() > 1 {
        let line: Vec<String> = points
            .iter()
            .map(|(x, y, _)| format!("{x:.3},{y:.3}"))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"series\" data-series=\"value per run\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            crate::PALETTE[0],
            line.join(" ")
        );
    }
    for (x, y, regressed) in points {
        let (class, color, r) = if regressed {
            ("regression", REGRESSION, 5.0)
        } else {
            ("point", crate::PALETTE[0], 3.0)
        };
        let _ = writeln!(
            svg,
            "<circle class=\"{class}\" cx=\"{x:.3}\" cy=\"{y:.3}\" r=\"{r}\" fill=\"{color}\"/>"
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The plot area, with time ticks at (up to six) evenly spaced instants labelled as dates.
fn layout(chart: &HistoryChart, legend_rows: usize) -> (Frame, Vec<String>) {
    let (t0, t1) = range(chart.points.iter().map(|p| p.at_ms as f64));
    let (t0, t1) = if t1 > t0 {
        (t0, t1)
    } else {
        (t0 - 3.6e6, t1 + 3.6e6)
    };
    let count = chart.points.len().clamp(2, 5);
    let ticks: Vec<f64> = (0..count)
        .map(|i| t0 + (t1 - t0) * i as f64 / (count - 1) as f64)
        .collect();
    // Ticks lie between two recorded `i64` millisecond times: the cast neither wraps nor
    // saturates, and drops only a fraction of a millisecond.
    #[allow(clippy::cast_possible_truncation)]
    let labels: Vec<String> = ticks.iter().map(|t| date_label(*t as i64)).collect();
    let x = Axis {
        min: t0,
        max: t1,
        step: (t1 - t0) / (count - 1) as f64,
        ticks,
    };
    let (lo, hi) = range(
        chart
            .points
            .iter()
            .map(|p| p.value)
            .filter(|v| v.is_finite()),
    );
    let y = Axis::nice(lo, hi, 5);
    let widest_y = y
        .labels()
        .iter()
        .map(|l| width(l, FONT))
        .fold(0.0, f64::max);
    let widest_x = labels.iter().map(|l| width(l, FONT)).fold(0.0, f64::max);
    let left = (PAD + FONT + 6.0 + widest_y + 6.0).max(PAD + widest_x / 2.0);
    let right = PAD + widest_x / 2.0;
    let top = PAD + TITLE_FONT + 6.0 + legend_rows as f64 * 17.0 + 6.0;
    let frame = Frame {
        left,
        top,
        width: WIDTH - left - right,
        height: 200.0,
        x,
        y,
    };
    (frame, labels)
}

/// `11-30 14:05` (UTC) for a time in ms since the epoch.
pub(crate) fn date_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "?".to_owned(), |t| t.format("%m-%d %H:%M").to_string())
}
