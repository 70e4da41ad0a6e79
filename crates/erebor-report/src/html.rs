//! The report page: one self-contained HTML file (inline CSS and SVG; no scripts, no network).
//! Summary first (the run, its steps as a timeline, `expect:` results, final values), then the
//! charts in a grid, the evaluation table, MT-Bench and history.

use crate::model::{EvalTable, MtBenchModel, Report, RunSummary};
use crate::text::{duration, escape, number, slug};
use std::fmt::Write;

/// One chart of a report: a file-name-safe name and its SVG.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// File name without extension (`steps`, `eval-logps-chosen`, `mt_bench-categories`).
    pub name: String,
    /// Title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Every chart of the report, in page order: the timeline, the line charts, the MT-Bench
/// radar, the history charts. Names are unique.
pub fn charts(report: &Report) -> Vec<Chart> {
    let mut out = vec![Chart {
        name: "steps".to_owned(),
        title: "Steps".to_owned(),
        svg: crate::timeline::svg(&report.steps, report.run.created_ms),
    }];
    for chart in &report.charts {
        out.push(Chart {
            name: slug(&chart.title),
            title: chart.title.clone(),
            svg: crate::line::svg(chart),
        });
    }
    if let Some(svg) = crate::radar::svg("MT-Bench score per category", &report.mt_bench) {
        out.push(Chart {
            name: "mt_bench-categories".to_owned(),
            title: "MT-Bench score per category".to_owned(),
            svg,
        });
    }
    for chart in &report.history {
        out.push(Chart {
            name: format!("history-{}", slug(&chart.title)),
            title: chart.title.clone(),
            svg: crate::history::svg(chart),
        });
    }
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for chart in &mut out {
        let n = seen.entry(chart.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            chart.name = format!("{}-{n}", chart.name);
        }
    }
    out
}

/// The HTML page. With `png_folder` (e.g. `charts`), each chart links to its PNG there.
pub fn page(report: &Report, png_folder: Option<&str>) -> String {
    let charts = charts(report);
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&report.title));
    run_summary(&mut body, &report.run);
    body.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
    if let Some(timeline) = charts.first() {
        figure(&mut body, timeline, png_folder);
    }
    expectations(&mut body, report);
    finals(&mut body, report);
    body.push_str("</section>\n");
    let grid: Vec<&Chart> = charts
        .iter()
        .skip(1)
        .filter(|c| !c.name.starts_with("mt_bench-") && !c.name.starts_with("history-"))
        .collect();
    if !grid.is_empty() {
        body.push_str("<section id=\"charts\"><h2>Training curves</h2>\n<div class=\"grid\">\n");
        for chart in grid {
            figure(&mut body, chart, png_folder);
        }
        body.push_str("</div></section>\n");
    }
    if let Some(table) = &report.eval {
        eval_table(&mut body, table);
    }
    if !report.mt_bench.is_empty() {
        body.push_str("<section id=\"mt-bench\"><h2>MT-Bench</h2>\n<div class=\"grid\">\n");
        for chart in charts.iter().filter(|c| c.name.starts_with("mt_bench-")) {
            figure(&mut body, chart, png_folder);
        }
        mt_bench_tables(&mut body, &report.mt_bench);
        body.push_str("</div></section>\n");
    }
    let history: Vec<&Chart> = charts
        .iter()
        .filter(|c| c.name.starts_with("history-"))
        .collect();
    if !history.is_empty() {
        body.push_str("<section id=\"history\"><h2>History</h2>\n<div class=\"grid\">\n");
        for chart in history {
            figure(&mut body, chart, png_folder);
        }
        body.push_str("</div></section>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(&report.title)
    )
}

const STYLE: &str = "\
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 0; color: #222; background: #f7f7f5; }
main { max-width: 1520px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: 0.4rem 0 0.8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.6rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
dl.run { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.15rem 1rem; margin: 0; font-size: 0.92rem; }
dl.run dt { color: #666; } dl.run dd { margin: 0; overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 480px), 1fr)); gap: 1rem; align-items: start; }
figure { margin: 0; background: #fff; border: 1px solid #e2e2e2; border-radius: 4px; padding: 0.4rem; min-width: 0; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 0.8rem; text-align: right; color: #666; }
.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; background: #fff; font-size: 0.9rem; margin: 0.3rem 0; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
td:first-child, th:first-child, td.text, th.text { text-align: left; }
th { background: #f0f0ee; }
.pass { color: #0a7a3e; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.best { font-weight: bold; }
.status { display: inline-block; padding: 0 0.45rem; border-radius: 3px; color: #fff; }
.status.succeeded { background: #0a7a3e; } .status.failed { background: #b3261e; } .status.running { background: #0072b2; }
.status.cancelled { background: #8a6d00; }
code { font-size: 0.9em; }
";

/// The run's facts as a definition list.
fn run_summary(body: &mut String, run: &RunSummary) {
    let mut rows: Vec<(&str, String)> = vec![
        ("run", format!("<code>{}</code>", escape(&run.id))),
        ("workflow", escape(&run.workflow)),
        (
            "status",
            format!("<span class=\"status {0}\">{0}</span>", escape(&run.status)),
        ),
        ("started", utc(run.created_ms)),
    ];
    if let Some(finished) = run.finished_ms {
        rows.push((
            "took",
            duration((finished - run.created_ms) as f64 / 1000.0),
        ));
    }
    rows.push(("erebor", escape(&run.erebor_version)));
    if let Some(git) = &run.git {
        rows.push(("git", format!("<code>{}</code>", escape(git))));
    }
    if !run.params.is_empty() {
        let params: Vec<String> = run
            .params
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", escape(k), escape(v)))
            .collect();
        rows.push(("params", params.join(" ")));
    }
    if !run.compared.is_empty() {
        let compared: Vec<String> = run
            .compared
            .iter()
            .map(|c| format!("<code>{}</code>", escape(c)))
            .collect();
        rows.push(("compared with", compared.join(", ")));
    }
    body.push_str("<dl class=\"run\">\n");
    for (name, value) in rows {
        let _ = writeln!(body, "<dt>{name}</dt><dd>{value}</dd>");
    }
    body.push_str("</dl>\n");
}

/// `2026-12-01 03:40:12 UTC`.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "–".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A chart in a `<figure>`, with a link to its PNG.
fn figure(body: &mut String, chart: &crate::html::Chart, png_folder: Option<&str>) {
    let _ = write!(body, "<figure id=\"chart-{}\">\n{}", chart.name, chart.svg);
    if let Some(folder) = png_folder {
        let _ = write!(
            body,
            "<figcaption><a href=\"{}/{}.png\">PNG</a></figcaption>",
            escape(folder),
            chart.name
        );
    }
    body.push_str("</figure>\n");
}

fn expectations(body: &mut String, report: &Report) {
    if report.expectations.is_empty() {
        return;
    }
    let passed = report.expectations.iter().filter(|e| e.passed).count();
    let _ = writeln!(
        body,
        "<h3>Expectations: {passed} of {} hold</h3>\n<div class=\"table\"><table class=\"expect\">\n<tr><th>step</th><th class=\"text\">check</th><th>value</th><th class=\"text\">result</th></tr>",
        report.expectations.len()
    );
    for e in &report.expectations {
        let value = e.value.map_or_else(|| "not recorded".to_owned(), number);
        let (class, verdict) = if e.passed {
            ("pass", "✓ holds")
        } else {
            ("fail", "✗ fails")
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"text\"><code>{}</code></td><td>{value}</td><td class=\"text {class}\">{verdict}</td></tr>",
            escape(&e.step),
            escape(&e.check)
        );
    }
    body.push_str("</table></div>\n");
}

fn finals(body: &mut String, report: &Report) {
    if report.finals.is_empty() {
        return;
    }
    let mut steps: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for f in &report.finals {
        if !steps.contains(&f.step.as_str()) {
            steps.push(&f.step);
        }
        if !keys.contains(&f.key.as_str()) {
            keys.push(&f.key);
        }
    }
    body.push_str(
        "<h3>Final values</h3>\n<div class=\"table\"><table class=\"finals\">\n<tr><th>metric</th>",
    );
    for step in &steps {
        let _ = write!(body, "<th>{}</th>", escape(step));
    }
    body.push_str("</tr>\n");
    for key in keys {
        let _ = write!(body, "<tr><td>{}</td>", escape(key));
        for step in &steps {
            let value = report
                .finals
                .iter()
                .find(|f| f.step == *step && f.key == key)
                .map_or_else(|| "–".to_owned(), |f| number(f.value));
            let _ = write!(body, "<td>{value}</td>");
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table></div>\n");
}

fn eval_table(body: &mut String, table: &EvalTable) {
    body.push_str("<section id=\"evaluation\"><h2>Evaluation</h2>\n<div class=\"table\"><table class=\"eval\">\n<tr><th>task</th><th class=\"text\">metric</th><th class=\"text\">few-shot</th>");
    for model in &table.models {
        let _ = write!(body, "<th>{}</th>", escape(model));
    }
    body.push_str("</tr>\n");
    for row in &table.rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td>",
            escape(&row.task),
            escape(&row.metric),
            escape(&row.fewshot)
        );
        value_cells(body, &row.values);
        body.push_str("</tr>\n");
    }
    if table.average.iter().any(Option::is_some) {
        body.push_str("<tr class=\"average\"><th>Leaderboard average</th><th></th><th></th>");
        value_cells(body, &table.average);
        body.push_str("</tr>\n");
    }
    body.push_str("</table></div></section>\n");
}

/// One cell per value, the best (highest) in bold when there are several.
fn value_cells(body: &mut String, values: &[Option<f64>]) {
    let best = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let several = values.iter().flatten().count() > 1;
    for value in values {
        match value {
            // `best` is the largest value, so only a value equal to it is not below it.
            Some(v) if several && *v >= best => {
                let _ = write!(body, "<td class=\"best\">{}</td>", number(*v));
            }
            Some(v) => {
                let _ = write!(body, "<td>{}</td>", number(*v));
            }
            None => body.push_str("<td>–</td>"),
        }
    }
}

fn mt_bench_tables(body: &mut String, models: &[MtBenchModel]) {
    body.push_str("<div><h3>Turns</h3><div class=\"table\"><table class=\"mt-bench-turns\">\n<tr><th>model</th><th>turn 1</th><th>turn 2</th><th>overall</th></tr>\n");
    let show = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    for m in models {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.name),
            show(m.turn1),
            show(m.turn2),
            show(m.score)
        );
    }
    body.push_str("</table></div>\n<h3>Categories</h3><div class=\"table\"><table class=\"mt-bench-categories\">\n<tr><th>category</th>");
    for m in models {
        let _ = write!(body, "<th>{}</th>", escape(&m.name));
    }
    body.push_str("</tr>\n");
    for category in crate::radar::categories(models) {
        let _ = write!(body, "<tr><td>{}</td>", escape(&category));
        for m in models {
            let value = m
                .categories
                .iter()
                .find(|(c, _)| *c == category)
                .map(|(_, v)| *v);
            let _ = write!(body, "<td>{}</td>", show(value));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table></div></div>\n");
}
