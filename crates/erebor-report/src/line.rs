//! Line charts: every series of a metric key overlaid on one plot (the arms of a fan-out, runs
//! compared), a legend above the plot, ticks and axis titles, a dashed reference line. Margins
//! are computed from the widest label, so no label is clipped.

use crate::axis::{Axis, Frame};
use crate::model::{LineChart, Series};
use crate::text::{escape, fit, width};
use std::fmt::Write;

/// Width of every line chart (SVG pixels).
pub const WIDTH: f64 = 480.0;
/// Height of the plot area.
const PLOT_HEIGHT: f64 = 200.0;
/// Outer padding.
pub(crate) const PAD: f64 = 8.0;
/// Tick label font size.
pub(crate) const FONT: f64 = 11.0;
/// Title font size.
pub(crate) const TITLE_FONT: f64 = 13.0;
/// Height of one legend row.
pub(crate) const LEGEND_ROW: f64 = 17.0;
/// Series with at most this many points get a marker on each point.
const MARKERS_UP_TO: usize = 40;
/// Font stack: DejaVu Sans (Debian's default) first, so estimates and rendering agree.
pub(crate) const FONTS: &str = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

/// One legend entry: its colour, whether it is dashed, its label.
pub(crate) struct LegendItem {
    pub(crate) color: String,
    pub(crate) dashed: bool,
    pub(crate) label: String,
}

/// The SVG of a line chart.
pub fn svg(chart: &LineChart) -> String {
    let mut legend: Vec<LegendItem> = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendItem {
            color: crate::PALETTE[i % crate::PALETTE.len()].to_owned(),
            dashed: false,
            label: s.label.clone(),
        })
        .collect();
    if let Some(reference) = &chart.reference {
        legend.push(LegendItem {
            color: "#555555".to_owned(),
            dashed: true,
            label: reference.label.clone(),
        });
    }
    let frame = layout(chart, legend_rows(&legend, WIDTH));
    let height = frame.bottom() + 2.0 * FONT + 18.0 + PAD;
    let mut svg = open(&chart.title, "line", WIDTH, height);
    title_and_legend(&mut svg, &chart.title, &legend, WIDTH);
    axes(
        &mut svg,
        &frame,
        &frame.x.labels(),
        &chart.x_label,
        &chart.y_label,
    );
    if let Some(reference) = &chart.reference {
        let (_, y) = frame.project(frame.x.min, reference.value);
        let _ = writeln!(
            svg,
            "<line class=\"reference\" x1=\"{:.3}\" y1=\"{y:.3}\" x2=\"{:.3}\" y2=\"{y:.3}\" stroke=\"#555555\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"/>",
            frame.left,
            frame.right()
        );
    }
    for (i, series) in chart.series.iter().enumerate() {
        plot_series(&mut svg, &frame, series, &legend[i].color);
    }
    if chart.series.iter().all(|s| finite(s).next().is_none()) {
        let _ = writeln!(
            svg,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            frame.left + frame.width / 2.0,
            frame.top + frame.height / 2.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The plot area: axes covering every finite point and the reference, margins from the labels.
fn layout(chart: &LineChart, legend_rows: usize) -> Frame {
    let points: Vec<(f64, f64)> = chart.series.iter().flat_map(finite).collect();
    let x_range = range(points.iter().map(|p| p.0));
    let y_values = points
        .iter()
        .map(|p| p.1)
        .chain(chart.reference.as_ref().map(|r| r.value));
    let y_range = range(y_values);
    let x = Axis::nice(x_range.0, x_range.1, 6);
    let y = Axis::nice(y_range.0, y_range.1, 5);
    let widest_y = y
        .labels()
        .iter()
        .map(|l| width(l, FONT))
        .fold(0.0, f64::max);
    let last_x = x.labels().last().map_or(0.0, |l| width(l, FONT));
    // Axis title (rotated) + gap + widest tick label + gap.
    let left = PAD + FONT + 6.0 + widest_y + 6.0;
    let right = PAD + last_x / 2.0;
    let top = PAD + TITLE_FONT + 6.0 + legend_rows as f64 * LEGEND_ROW + 6.0;
    Frame {
        left,
        top,
        width: WIDTH - left - right,
        height: PLOT_HEIGHT,
        x,
        y,
    }
}

/// The smallest and largest of the values ((0, 1) when there are none).
pub(crate) fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 1.0))
}

fn finite(series: &Series) -> impl Iterator<Item = (f64, f64)> + '_ {
    series
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// The opening `<svg>` tag, its `<title>` and a white background.
pub(crate) fn open(title: &str, class: &str, width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {class}\" data-chart=\"{t}\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"{FONTS}\" font-size=\"{FONT}\" role=\"img\">\n<title>{t}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        t = escape(title)
    )
}

/// How many rows the legend takes at `chart_width`.
pub(crate) fn legend_rows(items: &[LegendItem], chart_width: f64) -> usize {
    if items.is_empty() {
        return 0;
    }
    legend_positions(items, chart_width)
        .last()
        .map_or(0, |(row, _, _)| row + 1)
}

/// (row, x, fitted label) of each legend item, wrapped to the chart width.
fn legend_positions(items: &[LegendItem], chart_width: f64) -> Vec<(usize, f64, String)> {
    let usable = chart_width - 2.0 * PAD;
    let (mut row, mut x) = (0, PAD);
    items
        .iter()
        .map(|item| {
            let label = fit(&item.label, usable - 22.0, FONT);
            let item_width = 22.0 + width(&label, FONT);
            if x > PAD && x + item_width > PAD + usable {
                row += 1;
                x = PAD;
            }
            let at = (row, x, label);
            x += item_width + 14.0;
            at
        })
        .collect()
}

/// The chart title and, under it, the legend.
pub(crate) fn title_and_legend(svg: &mut String, title: &str, items: &[LegendItem], w: f64) {
    let _ = writeln!(
        svg,
        "<text class=\"title\" x=\"{PAD}\" y=\"{:.1}\" font-size=\"{TITLE_FONT}\" font-weight=\"bold\" fill=\"#222222\">{}</text>",
        PAD + TITLE_FONT,
        escape(&fit(title, w - 2.0 * PAD, TITLE_FONT * 1.08))
    );
    let first_row = PAD + TITLE_FONT + 6.0;
    for (item, (row, x, label)) in items.iter().zip(legend_positions(items, w)) {
        let y = first_row + row as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        let dash = if item.dashed {
            " stroke-dasharray=\"5 4\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<g class=\"legend-item\"><line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"2.5\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222222\"><title>{}</title>{}</text></g>",
            x + 16.0,
            item.color,
            x + 22.0,
            y + FONT * 0.36,
            escape(&item.label),
            escape(&label)
        );
    }
}

/// Grid lines, axis lines, tick labels (`x_labels` for the x ticks) and the two axis titles.
pub(crate) fn axes(
    svg: &mut String,
    frame: &Frame,
    x_labels: &[String],
    x_title: &str,
    y_title: &str,
) {
    for (tick, label) in frame.y.ticks.iter().zip(frame.y.labels()) {
        let (_, y) = frame.project(frame.x.min, *tick);
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{:.3}\" y1=\"{y:.3}\" x2=\"{:.3}\" y2=\"{y:.3}\" stroke=\"#e6e6e6\"/><text class=\"ytick\" x=\"{:.1}\" y=\"{y:.3}\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#444444\">{label}</text>",
            frame.left,
            frame.right(),
            frame.left - 6.0
        );
    }
    for (tick, label) in frame.x.ticks.iter().zip(x_labels) {
        let (x, _) = frame.project(*tick, frame.y.min);
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{x:.3}\" y1=\"{:.3}\" x2=\"{x:.3}\" y2=\"{:.3}\" stroke=\"#f0f0f0\"/><text class=\"xtick\" x=\"{x:.3}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444444\">{}</text>",
            frame.top,
            frame.bottom(),
            frame.bottom() + FONT + 8.0,
            escape(label)
        );
    }
    let _ = writeln!(
        svg,
        "<path class=\"axis\" d=\"M{l:.3},{t:.3} V{b:.3} H{r:.3}\" fill=\"none\" stroke=\"#888888\"/>",
        l = frame.left,
        t = frame.top,
        b = frame.bottom(),
        r = frame.right()
    );
    let _ = writeln!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#222222\">{}</text>",
        frame.left + frame.width / 2.0,
        frame.bottom() + 2.0 * FONT + 14.0,
        escape(&fit(x_title, frame.width, FONT))
    );
    let (cx, cy) = (PAD + FONT, frame.top + frame.height / 2.0);
    let _ = writeln!(
        svg,
        "<text class=\"axis-title\" transform=\"translate({cx:.1},{cy:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#222222\">{}</text>",
        escape(&fit(y_title, frame.height, FONT))
    );
}

/// A series as polylines (broken at non-finite values), single points as dots, and markers
/// on each point of a short series.
fn plot_series(svg: &mut String, frame: &Frame, series: &Series, color: &str) {
    let label = escape(&series.label);
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in &series.points {
        if x.is_finite() && y.is_finite() {
            if let Some(last) = segments.last_mut() {
                last.push(frame.project(*x, *y));
            }
        } else if segments.last().is_some_and(|s| !s.is_empty()) {
            segments.push(Vec::new());
        }
    }
    let count = series.points.len();
    for segment in segments.iter().filter(|s| !s.is_empty()) {
        if segment.len() > 1 {
            let points: Vec<String> = segment
                .iter()
                .map(|(x, y)| format!("{x:.3},{y:.3}"))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline class=\"series\" data-series=\"{label}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        if segment.len() == 1 || count <= MARKERS_UP_TO {
            for (x, y) in segment {
                let _ = writeln!(
                    svg,
                    "<circle class=\"point\" data-series=\"{label}\" cx=\"{x:.3}\" cy=\"{y:.3}\" r=\"2.6\" fill=\"{color}\"/>"
                );
            }
        }
    }
}
