//! Rendering a report: Markdown, and HTML with inline SVG line charts (no scripts, no external
//! files).

use crate::format::number;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One reported step (a matrix arm or a plain step) and its metric series.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// The step id.
    pub label: String,
    /// Key → (index, value) in index order.
    pub series: BTreeMap<String, Vec<(i64, f64)>>,
}

/// What a report shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportData {
    /// Title.
    pub title: String,
    /// The run.
    pub run_id: String,
    /// Keys, in display order.
    pub keys: Vec<String>,
    /// The steps.
    pub arms: Vec<Arm>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

fn last(series: Option<&Vec<(i64, f64)>>) -> Option<f64> {
    series.and_then(|s| s.last()).map(|(_, v)| *v)
}

/// The Markdown report: a table of final values, then per key the points, min and max per arm.
pub fn markdown(data: &ReportData) -> String {
    let mut out = format!(
        "# {}\n\nRun `{}`.\n\n## Final values\n\n",
        data.title, data.run_id
    );
    out.push_str("| metric |");
    for arm in &data.arms {
        let _ = write!(out, " {} |", arm.label);
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(data.arms.len()));
    out.push('\n');
    for key in &data.keys {
        let _ = write!(out, "| {key} |");
        for arm in &data.arms {
            let cell = last(arm.series.get(key))
                .map(number)
                .unwrap_or_else(|| "–".to_owned());
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    for key in &data.keys {
        let _ = write!(
            out,
            "\n## {key}\n\n| step | points | first | min | max | last |\n|---|---:|---:|---:|---:|---:|\n"
        );
        for arm in &data.arms {
            let Some(series) = arm.series.get(key).filter(|s| !s.is_empty()) else {
                let _ = writeln!(out, "| {} | 0 | – | – | – | – |", arm.label);
                continue;
            };
            let finite: Vec<f64> = series
                .iter()
                .map(|(_, v)| *v)
                .filter(|v| v.is_finite())
                .collect();
            let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let show = |v: f64| {
                if v.is_finite() {
                    number(v)
                } else {
                    "–".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                arm.label,
                series.len(),
                number(series[0].1),
                show(min),
                show(max),
                number(series[series.len() - 1].1)
            );
        }
    }
    out.push_str("\nCharts: report.html.\n");
    out
}

/// The HTML report: per key a row of charts, one per arm, sharing both axes; then the table of
/// final values.
pub fn html(data: &ReportData) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p>Run <code>{}</code>.</p>\n",
        escape(&data.title),
        escape(&data.run_id)
    );
    for key in &data.keys {
        let all: Vec<(i64, f64)> = data
            .arms
            .iter()
            .filter_map(|arm| arm.series.get(key))
            .flatten()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .collect();
        let _ = write!(
            body,
            "<section>\n<h2>{}</h2>\n<div class=\"row\">\n",
            escape(key)
        );
        let bounds = Bounds::of(&all);
        for (i, arm) in data.arms.iter().enumerate() {
            let series = arm.series.get(key).cloned().unwrap_or_default();
            body.push_str(&svg_chart(
                &arm.label,
                &series,
                bounds,
                COLORS[i % COLORS.len()],
            ));
        }
        body.push_str("</div>\n</section>\n");
    }
    body.push_str("<h2>Final values</h2>\n<table>\n<tr><th>metric</th>");
    for arm in &data.arms {
        let _ = write!(body, "<th>{}</th>", escape(&arm.label));
    }
    body.push_str("</tr>\n");
    for key in &data.keys {
        let _ = write!(body, "<tr><td>{}</td>", escape(key));
        for arm in &data.arms {
            let cell = last(arm.series.get(key))
                .map(number)
                .unwrap_or_else(|| "–".to_owned());
            let _ = write!(body, "<td>{cell}</td>");
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}\n\
         .row {{ display: flex; flex-wrap: wrap; gap: 1rem; }}\n\
         table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}\n\
         td:first-child, th:first-child {{ text-align: left; }}\n\
         svg text {{ font-size: 11px; fill: #444; }}\n\
         </style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&data.title)
    )
}

/// The x and y ranges shared by the charts of one key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Smallest index.
    pub x_min: f64,
    /// Largest index.
    pub x_max: f64,
    /// Smallest value.
    pub y_min: f64,
    /// Largest value.
    pub y_max: f64,
}

impl Bounds {
    /// The bounds of the points; a flat range is widened so it can be drawn.
    pub fn of(points: &[(i64, f64)]) -> Self {
        let mut bounds = Bounds {
            x_min: 0.0,
            x_max: 1.0,
            y_min: 0.0,
            y_max: 1.0,
        };
        if let Some(first) = points.first() {
            bounds = Bounds {
                x_min: first.0 as f64,
                x_max: first.0 as f64,
                y_min: first.1,
                y_max: first.1,
            };
            for (x, y) in points {
                bounds.x_min = bounds.x_min.min(*x as f64);
                bounds.x_max = bounds.x_max.max(*x as f64);
                bounds.y_min = bounds.y_min.min(*y);
                bounds.y_max = bounds.y_max.max(*y);
            }
        }
        if bounds.x_max == bounds.x_min {
            bounds.x_max = bounds.x_min + 1.0;
        }
        if bounds.y_max == bounds.y_min {
            let pad = if bounds.y_min == 0.0 {
                1.0
            } else {
                bounds.y_min.abs() * 0.1
            };
            bounds.y_min -= pad;
            bounds.y_max += pad;
        }
        bounds
    }
}

/// Chart size and margins.
pub const WIDTH: f64 = 360.0;
/// Chart height.
pub const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 28.0;

/// Maps an (index, value) point into SVG coordinates.
pub fn project(bounds: Bounds, x: f64, y: f64) -> (f64, f64) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = LEFT + (x - bounds.x_min) / (bounds.x_max - bounds.x_min) * plot_w;
    let py = TOP + (bounds.y_max - y) / (bounds.y_max - bounds.y_min) * plot_h;
    (px, py)
}

/// One line chart; NaN and infinite values break the line.
pub fn svg_chart(title: &str, series: &[(i64, f64)], bounds: Bounds, color: &str) -> String {
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">\n<title>{}</title>\n",
        escape(title)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"14\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    let (x0, y0) = (LEFT, HEIGHT - BOTTOM);
    let _ = writeln!(
        svg,
        "<line x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"#888\"/>"
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"#888\"/>",
        WIDTH - RIGHT
    );
    for (value, anchor) in [(bounds.y_max, TOP + 4.0), (bounds.y_min, y0)] {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{anchor}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            number(value)
        );
    }
    for (value, anchor) in [(bounds.x_min, "start"), (bounds.x_max, "end")] {
        let (px, _) = project(bounds, value, bounds.y_min);
        let _ = writeln!(
            svg,
            "<text x=\"{px:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            HEIGHT - 10.0,
            number(value)
        );
    }
    let mut segment: Vec<String> = Vec::new();
    let flush = |segment: &mut Vec<String>, svg: &mut String| {
        if segment.len() == 1 {
            let (x, y) = segment[0].split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{color}\"/>"
            );
        } else if segment.len() > 1 {
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{}\"/>",
                segment.join(" ")
            );
        }
        segment.clear();
    };
    for (x, y) in series {
        if y.is_finite() {
            let (px, py) = project(bounds, *x as f64, *y);
            segment.push(format!("{px:.1},{py:.1}"));
        } else {
            flush(&mut segment, &mut svg);
        }
    }
    flush(&mut segment, &mut svg);
    if series.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> ReportData {
        let dpo = Arm {
            label: "train[dpo]".into(),
            series: BTreeMap::from([("loss".to_owned(), vec![(0, 2.0), (1, 1.0), (2, 0.5)])]),
        };
        let dpop = Arm {
            label: "train[dpop]".into(),
            series: BTreeMap::from([("loss".to_owned(), vec![(0, 2.0), (1, f64::NAN), (2, 0.25)])]),
        };
        ReportData {
            title: "DPO <vs> DPOP".into(),
            run_id: "r-1".into(),
            keys: vec!["loss".into()],
            arms: vec![dpo, dpop],
        }
    }

    #[test]
    fn charts_share_the_scale_and_put_points_where_hand_computation_says() {
        let html = html(&data());
        // Shared bounds: x 0..2, y 0.25..2. Plot area 292 x 168 starting at (56, 24).
        // dpo (1, 1.0): px = 56 + 0.5*292 = 202, py = 24 + (2-1)/1.75*168 = 120.
        assert!(
            html.contains("points=\"56.0,24.0 202.0,120.0 348.0,168.0\""),
            "{html}"
        );
        // dpop: the NaN at index 1 breaks the line into two single points.
        assert!(html.contains("<circle cx=\"56.0\" cy=\"24.0\""), "{html}");
        assert!(html.contains("<circle cx=\"348.0\" cy=\"192.0\""), "{html}");
        assert!(html.contains("DPO &lt;vs&gt; DPOP"));
        assert!(!html.contains("<script"), "self-contained and static");
        assert!(
            html.contains("<tr><td>loss</td><td>0.5</td><td>0.25</td></tr>"),
            "{html}"
        );
    }

    #[test]
    fn markdown_has_final_values_and_per_arm_summaries() {
        let md = markdown(&data());
        assert!(md.contains("| loss | 0.5 | 0.25 |"), "{md}");
        assert!(
            md.contains("| train[dpop] | 3 | 2 | 0.25 | 2 | 0.25 |"),
            "{md}"
        );
    }

    #[test]
    fn flat_series_get_a_drawable_range() {
        let bounds = Bounds::of(&[(5, 3.0)]);
        assert_eq!(
            bounds,
            Bounds {
                x_min: 5.0,
                x_max: 6.0,
                y_min: 2.7,
                y_max: 3.3
            }
        );
    }
}
