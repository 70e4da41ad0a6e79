//! `erebor runs list|show|compare`: run history.

use crate::format::{self, Table};
use crate::globals::Globals;
use crate::history::{display_status, final_values, mark_reused, select_steps};
use crate::outcome::{BadInput, Outcome};
use erebor_store::{AttemptRecord, RunFilter, RunRecord, RunStatus, StepRecord, Store};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The `runs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RunsCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// Show one run: params, steps, attempts, outputs, final metrics.
    Show(ShowArgs),
    /// Compare runs or steps (RUN or RUN:STEP; a matrix base compares every arm): params and
    /// final metrics side by side, differences only unless --all.
    Compare(CompareArgs),
}

/// Arguments of `erebor runs list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only runs of this workflow (its `name:`).
    #[arg(long)]
    pub(crate) workflow: Option<String>,
    /// Only runs with this status: running, succeeded, failed, cancelled.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Only runs since: `2d`, `12h`, `2026-11-27` or an RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: i64,
}

/// Arguments of `erebor runs show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The run id (or a unique prefix).
    pub(crate) run: String,
}

/// Arguments of `erebor runs compare`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// RUN or RUN:STEP, two or more (one RUN:STEP of a matrix base compares its arms).
    #[arg(required = true)]
    pub(crate) subjects: Vec<String>,
    /// Show rows that are equal too.
    #[arg(long)]
    pub(crate) all: bool,
}

impl RunsCommand {
    /// Runs the subcommand.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let text = crate::globals::runtime()?.block_on(async {
            let store = globals.store().await?;
            match self {
                RunsCommand::List(args) => list(&store, args).await,
                RunsCommand::Show(args) => show(&store, args).await,
                RunsCommand::Compare(args) => compare(&store, args).await,
            }
        })?;
        print!("{text}");
        Ok(Outcome::Success)
    }
}

async fn list(store: &Store, args: ListArgs) -> anyhow::Result<String> {
    let status = match &args.status {
        Some(text) if text == "killed" => Some(RunStatus::Running),
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            BadInput(format!(
                "--status {text}: use running, succeeded, failed, cancelled or killed"
            ))
        })?),
        None => None,
    };
    let since_ms = args
        .since
        .as_deref()
        .map(format::parse_since)
        .transpose()
        .map_err(BadInput)?;
    let runs = store
        .list_runs(&RunFilter {
            workflow: args.workflow,
            status,
            since_ms,
            limit: Some(args.limit),
        })
        .await?;
    let mut table = Table::new(&["run", "workflow", "status", "started", "duration", "steps"]);
    for run in &runs {
        let shown = display_status(run);
        if args.status.as_deref() == Some("killed") && shown != "killed" {
            continue;
        }
        let shown =
            crate::commands::schedule::status_with_regression(store, run.id.as_str(), shown)
                .await?;
        let steps = store.steps_of(&run.id).await?;
        let done = steps.iter().filter(|s| s.status.is_done()).count();
        let end = run.finished_at.unwrap_or_else(erebor_store::now_ms);
        table.row(vec![
            run.id.to_string(),
            run.workflow_name.clone(),
            shown,
            format::time(run.created_at),
            format::duration_ms(end - run.created_at),
            format!("{done}/{}", steps.len()),
        ]);
    }
    if table.is_empty() {
        return Ok(format!("no runs in {}\n", store.url()));
    }
    Ok(table.render())
}

/// The run's summary lines: id, workflow, status, times, host, git commit, version, folder and
/// params.
fn run_header(run: &RunRecord) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "run        {}", run.id)?;
    writeln!(
        out,
        "workflow   {} ({})",
        run.workflow_name, run.workflow_file
    )?;
    writeln!(
        out,
        "status     {}{}",
        display_status(run),
        run.error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "started    {}", format::time(run.created_at))?;
    if let Some(finished) = run.finished_at {
        writeln!(
            out,
            "finished   {} (took {})",
            format::time(finished),
            format::duration_ms(finished - run.created_at)
        )?;
    }
    writeln!(
        out,
        "host       {} (pid {})",
        run.host,
        run.runner_pid.unwrap_or_default()
    )?;
    let git = match (&run.git_commit, run.git_dirty) {
        (Some(commit), Some(true)) => format!("{commit} (with uncommitted changes)"),
        (Some(commit), _) => commit.clone(),
        (None, _) => "not a git checkout".to_owned(),
    };
    writeln!(out, "git        {git}")?;
    writeln!(out, "erebor     {}", run.erebor_version)?;
    writeln!(out, "folder     {}", run.run_dir)?;
    writeln!(out, "params     {}", run.params)?;
    Ok(out)
}

/// One row per step: kind, status, attempts, duration and a note (reuse, failure, failed
/// expectations).
fn steps_table(steps: &[StepRecord], attempts: &[AttemptRecord]) -> String {
    let mut table = Table::new(&["step", "kind", "status", "attempts", "duration", "note"]);
    for step in steps {
        let count = attempts
            .iter()
            .filter(|a| a.step_id == step.step_id)
            .count();
        let duration = match (step.started_at, step.finished_at) {
            (Some(start), Some(end)) => format::duration_ms(end - start),
            (Some(start), None) => format!(
                "{} so far",
                format::duration_ms(erebor_store::now_ms() - start)
            ),
            _ => "-".to_owned(),
        };
        let note = if let Some(from) = step.reused_from() {
            format!("reused from {from}")
        } else if let Some(message) = &step.failure_message {
            format!(
                "{}: {message}",
                step.failure_class.as_deref().unwrap_or("failed")
            )
        } else if !step.expect_failures.is_empty() {
            format!("expectations failed: {}", step.expect_failures.join("; "))
        } else {
            String::new()
        };
        table.row(vec![
            step.step_id.to_string(),
            step.kind.clone(),
            step.status.to_string(),
            count.to_string(),
            duration,
            note,
        ]);
    }
    table.render()
}

async fn show(store: &Store, args: ShowArgs) -> anyhow::Result<String> {
    let run = store
        .find_run(&args.run)
        .await
        .map_err(|e| BadInput(e.to_string()))?;
    let steps = store.steps_of(&run.id).await?;
    let attempts = store.attempts_of(&run.id).await?;
    let artifacts = store.artifacts_of(&run.id).await?;
    let mut out = run_header(&run)?;
    writeln!(out)?;
    out.push_str(&steps_table(&steps, &attempts));
    let outputs: Vec<_> = artifacts.iter().filter(|a| a.name != "log").collect();
    if !outputs.is_empty() {
        writeln!(out, "\noutputs")?;
        for artifact in outputs {
            writeln!(
                out,
                "  {}.{}  {}  ({} bytes, sha256 {})",
                artifact.step_id,
                artifact.name,
                artifact.path,
                artifact.bytes,
                &artifact.sha256[..12]
            )?;
        }
    }
    let mut metrics_table = Table::new(&["step", "metric", "final value"]);
    for step in &steps {
        let (finals, link) = final_values(store, step).await?;
        for (key, value) in finals {
            let shown = mark_reused(format::number(value), link.as_ref());
            metrics_table.row(vec![step.step_id.to_string(), key, shown]);
        }
    }
    if !metrics_table.is_empty() {
        writeln!(out, "\nfinal metrics")?;
        out.push_str(&metrics_table.render());
    }
    let failed_logs: Vec<_> = attempts
        .iter()
        .filter(|a| a.failure_class.is_some())
        .map(|a| format!("  {} attempt {}: {}/step.log", a.step_id, a.number, a.dir))
        .collect();
    if !failed_logs.is_empty() {
        writeln!(out, "\nlogs of failed or interrupted attempts")?;
        for line in failed_logs {
            writeln!(out, "{line}")?;
        }
    }
    cluster_jobs(&attempts, &mut out)?;
    Ok(out)
}

/// The job id of each attempt that ran on a cluster executor (a local attempt's id is a pid,
/// of no use once it ended).
fn cluster_jobs(attempts: &[erebor_store::AttemptRecord], out: &mut String) -> std::fmt::Result {
    let jobs: Vec<String> = attempts
        .iter()
        .filter(|a| a.executor != "local" && a.executor != "in-process")
        .map(|a| {
            let id = a.external_id.as_deref().unwrap_or("(not submitted)");
            format!(
                "  {} attempt {}: {} job {id}",
                a.step_id, a.number, a.executor
            )
        })
        .collect();
    if !jobs.is_empty() {
        writeln!(out, "\njobs")?;
        for line in jobs {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// One column of a comparison.
struct Subject {
    label: String,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, String>,
}

async fn compare(store: &Store, args: CompareArgs) -> anyhow::Result<String> {
    let mut subjects = Vec::new();
    let mut by_step = false;
    for text in &args.subjects {
        let (run_part, step_part) = match text.split_once(':') {
            Some((run, step)) => (run, Some(step)),
            None => (text.as_str(), None),
        };
        let run = store
            .find_run(run_part)
            .await
            .map_err(|e| BadInput(e.to_string()))?;
        let steps = store.steps_of(&run.id).await?;
        let params: BTreeMap<String, String> = run
            .params
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (format!("params.{k}"), value_text(v)))
                    .collect()
            })
            .unwrap_or_default();
        match step_part {
            Some(selector) => {
                by_step = true;
                subjects.extend(step_subjects(store, &run, &steps, &params, selector).await?);
            }
            None => subjects.push(run_subject(store, &run, &steps, params).await?),
        }
    }
    if subjects.len() < 2 {
        return Err(BadInput(
            "compare needs two or more runs or steps (a matrix base counts each arm)".to_owned(),
        )
        .into());
    }
    compare_table(&subjects, by_step, args.all)
}

/// One subject per step of `run` that `selector` picks: the run's params and the arm's matrix
/// values, and the step's final metrics.
async fn step_subjects(
    store: &Store,
    run: &RunRecord,
    steps: &[StepRecord],
    params: &BTreeMap<String, String>,
    selector: &str,
) -> anyhow::Result<Vec<Subject>> {
    let chosen = select_steps(steps, selector);
    if chosen.is_empty() {
        return Err(BadInput(format!("run {} has no step `{selector}`", run.id)).into());
    }
    let mut subjects = Vec::new();
    for step in chosen {
        let mut params = params.clone();
        if let Some(arm) = step.arm.as_object() {
            params.extend(
                arm.iter()
                    .map(|(k, v)| (format!("matrix.{k}"), value_text(v))),
            );
        }
        let (finals, link) = final_values(store, step).await?;
        let metrics = finals
            .into_iter()
            .map(|(k, v)| (k, mark_reused(format::number(v), link.as_ref())))
            .collect();
        subjects.push(Subject {
            label: format!("{}:{}", run.id, step.step_id),
            params,
            metrics,
        });
    }
    Ok(subjects)
}

/// A whole run as a subject: its params, every step's final metrics and its status.
async fn run_subject(
    store: &Store,
    run: &RunRecord,
    steps: &[StepRecord],
    params: BTreeMap<String, String>,
) -> anyhow::Result<Subject> {
    let mut metrics = BTreeMap::new();
    for step in steps {
        let (finals, link) = final_values(store, step).await?;
        for (key, value) in finals {
            let shown = mark_reused(format::number(value), link.as_ref());
            metrics.insert(format!("{}/{key}", step.step_id), shown);
        }
    }
    metrics.extend([("status".to_owned(), display_status(run))]);
    Ok(Subject {
        label: run.id.to_string(),
        params,
        metrics,
    })
}

/// Params, then metrics, one row each and a column per subject; rows equal across subjects are
/// hidden (and counted) unless `all`.
fn compare_table(subjects: &[Subject], by_step: bool, all: bool) -> anyhow::Result<String> {
    let mut header = vec![
        if by_step {
            "param / metric"
        } else {
            "param / step/metric"
        }
        .to_owned(),
    ];
    header.extend(subjects.iter().map(|s| s.label.clone()));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header_refs);
    let mut hidden = 0;
    for section in [0, 1] {
        let keys: std::collections::BTreeSet<&String> = subjects
            .iter()
            .flat_map(|s| {
                if section == 0 {
                    s.params.keys()
                } else {
                    s.metrics.keys()
                }
            })
            .collect();
        for key in keys {
            let values: Vec<String> = subjects
                .iter()
                .map(|s| {
                    let map = if section == 0 { &s.params } else { &s.metrics };
                    map.get(key).cloned().unwrap_or_else(|| "-".to_owned())
                })
                .collect();
            if !all && values.iter().all(|v| v == &values[0]) {
                hidden += 1;
                continue;
            }
            let mut row = vec![key.clone()];
            row.extend(values);
            table.row(row);
        }
    }
    let mut out = if table.is_empty() {
        "no differences\n".to_owned()
    } else {
        table.render()
    };
    if hidden > 0 {
        writeln!(out, "({hidden} equal rows hidden; --all shows them)")?;
    }
    Ok(out)
}

fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
