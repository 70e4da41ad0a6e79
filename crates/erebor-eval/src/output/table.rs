//! The results table printed to stdout, in the shape of lm-eval's `make_table`.

use crate::evaluator::{EvalReport, MetricValue};
use crate::task::split_metric_key;

fn row(cells: &[String]) -> String {
    format!("|{}|", cells.join("|"))
}

fn metric_rows(
    name: &str,
    version: &str,
    shots: &str,
    metrics: &[MetricValue],
    out: &mut Vec<[String; 8]>,
) {
    let mut previous_filter = None;
    for (i, m) in metrics.iter().enumerate() {
        let first = i == 0;
        let (metric, filter) = split_metric_key(&m.name);
        let new_filter = previous_filter != Some(filter);
        previous_filter = Some(filter);
        out.push([
            if first {
                name.to_owned()
            } else {
                String::new()
            },
            if first {
                version.to_owned()
            } else {
                String::new()
            },
            if new_filter {
                filter.to_owned()
            } else {
                String::new()
            },
            if first {
                shots.to_owned()
            } else {
                String::new()
            },
            metric.to_owned(),
            if m.higher_is_better { "↑" } else { "↓" }.to_owned(),
            format!("{:.4}", m.value),
            m.stderr.map_or("N/A".to_owned(), |s| format!("{s:.4}")),
        ]);
    }
}

/// A Markdown table of every task's and group's metrics, then the leaderboard average and the
/// forward-token counts.
pub fn results_table(report: &EvalReport) -> String {
    let mut text = markdown_table(&metric_table_rows(report));
    text.push_str(&summary_lines(report));
    text
}

/// One row per metric of every task, then of every group.
fn metric_table_rows(report: &EvalReport) -> Vec<[String; 8]> {
    let mut rows: Vec<[String; 8]> = Vec::new();
    for task in &report.tasks {
        let version = match &task.version {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = match task.group {
            Some(_) => format!(" - {}", task.name),
            None => task.name.clone(),
        };
        metric_rows(
            &name,
            &version,
            &task.num_fewshot.to_string(),
            &task.metrics,
            &mut rows,
        );
    }
    for group in &report.groups {
        let shots = group.num_fewshot.map_or(String::new(), |k| k.to_string());
        metric_rows(&group.name, "", &shots, &group.metrics, &mut rows);
    }
    rows
}

/// The rows under lm-eval's header, each column padded to its widest cell (numbers to the
/// right), with a trailing newline.
fn markdown_table(rows: &[[String; 8]]) -> String {
    let header = [
        "Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "Stderr",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = [false, true, false, true, false, false, true, true];
    let pad = |cells: &[String]| -> Vec<String> {
        cells
            .iter()
            .zip(&widths)
            .zip(right)
            .map(|((c, &w), r)| {
                if r {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect()
    };
    let mut lines = vec![row(&pad(&header.map(str::to_owned)))];
    let rule: Vec<String> = widths
        .iter()
        .zip(right)
        .map(|(&w, r)| {
            if r {
                format!("{}:", "-".repeat(w.saturating_sub(1)))
            } else {
                "-".repeat(w)
            }
        })
        .collect();
    lines.push(row(&rule));
    for r in rows {
        lines.push(row(&pad(r)));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The leaderboard average (with what it covers, misses and notes) and the forward-token
/// counts, each after a blank line; empty when the report has neither.
fn summary_lines(report: &EvalReport) -> String {
    let mut text = String::new();
    if let Some(lb) = &report.leaderboard {
        let covered: Vec<String> = lb
            .entries
            .iter()
            .map(|e| format!("{} ({} {})", e.benchmark, e.task, e.metric))
            .collect();
        text.push_str(&format!(
            "\nleaderboard average {:.4} over {} of 6: {}\n",
            lb.value,
            lb.entries.len(),
            covered.join(", ")
        ));
        if !lb.missing.is_empty() {
            text.push_str(&format!("  missing: {}\n", lb.missing.join(", ")));
        }
        for note in &lb.notes {
            text.push_str(&format!("  note: {note}\n"));
        }
    }
    if let Some(saving) = report.tokens.saving() {
        text.push_str(&format!(
            "\nforward tokens {} ({} without context sharing, {saving:.2}x; {} in lm-eval's HF \
             backend with its one-token cache, {:.2}x)\n",
            report.tokens.forward,
            report.tokens.unshared,
            report.tokens.lm_eval_hf,
            report.tokens.saving_vs_lm_eval().unwrap_or(0.0)
        ));
    }
    text
}
