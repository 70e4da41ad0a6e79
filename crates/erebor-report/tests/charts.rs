//! Charts read back: the plotted points, recovered from the SVG through its tick labels (the
//! pixel positions of two labelled ticks define the inverse of the axis mapping), equal the
//! data; the radar's vertices equal the category scores; the PNG has the series' colour where
//! the SVG puts a point.

use erebor_report::html::{charts, page};
use erebor_report::model::{
    HistoryChart, HistoryPoint, LineChart, MtBenchModel, Reference, Report, Series,
};
use erebor_report::png::PngRenderer;
use erebor_report::text::parse_number;
use resvg::tiny_skia::{Pixmap, PremultipliedColorU8};

/// The value of attribute `name` in the tag text `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// Every element `<NAME ...>` (its opening tag) and, for `<text>`, its text.
fn elements<'a>(svg: &'a str, name: &str) -> Vec<(&'a str, String)> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at..];
        let end = rest.find('>').unwrap();
        let tag = &rest[..=end];
        let text = if name == "text" {
            let close = rest.find("</text>").unwrap();
            let inner = &rest[end + 1..close];
            // Drop a nested <title>…</title>.
            match inner.find("</title>") {
                Some(t) => inner[t + 8..].to_owned(),
                None => inner.to_owned(),
            }
        } else {
            String::new()
        };
        out.push((tag, text));
        rest = &rest[end..];
    }
    out
}

/// A linear pixel → value map from the first and last labelled tick of class `class`
/// (`xtick` reads attribute `x`, `ytick` attribute `y`).
fn tick_map(svg: &str, class: &str) -> impl Fn(f64) -> f64 {
    let coordinate = if class == "xtick" { "x" } else { "y" };
    let ticks: Vec<(f64, f64)> = elements(svg, "text")
        .into_iter()
        .filter(|(tag, _)| attr(tag, "class").as_deref() == Some(class))
        .map(|(tag, text)| {
            assert!(
                !text.contains('-'),
                "a hyphen as minus sign in tick {text:?}"
            );
            let pixel: f64 = attr(tag, coordinate).unwrap().parse().unwrap();
            (pixel, parse_number(&text).unwrap())
        })
        .collect();
    assert!(ticks.len() >= 2, "{class}: {ticks:?}");
    let ((p0, v0), (p1, v1)) = (ticks[0], ticks[ticks.len() - 1]);
    move |pixel| v0 + (pixel - p0) / (p1 - p0) * (v1 - v0)
}

/// The plotted (x, y) points of each series, read back through the tick labels.
fn read_back(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let (to_x, to_y) = (tick_map(svg, "xtick"), tick_map(svg, "ytick"));
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (tag, _) in elements(svg, "polyline") {
        let label = attr(tag, "data-series").unwrap().replace("&amp;", "&");
        let points = attr(tag, "points").unwrap();
        let points = points.split(' ').map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (to_x(x.parse().unwrap()), to_y(y.parse().unwrap()))
        });
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, existing)) => existing.extend(points),
            None => out.push((label, points.collect())),
        }
    }
    out
}

/// Held-out mean log-probs of the chosen answers after the edit, as the quickstart records them
/// (index 0 is the reference model): DPO pushes them down, DPOP keeps them; one NaN.
fn arms() -> LineChart {
    let dpo: Vec<(f64, f64)> = (0..9)
        .map(|i| (f64::from(i * 22), -0.129_769 - 0.41 * f64::from(i)))
        .collect();
    let mut dpop: Vec<(f64, f64)> = (0..9)
        .map(|i| (f64::from(i * 22), -0.129_769 + 0.0251 * f64::from(i)))
        .collect();
    dpop[4].1 = f64::NAN;
    LineChart {
        title: "eval/logps/chosen_after_edit".into(),
        x_label: "optimizer step".into(),
        y_label: "mean log-prob (nats)".into(),
        series: vec![
            Series {
                label: "train[dpo]".into(),
                points: dpo,
            },
            Series {
                label: "train[dpop] (reused from r-20261201-034512-abcd:train[dpop])".into(),
                points: dpop,
            },
        ],
        reference: Some(Reference {
            label: "reference model (index 0)".into(),
            value: -0.129_769,
        }),
    }
}

#[test]
fn plotted_points_read_back_through_the_tick_labels_equal_the_data() {
    let chart = arms();
    let svg = erebor_report::line::svg(&chart);
    let back = read_back(&svg);
    assert_eq!(back.len(), 2, "{svg}");
    for (series, (label, points)) in chart.series.iter().zip(&back) {
        assert_eq!(*label, series.label);
        let finite: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        assert_eq!(
            points.len(),
            finite.len(),
            "{label}: the NaN breaks the line, no point is lost"
        );
        for ((x, y), (bx, by)) in finite.iter().zip(points) {
            // Pixels are written with 3 decimals: 0.0005 px of a ~200 px axis.
            assert!(
                (x - bx).abs() < 1e-3 * 176.0 / 100.0,
                "{label}: x {x} read back as {bx}"
            );
            assert!((y - by).abs() < 1e-4, "{label}: y {y} read back as {by}");
        }
    }
    // The reference line sits at the reference value.
    let to_y = tick_map(&svg, "ytick");
    let (line, _) = elements(&svg, "line")
        .into_iter()
        .find(|(tag, _)| attr(tag, "class").as_deref() == Some("reference"))
        .unwrap();
    let y = to_y(attr(line, "y1").unwrap().parse().unwrap());
    assert!((y + 0.129_769).abs() < 1e-4, "{y}");
    // One legend: both arms and the reference, on one chart.
    assert_eq!(svg.matches("class=\"legend-item\"").count(), 3, "{svg}");
    assert!(
        svg.contains(">−") && !svg.contains(">-"),
        "true minus signs: {svg}"
    );
}

#[test]
fn the_left_margin_fits_the_widest_tick_label() {
    let mut chart = arms();
    chart.series[0].points.push((200.0, -123_456.5));
    let svg = erebor_report::line::svg(&chart);
    for (tag, text) in elements(&svg, "text") {
        if attr(tag, "class").as_deref() == Some("ytick") {
            let right: f64 = attr(tag, "x").unwrap().parse().unwrap();
            let left = right - erebor_report::text::width(&text, 11.0);
            assert!(left >= 8.0 + 11.0, "label {text:?} starts at {left}");
        }
    }
}

fn mt_bench() -> Vec<MtBenchModel> {
    let categories = [
        "writing",
        "roleplay",
        "reasoning",
        "math",
        "coding",
        "extraction",
        "stem",
        "humanities",
    ];
    let model = |name: &str, base: f64| MtBenchModel {
        name: name.into(),
        score: Some(base),
        turn1: Some(base + 0.4),
        turn2: Some(base - 0.4),
        categories: categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    (*c).to_owned(),
                    (base + i as f64 * 0.5 - 1.5).clamp(1.0, 10.0),
                )
            })
            .collect(),
    };
    vec![model("mt-bench[sft]", 4.1), model("mt-bench[dpop]", 5.6)]
}

#[test]
fn radar_vertices_are_the_category_scores() {
    let models = mt_bench();
    let svg = erebor_report::radar::svg("MT-Bench", &models).unwrap();
    let rings = elements(&svg, "polygon");
    let outer = rings
        .iter()
        .rfind(|(tag, _)| attr(tag, "class").as_deref() == Some("ring"))
        .unwrap();
    let outer: Vec<(f64, f64)> = attr(outer.0, "points")
        .unwrap()
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    // The 10-ring's first vertex is straight above the centre; the opposite one straight below.
    let (top, bottom) = (outer[0], outer[4]);
    let (cx, cy, radius) = (
        top.0,
        f64::midpoint(top.1, bottom.1),
        (bottom.1 - top.1) / 2.0,
    );
    for (model, (tag, _)) in models.iter().zip(
        rings
            .iter()
            .filter(|(tag, _)| attr(tag, "class").as_deref() == Some("series")),
    ) {
        assert_eq!(attr(tag, "data-series").unwrap(), model.name);
        let points = attr(tag, "points").unwrap();
        for ((category, score), p) in model.categories.iter().zip(points.split(' ')) {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            let read = ((x - cx).hypot(y - cy)) / radius * 10.0;
            assert!(
                (read - score).abs() < 0.01,
                "{category}: {score} read back as {read}"
            );
        }
    }
}

#[test]
fn png_export_paints_the_series_where_the_svg_plots_them() {
    let renderer = PngRenderer::with_system_fonts();
    let chart = LineChart {
        title: "train/loss".into(),
        x_label: "optimizer step".into(),
        y_label: "loss (nats)".into(),
        series: vec![Series {
            label: "train".into(),
            points: vec![(0.0, 0.7), (100.0, 0.7)],
        }],
        reference: None,
    };
    let svg = erebor_report::line::svg(&chart);
    let (polyline, _) = elements(&svg, "polyline")[0];
    let first = attr(polyline, "points").unwrap();
    let (x0, y0) = first.split(' ').next().unwrap().split_once(',').unwrap();
    let (x0, y0): (f64, f64) = (x0.parse().unwrap(), y0.parse().unwrap());
    let pixmap = renderer.pixmap("train/loss", &svg, 2.0).unwrap();
    let width: u32 = attr(&svg, "width").unwrap().parse().unwrap();
    assert_eq!(pixmap.width(), width * 2);
    // Halfway along the flat line: the series colour #0072b2.
    let pixel = pixel_at(&pixmap, (x0 + 150.0) * 2.0, y0 * 2.0);
    assert_eq!(
        (pixel.red(), pixel.green(), pixel.blue()),
        (0x00, 0x72, 0xb2)
    );
    // Well inside the plot but away from the line and grid: white.
    let blank = pixel_at(&pixmap, (x0 + 150.0) * 2.0, (y0 + 33.0) * 2.0);
    assert_eq!((blank.red(), blank.green(), blank.blue()), (255, 255, 255));
    let png = renderer.render("train/loss", &svg, 1.0).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

/// The pixel of `pixmap` that holds the point (`x`, `y`) (in pixels, inside the image).
fn pixel_at(pixmap: &Pixmap, x: f64, y: f64) -> PremultipliedColorU8 {
    assert!(
        x >= 0.0 && y >= 0.0 && x < f64::from(pixmap.width()) && y < f64::from(pixmap.height()),
        "({x}, {y}) is outside the image"
    );
    // Both are checked to lie inside the image just above: whole pixels, no wrap.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (x, y) = (x as u32, y as u32);
    pixmap.pixel(x, y).unwrap()
}

#[test]
fn history_marks_each_regression() {
    let points: Vec<HistoryPoint> = [0.61, 0.63, 0.58, 0.64, 0.64, 0.55]
        .into_iter()
        .zip(0_i64..)
        .map(|(value, i)| HistoryPoint {
            at_ms: 1_764_547_200_000 + i * 86_400_000,
            value,
            regressed: i == 2 || i == 5,
        })
        .collect();
    let svg = erebor_report::history::svg(&HistoryChart {
        title: "bench/leaderboard/average (nightly)".into(),
        y_label: "score".into(),
        points,
    });
    assert_eq!(svg.matches("class=\"regression\"").count(), 2, "{svg}");
    assert!(svg.contains(">12-01 00:00<"), "date ticks: {svg}");
}

#[test]
fn the_page_is_self_contained_and_puts_the_summary_first() {
    let report = Report {
        title: "DPO vs DPOP".into(),
        charts: vec![arms()],
        mt_bench: mt_bench(),
        ..Report::default()
    };
    let html = page(&report, Some("charts"));
    assert!(!html.contains("<script") && !html.contains("https://") && !html.contains("<link"));
    assert!(html.find("id=\"summary\"").unwrap() < html.find("id=\"charts\"").unwrap());
    let names: Vec<String> = charts(&report).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "steps",
            "eval-logps-chosen_after_edit",
            "mt_bench-categories"
        ]
    );
    assert!(html.contains("<a href=\"charts/mt_bench-categories.png\">PNG</a>"));
}
