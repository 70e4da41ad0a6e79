//! The run's steps as bars on a time axis (seconds or minutes since the run started), each
//! with its duration; a step reused from the cache is a thin grey mark labelled `reused`.

use crate::axis::Axis;
use crate::line::{FONT, FONTS, PAD, TITLE_FONT};
use crate::model::StepTiming;
use crate::text::{duration, escape, tick_label, width};
use std::fmt::Write;

/// Width of the timeline.
pub const WIDTH: f64 = 960.0;
/// Height of one step's row.
const ROW: f64 = 22.0;

/// Bar colour of a step status.
pub(crate) fn status_color(status: &str) -> &'static str {
    match status {
        "succeeded" => "#009e73",
        "cached" => "#9a9a9a",
        "failed" => "#d55e00",
        "running" => "#0072b2",
        "interrupted" => "#e69f00",
        _ => "#cccccc",
    }
}

/// What is written after a step's bar: its duration, `reused`, or its status.
fn annotation(step: &StepTiming) -> String {
    if step.reused_from.is_some() {
        return "reused from cache".to_owned();
    }
    match (step.started_ms, step.finished_ms) {
        (Some(s), Some(f)) => duration((f - s) as f64 / 1000.0),
        (Some(_), None) => format!("{} (unfinished)", step.status),
        _ => step.status.clone(),
    }
}

/// The SVG of the timeline; `run_start_ms` is time zero.
pub fn svg(steps: &[StepTiming], run_start_ms: i64) -> String {
    let end_ms = steps
        .iter()
        .filter_map(|s| s.finished_ms.or(s.started_ms))
        .max()
        .unwrap_or(run_start_ms)
        .max(run_start_ms + 1000);
    let total_s = (end_ms - run_start_ms) as f64 / 1000.0;
    let (unit, divisor) = if total_s > 180.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let axis = Axis::nice(0.0, total_s / divisor, 8);
    let labels: Vec<String> = steps
        .iter()
        .map(|s| format!("{} ({})", s.id, s.kind))
        .collect();
    let label_w = labels.iter().map(|l| width(l, FONT)).fold(0.0, f64::max);
    let note_w = steps
        .iter()
        .map(|s| width(&annotation(s), FONT))
        .fold(0.0, f64::max);
    let last_tick = axis.labels().last().map_or(0.0, |l| width(l, FONT));
    let left = PAD + label_w + 10.0;
    let right = WIDTH - PAD - note_w.max(last_tick / 2.0) - 6.0;
    let top = PAD + TITLE_FONT + 10.0;
    let height = top + steps.len() as f64 * ROW + 2.0 * FONT + 16.0 + PAD;
    let x_of = |ms: i64| {
        left + axis.fraction((ms - run_start_ms) as f64 / 1000.0 / divisor) * (right - left)
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart timeline\" data-chart=\"steps\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" font-family=\"{FONTS}\" font-size=\"{FONT}\" role=\"img\">\n<title>Steps</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text class=\"title\" x=\"{PAD}\" y=\"{:.1}\" font-size=\"{TITLE_FONT}\" font-weight=\"bold\">Steps</text>\n",
        PAD + TITLE_FONT
    );
    let bottom = top + steps.len() as f64 * ROW;
    for (tick, label) in axis.ticks.iter().zip(axis.labels()) {
        let x = left + axis.fraction(*tick) * (right - left);
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#eeeeee\"/><text class=\"xtick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444444\">{label}</text>",
            bottom + FONT + 4.0
        );
    }
    let _ = writeln!(
        svg,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since the run started ({unit}; ticks every {} {unit})</text>",
        f64::midpoint(left, right),
        bottom + 2.0 * FONT + 10.0,
        tick_label(axis.step, axis.step)
    );
    for (i, (step, label)) in steps.iter().zip(&labels).enumerate() {
        let y = top + i as f64 * ROW;
        let (x0, x1) = match (step.started_ms, step.finished_ms) {
            (Some(s), Some(f)) => (x_of(s), x_of(f)),
            (Some(s), None) => (x_of(s), x_of(end_ms)),
            _ => (left, left),
        };
        let bar_w = (x1 - x0).max(2.0);
        let tooltip = match &step.reused_from {
            Some(link) => format!("{} reused from {link}", step.id),
            None => format!("{}: {}", step.id, step.status),
        };
        let _ = writeln!(
            svg,
            "<g class=\"step\" data-step=\"{id}\"><title>{}</title><text class=\"step-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#222222\">{}</text><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\" rx=\"2\"/><text class=\"duration\" x=\"{:.1}\" y=\"{:.1}\" fill=\"#444444\">{}</text></g>",
            escape(&tooltip),
            left - 10.0,
            y + ROW / 2.0 + FONT * 0.36,
            escape(label),
            y + 4.0,
            ROW - 8.0,
            status_color(&step.status),
            x0 + bar_w + 5.0,
            y + ROW / 2.0 + FONT * 0.36,
            escape(&annotation(step)),
            id = escape(&step.id)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
