//! `erebor plan FILE`: the expanded DAG in order, what is cached and why not, GPU slots.

use crate::commands::run::{RunnerArgs, load_workflow};
use crate::globals::Globals;
use crate::outcome::Outcome;
use erebor_engine::plan::{PlanEntry, PlanStatus};
use erebor_workflow::{HashCache, Workflow};
use std::fmt::Write;
use std::path::PathBuf;

/// Arguments of `erebor plan`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// The workflow file.
    pub(crate) file: PathBuf,
    /// Override a param: `--set name=value` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// `text` (default), `dot` (Graphviz) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "dot", "json"])]
    pub(crate) format: String,
    /// The same options as `erebor run`, which change what runs.
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

impl PlanArgs {
    /// Prints the plan.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let workflow = load_workflow(globals, &self.file, &self.set)?;
        let workflow = crate::executors::for_planning(self.runner.executor, &workflow);
        let limits = self.runner.limits()?;
        let cache = HashCache::open(&globals.home().join("cache").join("file-hashes.json"));
        let entries = crate::globals::runtime()?.block_on(async {
            let store = globals.store().await?;
            anyhow::Ok(
                erebor_engine::plan::plan(&workflow, &globals.registry, &store, &cache, &limits)
                    .await?,
            )
        })?;
        let _ = cache.persist();
        let text = match self.format.as_str() {
            "dot" => render_dot(&workflow, &entries),
            "json" => render_json(&entries)?,
            _ => render_text(&workflow, &entries),
        };
        print!("{text}");
        let refused = erebor_engine::plan::refusals(&entries);
        if refused.is_empty() {
            return Ok(Outcome::Success);
        }
        for line in &refused {
            eprintln!("error: refused: {line}");
        }
        Ok(Outcome::BadInput)
    }
}

/// The steps the hardware here cannot run among those this run will run, as `step ID: why`
/// (the kinds' plan-time refusals, e.g. a training step whose memory estimate exceeds the
/// device's memory). A step reused from the cache is not refused (the plan notes it).
/// `erebor run` refuses the workflow on any before a step starts.
pub(crate) async fn refusals(
    globals: &Globals,
    store: &erebor_store::Store,
    runner: &RunnerArgs,
    workflow: &Workflow,
) -> anyhow::Result<Vec<String>> {
    let planned = crate::executors::for_planning(runner.executor, workflow);
    let cache = HashCache::open(&globals.home().join("cache").join("file-hashes.json"));
    let limits = runner.limits()?;
    let entries =
        erebor_engine::plan::plan(&planned, &globals.registry, store, &cache, &limits).await?;
    let _ = cache.persist();
    Ok(erebor_engine::plan::refusals(&entries))
}

fn render_text(workflow: &Workflow, entries: &[PlanEntry]) -> String {
    let cached = entries
        .iter()
        .filter(|e| e.status != PlanStatus::Run)
        .count();
    let mut out = format!(
        "workflow {} ({}): {} steps, {} cached, {} to run\n\n",
        workflow.name,
        workflow.file.display(),
        entries.len(),
        cached,
        entries.len() - cached
    );
    let mut table = crate::format::Table::new(&[
        "#",
        "step",
        "kind",
        "status",
        "gpus",
        "fingerprint",
        "needs",
    ]);
    for (i, entry) in entries.iter().enumerate() {
        let status = match &entry.status {
            PlanStatus::Cached { from_run } => format!("cached ({from_run})"),
            PlanStatus::Run => "run".to_owned(),
        };
        let gpus = if entry.gpus.is_empty() {
            "-".to_owned()
        } else {
            entry
                .gpus
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let needs = entry
            .step
            .needs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            (i + 1).to_string(),
            entry.step.id.to_string(),
            entry.step.kind.clone(),
            status,
            gpus,
            entry
                .fingerprint
                .as_deref()
                .map_or_else(|| "?".to_owned(), |f| f[..12].to_owned()),
            needs,
        ]);
    }
    out.push_str(&table.render());
    for entry in entries {
        if entry.reasons.is_empty() && entry.notes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}:", entry.step.id);
        for reason in &entry.reasons {
            let _ = writeln!(out, "  runs because: {reason}");
        }
        for note in &entry.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}

fn render_dot(workflow: &Workflow, entries: &[PlanEntry]) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\"];\n",
        quote(&workflow.name)
    );
    for entry in entries {
        let (status, color) = match &entry.status {
            PlanStatus::Cached { .. } => ("cached", "#d9f2d9"),
            PlanStatus::Run => ("run", "#fff2cc"),
        };
        let label = format!("{}\\n{} · {}", entry.step.id, entry.step.kind, status);
        let _ = writeln!(
            out,
            "  {} [label=\"{}\", fillcolor=\"{color}\"];",
            quote(entry.step.id.as_str()),
            label.replace('"', "\\\"")
        );
    }
    for entry in entries {
        for need in &entry.step.needs {
            let _ = writeln!(
                out,
                "  {} -> {};",
                quote(need.as_str()),
                quote(entry.step.id.as_str())
            );
        }
    }
    out.push_str("}\n");
    out
}

fn render_json(entries: &[PlanEntry]) -> anyhow::Result<String> {
    let steps: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            serde_json::json!({
                "id": entry.step.id,
                "kind": entry.step.kind,
                "needs": entry.step.needs,
                "status": match &entry.status { PlanStatus::Cached { .. } => "cached", PlanStatus::Run => "run" },
                "cached_from": match &entry.status { PlanStatus::Cached { from_run } => Some(from_run), PlanStatus::Run => None },
                "fingerprint": entry.fingerprint,
                "reasons": entry.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "gpus": entry.gpus,
                "notes": entry.notes,
                "with": entry.step.with,
            })
        })
        .collect();
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&serde_json::json!({ "steps": steps }))?
    ))
}
