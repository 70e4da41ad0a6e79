//! `erebor metrics RUN`: a run's metrics as a table, CSV or JSON (readable while it runs).

use crate::format::{Table, csv_field, number};
use crate::globals::Globals;
use crate::history::{select_steps, step_metrics};
use crate::outcome::{BadInput, Outcome};
use erebor_store::{AttemptId, MetricRow, StepId};
use std::collections::BTreeMap;

/// Arguments of `erebor metrics`.
#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// The run id (or a unique prefix).
    pub(crate) run: String,
    /// Only this metric key.
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// Only this step (a matrix base selects every arm).
    #[arg(long)]
    pub(crate) step: Option<String>,
    /// `table` (default), `csv` or `json`.
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
    pub(crate) format: String,
    /// Every attempt's rows instead of the merged series (the latest attempt wins per index).
    #[arg(long)]
    pub(crate) all_attempts: bool,
}

struct Point {
    step: StepId,
    attempt: AttemptId,
    key: String,
    index: i64,
    value: f64,
    /// For a reused step, the run and step the value was read from (`RUN:STEP`).
    reused_from: Option<String>,
}

impl MetricsArgs {
    /// Prints the metrics.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let points = crate::globals::runtime()?.block_on(async {
            let store = globals.store().await?;
            let run = store
                .find_run(&self.run)
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            let steps = store.steps_of(&run.id).await?;
            let chosen: Vec<_> = match &self.step {
                Some(selector) => {
                    let chosen = select_steps(&steps, selector);
                    if chosen.is_empty() {
                        return Err(
                            BadInput(format!("run {} has no step `{selector}`", run.id)).into()
                        );
                    }
                    chosen
                }
                None => steps.iter().collect(),
            };
            let mut points = Vec::new();
            for step in chosen {
                let (rows, link) = step_metrics(&store, step, self.key.as_deref()).await?;
                let reused_from = link.map(|l| l.to_string());
                points.extend(step_points(
                    &step.step_id,
                    rows,
                    reused_from.as_deref(),
                    self.all_attempts,
                ));
            }
            anyhow::Ok(points)
        })?;
        print!("{}", render(&points, &self.format)?);
        Ok(Outcome::Success)
    }
}

/// A step's points: every attempt's, or only the latest attempt's value per key and index.
fn step_points(
    step: &StepId,
    rows: Vec<MetricRow>,
    reused_from: Option<&str>,
    all_attempts: bool,
) -> Vec<Point> {
    let point = |key, index, value, attempt| Point {
        step: step.clone(),
        attempt,
        key,
        index,
        value,
        reused_from: reused_from.map(str::to_owned),
    };
    if all_attempts {
        return rows
            .into_iter()
            .map(|r| point(r.key, r.index, r.value, r.attempt_id))
            .collect();
    }
    let mut latest: BTreeMap<(String, i64), (AttemptId, f64)> = BTreeMap::new();
    for row in rows {
        latest.insert((row.key, row.index), (row.attempt_id, row.value));
    }
    latest
        .into_iter()
        .map(|((key, index), (attempt, value))| point(key, index, value, attempt))
        .collect()
}

/// The points as `format` says: `csv`, `json`, else a table.
fn render(points: &[Point], format: &str) -> anyhow::Result<String> {
    Ok(match format {
        "csv" => {
            let mut out = String::from("step,key,index,value,attempt,reused_from\n");
            for p in points {
                out.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    csv_field(p.step.as_str()),
                    csv_field(&p.key),
                    p.index,
                    p.value,
                    p.attempt,
                    csv_field(p.reused_from.as_deref().unwrap_or(""))
                ));
            }
            out
        }
        "json" => {
            let rows: Vec<serde_json::Value> = points
                    .iter()
                    .map(|p| serde_json::json!({"step": p.step, "key": p.key, "index": p.index, "value": json_number(p.value), "attempt": p.attempt, "reused_from": p.reused_from}))
                    .collect();
            format!("{}\n", serde_json::to_string_pretty(&rows)?)
        }
        _ => {
            let mut table = Table::new(&["step", "key", "index", "value", "reused from"]);
            for p in points {
                table.row(vec![
                    p.step.to_string(),
                    p.key.clone(),
                    p.index.to_string(),
                    number(p.value),
                    p.reused_from.clone().unwrap_or_default(),
                ]);
            }
            table.render()
        }
    })
}

fn json_number(value: f64) -> serde_json::Value {
    serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, serde_json::Value::Number)
}
