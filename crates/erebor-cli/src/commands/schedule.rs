//! `erebor schedule add|list|pause|resume|remove|history`: recurring runs of a workflow, which
//! `erebor scheduler` fires (docs/schedules.md).

use crate::format::{self, Table};
use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use crate::scheduler::FRESH_ALL;
use crate::scheduler::clock::Clock;
use crate::scheduler::cron::CronSpec;
use crate::scheduler::notify::rfc3339;
use crate::scheduler::policy::{Missed, Overlap};
use erebor_store::{Schedule, ScheduleHistoryEntry, Store, TickState};
use std::fmt::Write;
use std::path::PathBuf;

/// The `schedule` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Add a schedule: run FILE at the times of a cron expression (fired by `erebor scheduler`).
    Add(AddArgs),
    /// List schedules: next fire time, last run and its status.
    List,
    /// Stop a schedule from firing (ticks while paused never fire).
    Pause(NameArg),
    /// Let a paused schedule fire again, from now on.
    Resume(NameArg),
    /// Remove a schedule (its runs and tick history stay).
    Remove(NameArg),
    /// A schedule's ticks: runs, their `expect:` metrics over time, regressions marked.
    History(HistoryArgs),
}

/// A schedule name.
#[derive(Debug, clap::Args)]
pub(crate) struct NameArg {
    /// The schedule's name.
    pub(crate) name: String,
}

/// Arguments of `erebor schedule add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// The schedule's name.
    pub(crate) name: String,
    /// The workflow file.
    pub(crate) file: PathBuf,
    /// Cron expression: `MIN HOUR DOM MON DOW`, or with seconds first (6 fields).
    #[arg(long)]
    pub(crate) cron: String,
    /// IANA time zone the expression is read in.
    #[arg(long, default_value = "UTC")]
    pub(crate) tz: String,
    /// Override a param: `--set name=value` (repeatable; secret params come from their
    /// environment variable in the scheduler, never from here).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// Ticks missed while no scheduler ran: skip | latest | all:N.
    #[arg(long, default_value = "skip")]
    pub(crate) missed: String,
    /// A tick while an earlier run of the schedule is unfinished: skip | queue | allow.
    #[arg(long, default_value = "skip")]
    pub(crate) overlap: String,
    /// Steps that must run anew, not from the cache (comma-separated; a matrix base selects
    /// all arms).
    #[arg(long, value_delimiter = ',', conflicts_with = "fresh_all")]
    pub(crate) fresh: Vec<String>,
    /// Every step runs anew.
    #[arg(long)]
    pub(crate) fresh_all: bool,
    /// Name of the environment variable (of the scheduler) holding the webhook URL a
    /// regression notice is posted to; the URL is a secret and is never stored.
    #[arg(long, value_name = "VAR")]
    pub(crate) notify_env: Option<String>,
    /// Regression band: median ± K·MAD of the earlier fresh runs.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) regression_k: f64,
    /// Replace a schedule of the same name (its tick history is kept).
    #[arg(long)]
    pub(crate) replace: bool,
}

/// Arguments of `erebor schedule history`.
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The schedule's name.
    pub(crate) name: String,
    /// Print JSON (one object per tick) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ScheduleCommand {
    /// Runs the subcommand.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let text = crate::globals::runtime()?.block_on(async {
            let store = globals.store().await?;
            let clock = Clock::from_env();
            match self {
                ScheduleCommand::Add(args) => add(globals, &store, &clock, args).await,
                ScheduleCommand::List => list(&store, &clock).await,
                ScheduleCommand::Pause(args) => {
                    set_enabled(&store, &clock, &args.name, false).await
                }
                ScheduleCommand::Resume(args) => {
                    set_enabled(&store, &clock, &args.name, true).await
                }
                ScheduleCommand::Remove(args) => remove(&store, &args.name).await,
                ScheduleCommand::History(args) => history_text(&store, &args).await,
            }
        })?;
        print!("{text}");
        Ok(Outcome::Success)
    }
}

/// Checks the flags that need no workflow: cron, zone, policies, k, the webhook variable.
fn check_flags(args: &AddArgs) -> anyhow::Result<(CronSpec, Missed, Overlap)> {
    let spec = CronSpec::parse(&args.cron, &args.tz).map_err(|e| BadInput(e.to_string()))?;
    let missed: Missed = args.missed.parse().map_err(BadInput)?;
    let overlap: Overlap = args.overlap.parse().map_err(BadInput)?;
    if !(args.regression_k.is_finite() && args.regression_k > 0.0) {
        let k = args.regression_k;
        return Err(BadInput(format!("--regression-k {k}: give a number above 0")).into());
    }
    if let Some(var) = &args.notify_env
        && (var.is_empty() || var.contains('=') || var.contains("://"))
    {
        let message =
            "--notify-env takes the NAME of an environment variable holding the URL, not the URL";
        return Err(BadInput(message.into()).into());
    }
    Ok((spec, missed, overlap))
}

/// Loads the workflow with the `--set` values; refuses secret params and unknown fresh steps.
fn check_workflow(
    globals: &Globals,
    args: &AddArgs,
) -> anyhow::Result<(erebor_workflow::Workflow, Vec<(String, String)>)> {
    let workflow = crate::commands::run::load_workflow(globals, &args.file, &args.set)?;
    let overrides = crate::commands::run::parse_overrides(&args.set)?;
    if let Some((name, _)) = overrides
        .iter()
        .find(|(name, _)| workflow.params.secret_names.contains(name))
    {
        return Err(BadInput(format!(
            "--set {name}: `{name}` is a secret param; schedules never store secrets, give it through its environment variable to `erebor scheduler`"
        ))
        .into());
    }
    for selector in &args.fresh {
        if workflow.select(selector).is_empty() {
            return Err(
                BadInput(format!("--fresh {selector}: the workflow has no such step")).into(),
            );
        }
    }
    Ok((workflow, overrides))
}

/// Checks everything a schedule needs (cron, zone, policies, the workflow with its params,
/// the fresh steps) and stores it; its first tick is the first after now.
async fn add(
    globals: &Globals,
    store: &Store,
    clock: &Clock,
    args: AddArgs,
) -> anyhow::Result<String> {
    let (spec, missed, overlap) = check_flags(&args)?;
    let (workflow, overrides) = check_workflow(globals, &args)?;
    let existing = store.get_schedule(&args.name).await?;
    if existing.is_some() && !args.replace {
        return Err(BadInput(format!(
            "a schedule `{}` exists; pass --replace to change it, or remove it first",
            args.name
        ))
        .into());
    }
    let now = clock.now_ms()?;
    let file = std::path::absolute(&args.file).unwrap_or(args.file.clone());
    let schedule = Schedule {
        name: args.name.clone(),
        workflow_file: file.display().to_string(),
        cron: args.cron.clone(),
        params: serde_json::Value::Object(
            overrides
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        ),
        enabled: existing.as_ref().is_none_or(|s| s.enabled),
        last_run_id: existing.as_ref().and_then(|s| s.last_run_id.clone()),
        next_run_at: spec.next_after(now),
        tz: args.tz.clone(),
        missed: missed.to_string(),
        overlap: overlap.to_string(),
        fresh: if args.fresh_all {
            vec![FRESH_ALL.to_owned()]
        } else {
            args.fresh.clone()
        },
        notify_env: args.notify_env.clone(),
        regression_k: args.regression_k,
        seen_until: Some(existing.as_ref().and_then(|s| s.seen_until).unwrap_or(now)),
    };
    store.put_schedule(&schedule).await?;
    let next = schedule
        .next_run_at
        .map_or("never".to_owned(), |t| fire_time(t, &spec));
    Ok(format!(
        "schedule {} {}: {} `{}` ({}), next {next}\nfired by a running `erebor scheduler`\n",
        args.name,
        if existing.is_some() {
            "replaced"
        } else {
            "added"
        },
        workflow.name,
        args.cron,
        args.tz,
    ))
}

/// A tick time in the schedule's zone and in UTC.
fn fire_time(ms: i64, spec: &CronSpec) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => format!(
            "{} ({})",
            t.with_timezone(&spec.tz()).format("%Y-%m-%d %H:%M:%S %Z"),
            rfc3339(ms)
        ),
        None => ms.to_string(),
    }
}

async fn list(store: &Store, clock: &Clock) -> anyhow::Result<String> {
    let now = clock.now_ms()?;
    let mut table = Table::new(&[
        "name",
        "state",
        "cron",
        "tz",
        "next",
        "last run",
        "last status",
    ]);
    for schedule in store.schedules().await? {
        let next = match CronSpec::parse(&schedule.cron, &schedule.tz) {
            Ok(spec) if schedule.enabled => spec.next_after(now).map_or("never".into(), rfc3339),
            Ok(_) => "-".to_owned(),
            Err(error) => format!("invalid: {error}"),
        };
        let (last_run, last_status) = match &schedule.last_run_id {
            Some(id) => (id.clone(), run_status(store, id).await?),
            None => ("-".to_owned(), "-".to_owned()),
        };
        table.row(vec![
            schedule.name.clone(),
            if schedule.enabled { "active" } else { "paused" }.to_owned(),
            schedule.cron.clone(),
            schedule.tz.clone(),
            next,
            last_run,
            last_status,
        ]);
    }
    if table.is_empty() {
        return Ok(format!("no schedules in {}\n", store.url()));
    }
    Ok(table.render())
}

/// A run's status as `runs list` shows it, `regressed` when its tick regressed.
async fn run_status(store: &Store, run_id: &str) -> anyhow::Result<String> {
    match store.find_run(run_id).await {
        Ok(run) => {
            let shown = crate::history::display_status(&run);
            status_with_regression(store, run_id, shown).await
        }
        Err(erebor_store::StoreError::NotFound(_)) => Ok("not started".to_owned()),
        Err(error) => Err(error.into()),
    }
}

/// `regressed` instead of `shown` when a schedule's evaluation marked the run regressed (used
/// by `runs list` too).
pub(crate) async fn status_with_regression(
    store: &Store,
    run_id: &str,
    shown: String,
) -> anyhow::Result<String> {
    Ok(match store.tick_of_run(run_id).await? {
        Some(tick) if tick.regressed => "regressed".to_owned(),
        _ => shown,
    })
}

async fn set_enabled(
    store: &Store,
    clock: &Clock,
    name: &str,
    enabled: bool,
) -> anyhow::Result<String> {
    if !store
        .set_schedule_enabled(name, enabled, clock.now_ms()?)
        .await?
    {
        return Err(BadInput(format!("no schedule `{name}` (see `erebor schedule list`)")).into());
    }
    Ok(format!(
        "schedule {name} {}\n",
        if enabled {
            "resumed: ticks from now on fire"
        } else {
            "paused"
        }
    ))
}

async fn remove(store: &Store, name: &str) -> anyhow::Result<String> {
    if !store.delete_schedule(name).await? {
        return Err(BadInput(format!("no schedule `{name}` (see `erebor schedule list`)")).into());
    }
    Ok(format!(
        "schedule {name} removed (its runs and tick history stay)\n"
    ))
}

/// A schedule's history, oldest first (the plain data of `erebor schedule history`, for
/// reports and charts): [`Store::schedule_history`]. A schedule that was removed still has
/// its history; a name that never had ticks or a schedule is an error.
pub(crate) async fn schedule_history(
    store: &Store,
    name: &str,
) -> anyhow::Result<Vec<ScheduleHistoryEntry>> {
    let history = store.schedule_history(name).await?;
    if history.is_empty() && store.get_schedule(name).await?.is_none() {
        return Err(BadInput(format!("no schedule `{name}` (see `erebor schedule list`)")).into());
    }
    Ok(history)
}

async fn history_text(store: &Store, args: &HistoryArgs) -> anyhow::Result<String> {
    let history = schedule_history(store, &args.name).await?;
    if args.json {
        let mut out = String::new();
        for entry in &history {
            writeln!(out, "{}", serde_json::to_string(entry)?)?;
        }
        return Ok(out);
    }
    if history.is_empty() {
        return Ok(format!("schedule {}: no ticks yet\n", args.name));
    }
    let mut table = Table::new(&["tick", "run", "status", "fresh", "metrics"]);
    let mut notes = String::new();
    for entry in &history {
        let tick = &entry.tick;
        let status = history_status(entry);
        let fresh = match tick.fresh {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let metrics: Vec<String> = tick
            .measurements
            .iter()
            .map(|(key, value)| format!("{key}={}", format::number(*value)))
            .collect();
        table.row(vec![
            rfc3339(tick.tick_at),
            tick.run_id.clone().unwrap_or_else(|| "-".into()),
            status,
            fresh.to_owned(),
            metrics.join(" "),
        ]);
        for reason in tick.reasons.iter().chain(tick.error.iter()) {
            writeln!(
                notes,
                "{} {}: {reason}",
                rfc3339(tick.tick_at),
                tick.state.as_str()
            )?;
        }
    }
    let mut out = table.render();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    Ok(out)
}

/// The status column of a history line.
fn history_status(entry: &ScheduleHistoryEntry) -> String {
    let tick = &entry.tick;
    match tick.state {
        TickState::Skipped => "skipped".to_owned(),
        TickState::Failed => "failed to start".to_owned(),
        _ if tick.regressed => "regressed".to_owned(),
        TickState::Claimed => "claimed".to_owned(),
        TickState::Started => entry
            .run_status
            .clone()
            .unwrap_or_else(|| "starting".into()),
    }
}
