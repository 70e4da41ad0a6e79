//! MT-Bench per category as a radar chart, as FastChat users draw it: one axis per category on
//! the judge's 0–10 scale, one polygon per model, a legend above.

use crate::line::{FONT, LegendItem, PAD, TITLE_FONT, legend_rows, open, title_and_legend};
use crate::model::MtBenchModel;
use crate::text::{escape, width};
use std::f64::consts::PI;
use std::fmt::Write;

/// Width of the radar chart.
pub const WIDTH: f64 = 520.0;
/// The judge's scale: scores are 1–10.
pub(crate) const SCALE_MAX: f64 = 10.0;

/// The categories shown: those of the first model that has any, in its order.
pub fn categories(models: &[MtBenchModel]) -> Vec<String> {
    models
        .iter()
        .find(|m| !m.categories.is_empty())
        .map(|m| m.categories.iter().map(|(c, _)| c.clone()).collect())
        .unwrap_or_default()
}

/// The angle of axis `i` of `n`: the first points up, then clockwise.
pub(crate) fn angle(i: usize, n: usize) -> f64 {
    -PI / 2.0 + 2.0 * PI * i as f64 / n as f64
}

/// The SVG of the radar chart, or None when no model has category scores.
pub fn svg(title: &str, models: &[MtBenchModel]) -> Option<String> {
    let axes = categories(models);
    if axes.len() < 3 {
        return None;
    }
    let legend: Vec<LegendItem> = models
        .iter()
        .enumerate()
        .map(|(i, m)| LegendItem {
            color: crate::PALETTE[i % crate::PALETTE.len()].to_owned(),
            dashed: false,
            label: m.name.clone(),
        })
        .collect();
    let widest = axes.iter().map(|a| width(a, FONT)).fold(0.0, f64::max);
    let radius = (WIDTH / 2.0 - PAD - widest - 10.0).min(170.0);
    let top = PAD + TITLE_FONT + 6.0 + legend_rows(&legend, WIDTH) as f64 * 17.0 + 8.0;
    let (cx, cy) = (WIDTH / 2.0, top + FONT + 10.0 + radius);
    let height = cy + radius + FONT + 10.0 + PAD;
    let mut svg = open(title, "radar", WIDTH, height);
    title_and_legend(&mut svg, title, &legend, WIDTH);
    grid(&mut svg, &axes, cx, cy, radius);
    for (i, model) in models.iter().enumerate() {
        let points: Vec<String> = axes
            .iter()
            .enumerate()
            .map(|(k, axis)| {
                let value = model
                    .categories
                    .iter()
                    .find(|(c, _)| c == axis)
                    .map_or(0.0, |(_, v)| v.clamp(0.0, SCALE_MAX));
                let r = radius * value / SCALE_MAX;
                let a = angle(k, axes.len());
                format!("{:.3},{:.3}", cx + r * a.cos(), cy + r * a.sin())
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polygon class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"{c}\" fill-opacity=\"0.12\" stroke=\"{c}\" stroke-width=\"2\"/>",
            escape(&model.name),
            points.join(" "),
            c = legend[i].color
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// Rings at 2, 4, … 10 with their values, spokes and category labels.
fn grid(svg: &mut String, axes: &[String], cx: f64, cy: f64, radius: f64) {
    let n = axes.len();
    for ring in [2.0, 4.0, 6.0, 8.0, 10.0] {
        let r = radius * ring / SCALE_MAX;
        let points: Vec<String> = (0..n)
            .map(|k| {
                let a = angle(k, n);
                format!("{:.2},{:.2}", cx + r * a.cos(), cy + r * a.sin())
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polygon class=\"ring\" points=\"{}\" fill=\"none\" stroke=\"#dddddd\"/><text class=\"ring-label\" x=\"{:.1}\" y=\"{:.1}\" dy=\"0.35em\" fill=\"#888888\" font-size=\"9\">{ring}</text>",
            points.join(" "),
            cx + 3.0,
            cy - r
        );
    }
    for (k, axis) in axes.iter().enumerate() {
        let a = angle(k, n);
        let (ex, ey) = (cx + radius * a.cos(), cy + radius * a.sin());
        let (lx, ly) = (cx + (radius + 8.0) * a.cos(), cy + (radius + 8.0) * a.sin());
        let anchor = if a.cos().abs() < 0.2 {
            "middle"
        } else if a.cos() > 0.0 {
            "start"
        } else {
            "end"
        };
        let dy = if a.sin() < -0.5 {
            "0"
        } else if a.sin() > 0.5 {
            "0.8em"
        } else {
            "0.35em"
        };
        let _ = writeln!(
            svg,
            "<line class=\"spoke\" x1=\"{cx:.1}\" y1=\"{cy:.1}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" stroke=\"#dddddd\"/><text class=\"category\" x=\"{lx:.1}\" y=\"{ly:.1}\" dy=\"{dy}\" text-anchor=\"{anchor}\" fill=\"#222222\">{}</text>",
            escape(axis)
        );
    }
}
