//! The report as Markdown (for terminals, pull requests and chat): the summary and the tables;
//! the charts are in the HTML page and the PNGs.

use crate::model::Report;
use crate::text::{duration, number};
use std::fmt::Write;

/// The Markdown document.
pub fn document(report: &Report) -> String {
    let mut out = summary(report);
    steps(&mut out, report);
    expectations(&mut out, report);
    finals(&mut out, report);
    evaluation(&mut out, report);
    mt_bench(&mut out, report);
    out.push_str("\nCharts: report.html (and charts/*.png).\n");
    out
}

/// The title, the run and how long it took.
fn summary(report: &Report) -> String {
    let run = &report.run;
    let mut out = format!(
        "# {}\n\nRun `{}` of `{}`: {}.\n",
        report.title, run.id, run.workflow, run.status
    );
    if let Some(finished) = run.finished_ms {
        let _ = writeln!(
            out,
            "It took {}.",
            duration((finished - run.created_ms) as f64 / 1000.0)
        );
    }
    out
}

/// One row per step: kind, status, and its time or the step it was reused from.
fn steps(out: &mut String, report: &Report) {
    out.push_str("\n## Steps\n\n| step | kind | status | time |\n|---|---|---|---:|\n");
    for step in &report.steps {
        let time = match (&step.reused_from, step.started_ms, step.finished_ms) {
            (Some(link), _, _) => format!("reused from {link}"),
            (None, Some(s), Some(f)) => duration((f - s) as f64 / 1000.0),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {time} |",
            step.id, step.kind, step.status
        );
    }
}

/// The `expect:` checks and whether each holds; nothing when there are none.
fn expectations(out: &mut String, report: &Report) {
    if report.expectations.is_empty() {
        return;
    }
    out.push_str("\n## Expectations\n\n| step | check | value | result |\n|---|---|---:|---|\n");
    for e in &report.expectations {
        let value = e.value.map_or_else(|| "not recorded".to_owned(), number);
        let verdict = if e.passed { "holds" } else { "FAILS" };
        let _ = writeln!(out, "| {} | `{}` | {value} | {verdict} |", e.step, e.check);
    }
}

/// The last value of each metric; nothing when there are none.
fn finals(out: &mut String, report: &Report) {
    if report.finals.is_empty() {
        return;
    }
    out.push_str("\n## Final values\n\n| step | metric | value |\n|---|---|---:|\n");
    for f in &report.finals {
        let _ = writeln!(out, "| {} | {} | {} |", f.step, f.key, number(f.value));
    }
}

/// The evaluation table, one column per model, with the leaderboard average when there is one.
fn evaluation(out: &mut String, report: &Report) {
    let Some(table) = &report.eval else {
        return;
    };
    let _ = write!(out, "\n## Evaluation\n\n| task | metric | few-shot |");
    for model in &table.models {
        let _ = write!(out, " {model} |");
    }
    let _ = write!(
        out,
        "\n|---|---|---|{}\n",
        "---:|".repeat(table.models.len())
    );
    let cells = |values: &[Option<f64>]| -> String {
        values
            .iter()
            .map(|v| v.map_or_else(|| " – |".to_owned(), |v| format!(" {} |", number(v))))
            .collect()
    };
    for row in &table.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |{}",
            row.task,
            row.metric,
            row.fewshot,
            cells(&row.values)
        );
    }
    if table.average.iter().any(Option::is_some) {
        let _ = writeln!(out, "| leaderboard average | | |{}", cells(&table.average));
    }
}

/// MT-Bench scores per model and turn; nothing when there are none.
fn mt_bench(out: &mut String, report: &Report) {
    if report.mt_bench.is_empty() {
        return;
    }
    out.push_str("\n## MT-Bench\n\n| model | turn 1 | turn 2 | overall |\n|---|---:|---:|---:|\n");
    let show = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    for m in &report.mt_bench {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            m.name,
            show(m.turn1),
            show(m.turn2),
            show(m.score)
        );
    }
}
