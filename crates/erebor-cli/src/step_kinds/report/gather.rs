//! Gathering a report's data from the run store: the run, its steps and timings, `expect:`
//! results (re-read from the run's stored workflow text), metric series per step (a reused
//! step's through its `reused_from` link), evaluation and MT-Bench results, and the series of
//! compared runs. `erebor report` and the runner (for a `report` step) both call [`gather`].

use crate::history::{mark_reused, select_steps, step_series};
use erebor_report::model::{
    EvalRow, EvalTable, ExpectResult, FinalValue, HistoryChart, HistoryPoint, LineChart,
    MtBenchModel, Reference, Report, RunSummary, Series, StepTiming,
};
use erebor_store::{RunRecord, ScheduleHistoryEntry, StepRecord, StepStatus, Store};
use std::collections::BTreeMap;

/// What to report on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    /// Steps to chart: ids, single arms or matrix bases (empty: every step with a curve).
    pub(crate) steps: Vec<String>,
    /// Metric keys to chart (empty: every key with more than one point).
    pub(crate) keys: Vec<String>,
    /// The title (default: the workflow name and the run).
    pub(crate) title: Option<String>,
    /// Other runs to overlay: `RUN` (the same steps) or `RUN:STEP`.
    pub(crate) compare: Vec<String>,
    /// The schedule whose history to chart (default: the one that started the run, if any).
    pub(crate) schedule: Option<String>,
}

/// Metric series per key of one step, with the label it is shown under.
struct StepData {
    record: StepRecord,
    label: String,
    series: BTreeMap<String, Vec<(i64, f64)>>,
}

/// Reads everything the report of `run` shows.
pub(crate) async fn gather(
    store: &Store,
    run: &RunRecord,
    selection: &Selection,
) -> anyhow::Result<Report> {
    let records = store.steps_of(&run.id).await?;
    let mut steps = Vec::new();
    for record in records {
        let (series, link) = step_series(store, &record).await?;
        steps.push(StepData {
            label: mark_reused(record.step_id.to_string(), link.as_ref()),
            record,
            series,
        });
    }
    let charted = charted_steps(&steps, &selection.steps)?;
    let compared = compared_steps(store, &steps, &charted, &selection.compare).await?;
    let mut charts = Vec::new();
    let bases: Vec<&str> = dedup(charted.iter().map(|i| steps[*i].record.base_id.as_str()));
    for base in &bases {
        let arms: Vec<&StepData> = charted
            .iter()
            .map(|i| &steps[*i])
            .filter(|s| s.record.base_id == *base)
            .collect();
        let others: Vec<&StepData> = compared
            .iter()
            .filter(|s| s.record.base_id == *base || bases.len() == 1)
            .collect();
        let title_prefix = (bases.len() > 1).then_some(*base);
        charts.extend(charts_of(&arms, &others, &selection.keys, title_prefix));
    }
    let expectations = expectations(run, &steps);
    let finals = finals(&steps, &charted, &charts, &expectations);
    let with_compared: Vec<&StepData> = steps.iter().chain(&compared).collect();
    Ok(Report {
        title: selection
            .title
            .clone()
            .unwrap_or_else(|| format!("{} — run {}", run.workflow_name, run.id)),
        run: summary(run, &selection.compare),
        steps: steps.iter().map(timing).collect(),
        expectations,
        finals,
        charts,
        eval: eval_table(&with_compared),
        mt_bench: mt_bench(&with_compared),
        history: history(store, run, selection.schedule.as_deref()).await?,
    })
}

/// The `expect:` metrics of a schedule's runs over time, each run that regressed marked: the
/// schedule named, or the one whose tick started `run`.
async fn history(
    store: &Store,
    run: &RunRecord,
    schedule: Option<&str>,
) -> anyhow::Result<Vec<HistoryChart>> {
    let name = match schedule {
        Some(name) => name.to_owned(),
        None => match store.tick_of_run(run.id.as_str()).await? {
            Some(tick) => tick.schedule,
            None => return Ok(Vec::new()),
        },
    };
    let entries = store.schedule_history(&name).await?;
    if schedule.is_some() && entries.is_empty() {
        anyhow::bail!(crate::outcome::BadInput(format!(
            "--schedule {name}: no such schedule, or it has not fired yet"
        )));
    }
    Ok(history_charts(&name, &entries))
}

/// One chart per measured `step/key` across the ticks that measured it. A point is marked as a
/// regression when its run regressed and a reason names the key (or no reason names any).
pub(crate) fn history_charts(
    schedule: &str,
    entries: &[ScheduleHistoryEntry],
) -> Vec<HistoryChart> {
    let keys: Vec<&str> = dedup(
        entries
            .iter()
            .flat_map(|e| e.tick.measurements.keys().map(String::as_str)),
    );
    keys.iter()
        .map(|key| {
            let metric = key.split_once('/').map_or(*key, |(_, k)| k);
            HistoryChart {
                title: format!("{key} ({schedule})"),
                y_label: unit_of(metric),
                points: entries
                    .iter()
                    .filter_map(|e| {
                        let value = *e.tick.measurements.get(*key)?;
                        let named = e.tick.reasons.iter().any(|r| r.contains(metric));
                        let unnamed = !e.tick.reasons.iter().any(|r| {
                            e.tick.measurements.keys().any(|k| {
                                r.contains(k.split_once('/').map_or(k.as_str(), |(_, m)| m))
                            })
                        });
                        Some(HistoryPoint {
                            at_ms: e.tick.tick_at,
                            value,
                            regressed: e.tick.regressed && (named || unnamed),
                        })
                    })
                    .collect(),
            }
        })
        .collect()
}

fn dedup<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Indexes of the steps to chart: the selected ones, or every step with a multi-point curve.
fn charted_steps(steps: &[StepData], selectors: &[String]) -> anyhow::Result<Vec<usize>> {
    if selectors.is_empty() {
        return Ok((0..steps.len())
            .filter(|i| steps[*i].series.values().any(|s| s.len() > 1))
            .collect());
    }
    let records: Vec<StepRecord> = steps.iter().map(|s| s.record.clone()).collect();
    let mut out = Vec::new();
    for selector in selectors {
        let chosen = select_steps(&records, selector);
        if chosen.is_empty() {
            anyhow::bail!(crate::outcome::BadInput(format!(
                "the run has no step `{selector}`"
            )));
        }
        for record in chosen {
            if let Some(i) = records.iter().position(|r| r == record)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    Ok(out)
}

/// The steps of `--compare RUN[:STEP]` runs, labelled `RUN:STEP`.
async fn compared_steps(
    store: &Store,
    steps: &[StepData],
    charted: &[usize],
    compare: &[String],
) -> anyhow::Result<Vec<StepData>> {
    let mut out = Vec::new();
    for spec in compare {
        let (run_part, step_part) = match spec.split_once(':') {
            Some((run, step)) => (run, Some(step)),
            None => (spec.as_str(), None),
        };
        let other = store
            .find_run(run_part)
            .await
            .map_err(|e| crate::outcome::BadInput(format!("--compare {spec}: {e}")))?;
        let records = store.steps_of(&other.id).await?;
        let chosen: Vec<&StepRecord> = match step_part {
            Some(selector) => select_steps(&records, selector),
            None => records
                .iter()
                .filter(|r| {
                    charted
                        .iter()
                        .any(|i| steps[*i].record.base_id == r.base_id)
                })
                .collect(),
        };
        if chosen.is_empty() {
            anyhow::bail!(crate::outcome::BadInput(format!(
                "--compare {spec}: run {} has no such step",
                other.id
            )));
        }
        for record in chosen {
            let (series, _) = step_series(store, record).await?;
            out.push(StepData {
                label: format!("{}:{}", other.id, record.step_id),
                record: record.clone(),
                series,
            });
        }
    }
    Ok(out)
}

/// One chart per key: the arms of one step base overlaid, then compared runs' series.
fn charts_of(
    arms: &[&StepData],
    others: &[&StepData],
    keys: &[String],
    title_prefix: Option<&str>,
) -> Vec<LineChart> {
    let keys: Vec<String> = if keys.is_empty() {
        default_keys(arms)
    } else {
        keys.to_vec()
    };
    let training = arms
        .iter()
        .any(|a| matches!(a.record.kind.as_str(), "sft" | "preference"));
    keys.iter()
        .filter(|key| {
            arms.iter()
                .chain(others)
                .any(|s| s.series.contains_key(*key))
        })
        .map(|key| {
            let series: Vec<Series> = arms
                .iter()
                .chain(others)
                .filter_map(|s| {
                    s.series.get(key).map(|points| Series {
                        label: s.label.clone(),
                        points: points.iter().map(|(i, v)| (*i as f64, *v)).collect(),
                    })
                })
                .collect();
            LineChart {
                title: match title_prefix {
                    Some(base) => format!("{base} · {key}"),
                    None => key.clone(),
                },
                x_label: if training { "optimizer step" } else { "index" }.to_owned(),
                y_label: unit_of(key),
                reference: reference(key, arms),
                series,
            }
        })
        .collect()
}

/// Every key with more than one point: evaluation curves first, then training, then the rest.
fn default_keys(arms: &[&StepData]) -> Vec<String> {
    let mut keys: Vec<String> = arms
        .iter()
        .flat_map(|a| a.series.iter())
        .filter(|(_, points)| points.len() > 1)
        .map(|(key, _)| key.clone())
        .collect();
    keys.sort_by_key(|k| {
        let rank = if k.starts_with("eval/") {
            0
        } else if k.starts_with("train/") {
            1
        } else {
            2
        };
        (rank, k.clone())
    });
    keys.dedup();
    keys
}

/// The y-axis title of a metric key, with its unit.
pub(crate) fn unit_of(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or(key);
    let text = if key.contains("logps") {
        "mean log-prob (nats)"
    } else if last.contains("accurac") {
        "fraction of pairs"
    } else if last == "lr" {
        "learning rate"
    } else if last.contains("grad_norm") {
        "gradient L2 norm"
    } else if key.contains("penalty") {
        "λ · nats below the reference"
    } else if key.contains("rewards") || last.contains("margin") {
        "implicit reward β·Δlog-prob (nats)"
    } else if last.contains("loss") {
        "loss (nats)"
    } else if key.starts_with("bench/") || key.starts_with("mt_bench/") {
        "score"
    } else {
        return last.replace('_', " ");
    };
    text.to_owned()
}

/// The value at index 0 of an evaluation curve, drawn as a reference line: for a preference
/// step index 0 evaluates the reference model itself; the arms of a fan-out that agree at
/// index 0 share their starting model.
fn reference(key: &str, arms: &[&StepData]) -> Option<Reference> {
    if !key.starts_with("eval/") {
        return None;
    }
    let at_zero: Vec<f64> = arms
        .iter()
        .filter_map(|a| a.series.get(key))
        .filter_map(|points| points.first().filter(|(i, _)| *i == 0).map(|(_, v)| *v))
        .collect();
    let first = *at_zero.first()?;
    let agree = at_zero.len() == arms.len()
        && at_zero
            .iter()
            .all(|v| (v - first).abs() <= 1e-9 * first.abs().max(1.0));
    let label = if arms.iter().all(|a| a.record.kind == "preference") {
        "reference model (index 0)"
    } else if arms.len() > 1 {
        "common start (index 0)"
    } else {
        return None;
    };
    (first.is_finite() && agree).then(|| Reference {
        label: label.to_owned(),
        value: first,
    })
}

/// The `expect:` checks of the run's finished steps, judged on each step's last values.
fn expectations(run: &RunRecord, steps: &[StepData]) -> Vec<ExpectResult> {
    let Ok(root) = erebor_workflow::node::parse(&run.workflow_text) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let Some(file) = erebor_workflow::schema::read_workflow(&root, &mut errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for decl in &file.steps {
        for step in steps.iter().filter(|s| s.record.base_id == decl.id) {
            let done = step.record.status.is_done() || step.record.status == StepStatus::Failed;
            if !done {
                continue;
            }
            for check in &decl.expect {
                let text = check.to_string();
                let value = step
                    .series
                    .get(&check.key)
                    .and_then(|s| s.last())
                    .map(|(_, v)| *v);
                let failed = step
                    .record
                    .expect_failures
                    .iter()
                    .any(|f| f.starts_with(&text));
                out.push(ExpectResult {
                    step: step.record.step_id.to_string(),
                    check: text,
                    passed: !failed
                        && value.is_some_and(|v| check.comparison.holds(v, check.threshold)),
                    value,
                });
            }
        }
    }
    out
}

/// The last values of the charted keys of the charted steps, and of every key an `expect:`
/// names.
fn finals(
    steps: &[StepData],
    charted: &[usize],
    charts: &[LineChart],
    expectations: &[ExpectResult],
) -> Vec<FinalValue> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        for (key, points) in &step.series {
            let wanted = (charted.contains(&i)
                && charts
                    .iter()
                    .any(|c| c.title == *key || c.title.ends_with(&format!(" · {key}"))))
                || expectations.iter().any(|e| {
                    e.step == step.record.step_id.to_string()
                        && e.check.starts_with(&format!("{key} "))
                });
            if let (true, Some((_, value))) = (wanted, points.last()) {
                out.push(FinalValue {
                    step: step.label.clone(),
                    key: key.clone(),
                    value: *value,
                });
            }
        }
    }
    out
}

/// Tasks × models from the `bench/<task>/<metric>` keys (standard errors left out), with the
/// leaderboard average in its own row.
fn eval_table(steps: &[&StepData]) -> Option<EvalTable> {
    let models: Vec<&StepData> = steps
        .iter()
        .copied()
        .filter(|s| s.series.keys().any(|k| k.starts_with("bench/")))
        .collect();
    if models.is_empty() {
        return None;
    }
    let mut rows: Vec<EvalRow> = Vec::new();
    for (column, model) in models.iter().enumerate() {
        for (key, points) in &model.series {
            let Some((task, metric)) = key.strip_prefix("bench/").and_then(|k| k.split_once('/'))
            else {
                continue;
            };
            if task == "leaderboard" || metric.contains("_stderr") {
                continue;
            }
            let index = match rows
                .iter()
                .position(|r| r.task == task && r.metric == metric)
            {
                Some(index) => index,
                None => {
                    rows.push(EvalRow {
                        task: task.to_owned(),
                        metric: metric.to_owned(),
                        fewshot: fewshot(model, task),
                        values: vec![None; models.len()],
                    });
                    rows.len() - 1
                }
            };
            rows[index].values[column] = points.last().map(|(_, v)| *v);
        }
    }
    let average = models
        .iter()
        .map(|m| {
            m.series
                .get("bench/leaderboard/average")
                .and_then(|s| s.last())
                .map(|(_, v)| *v)
        })
        .collect();
    Some(EvalTable {
        models: models.iter().map(|m| m.label.clone()).collect(),
        rows,
        average,
    })
}

/// The few-shot setting of `task` in an eval step: its `num_fewshot:`, else the `n-shot` its
/// lm-eval results file records, else the task's own default.
fn fewshot(step: &StepData, task: &str) -> String {
    if let Some(n) = step
        .record
        .config
        .get("num_fewshot")
        .and_then(serde_json::Value::as_u64)
    {
        return format!("{n}-shot");
    }
    let results = step
        .record
        .outputs
        .as_ref()
        .and_then(|o| serde_json::from_value::<erebor_core::StepOutputs>(o.clone()).ok())
        .and_then(|o| match o.values.get("results") {
            Some(erebor_core::OutputValue::Path(path)) => std::fs::read_to_string(path).ok(),
            _ => None,
        })
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    match results.as_ref().and_then(|r| r["n-shot"][task].as_u64()) {
        Some(n) => format!("{n}-shot"),
        None => "task default".to_owned(),
    }
}

/// FastChat's category order for the radar chart.
const MT_BENCH_CATEGORIES: [&str; 8] = erebor_eval::mt_bench::data::CATEGORIES;

/// MT-Bench scores of each step that ran it.
fn mt_bench(steps: &[&StepData]) -> Vec<MtBenchModel> {
    let last = |s: &StepData, key: &str| s.series.get(key).and_then(|p| p.last()).map(|(_, v)| *v);
    steps
        .iter()
        .filter(|s| {
            s.series.contains_key("mt_bench/score")
                || s.series.keys().any(|k| k.starts_with("mt_bench/category/"))
        })
        .map(|s| {
            let mut categories: Vec<(String, f64)> = s
                .series
                .iter()
                .filter_map(|(k, p)| {
                    let name = k.strip_prefix("mt_bench/category/")?;
                    Some((name.to_owned(), p.last()?.1))
                })
                .collect();
            categories.sort_by_key(|(name, _)| {
                MT_BENCH_CATEGORIES
                    .iter()
                    .position(|c| c == name)
                    .unwrap_or(MT_BENCH_CATEGORIES.len())
            });
            MtBenchModel {
                name: s.label.clone(),
                score: last(s, "mt_bench/score"),
                turn1: last(s, "mt_bench/turn1"),
                turn2: last(s, "mt_bench/turn2"),
                categories,
            }
        })
        .collect()
}

fn summary(run: &RunRecord, compare: &[String]) -> RunSummary {
    let params = run
        .params
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    RunSummary {
        id: run.id.to_string(),
        workflow: run.workflow_name.clone(),
        status: crate::history::display_status(run),
        created_ms: run.created_at,
        finished_ms: run.finished_at,
        erebor_version: run.erebor_version.clone(),
        git: run.git_commit.as_ref().map(|c| {
            let short: String = c.chars().take(12).collect();
            if run.git_dirty == Some(true) {
                format!("{short}+dirty")
            } else {
                short
            }
        }),
        params,
        compared: compare.to_vec(),
    }
}

fn timing(step: &StepData) -> StepTiming {
    StepTiming {
        id: step.record.step_id.to_string(),
        kind: step.record.kind.clone(),
        status: step.record.status.to_string(),
        started_ms: step.record.started_at,
        finished_ms: step.record.finished_at,
        reused_from: step.record.reused_from().map(|l| l.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_store::{TickRecord, TickState};

    fn entry(
        tick_at: i64,
        accuracy: f64,
        regressed: bool,
        reasons: &[&str],
    ) -> ScheduleHistoryEntry {
        ScheduleHistoryEntry {
            tick: TickRecord {
                schedule: "nightly".into(),
                tick_at,
                state: TickState::Started,
                run_id: Some(format!("r-{tick_at}")),
                error: None,
                owner_host: "h".into(),
                owner_pid: 1,
                owner_seen_at: tick_at,
                evaluated_at: Some(tick_at + 1),
                fresh: Some(true),
                measurements: BTreeMap::from([
                    ("train/eval/rewards/accuracies".to_owned(), accuracy),
                    ("sft/eval_loss".to_owned(), 0.14),
                ]),
                regressed,
                reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
                notified_at: None,
                notify_error: None,
            },
            run_status: Some("succeeded".into()),
            workflow_hash: None,
            erebor_version: None,
        }
    }

    #[test]
    fn history_charts_mark_the_regressed_key_only() {
        let entries = [
            entry(1_000, 0.95, false, &[]),
            entry(2_000, 0.96, false, &[]),
            entry(
                3_000,
                0.71,
                true,
                &[
                    "train/eval/rewards/accuracies = 0.71 is outside median 0.955 ± 3·MAD 0.005 = [0.94, 0.97] of 2 earlier fresh runs",
                ],
            ),
        ];
        let charts = history_charts("nightly", &entries);
        let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "sft/eval_loss (nightly)",
                "train/eval/rewards/accuracies (nightly)"
            ]
        );
        let accuracy = &charts[1];
        assert_eq!(accuracy.y_label, "fraction of pairs");
        let marked: Vec<(i64, f64, bool)> = accuracy
            .points
            .iter()
            .map(|p| (p.at_ms, p.value, p.regressed))
            .collect();
        assert_eq!(
            marked,
            [
                (1_000, 0.95, false),
                (2_000, 0.96, false),
                (3_000, 0.71, true)
            ]
        );
        assert!(
            charts[0].points.iter().all(|p| !p.regressed),
            "the loss did not regress"
        );
    }
}
