//! `erebor report RUN`: the report of a run made earlier, as the `report` step kind makes it:
//! a self-contained HTML page, Markdown and PNG charts, optionally with other runs' curves
//! overlaid (`--compare RUN[:STEP]`).

use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use crate::step_kinds::report::gather::{self, Selection};
use std::path::PathBuf;

/// Arguments of `erebor report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The run id (or a unique prefix).
    pub(crate) run: String,
    /// Overlay another run's curves: `RUN` (its steps with the same ids) or `RUN:STEP`. Repeatable.
    #[arg(long, value_name = "RUN[:STEP]")]
    pub(crate) compare: Vec<String>,
    /// Folder to write report.html, report.md and charts/ into (default: reports/RUN in the state folder).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Only chart these steps (ids, arms or matrix bases; default: every step with a curve). Repeatable.
    #[arg(long)]
    pub(crate) step: Vec<String>,
    /// Only chart these metric keys (default: every key with more than one point). Repeatable.
    #[arg(long)]
    pub(crate) key: Vec<String>,
    /// The page title.
    #[arg(long)]
    pub(crate) title: Option<String>,
    /// Chart this schedule's history (its `expect:` metrics over its runs, regressions marked);
    /// default: the schedule that started the run, if any.
    #[arg(long)]
    pub(crate) schedule: Option<String>,
}

impl ReportArgs {
    /// Gathers the run's data, writes the report and prints where it is.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let selection = Selection {
            steps: self.step.clone(),
            keys: self.key.clone(),
            title: self.title.clone(),
            compare: self.compare.clone(),
            schedule: self.schedule.clone(),
        };
        let report = crate::globals::runtime()?.block_on(async {
            let store = globals.store().await?;
            let run = store
                .find_run(&self.run)
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            let report = gather::gather(&store, &run, &selection).await;
            store.close().await;
            report
        })?;
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| globals.home().join("reports").join(&report.run.id));
        let (html, markdown) = erebor_steps::report::write(&report, &out)?;
        println!("{}", html.display());
        println!("{}", markdown.display());
        println!("{}", out.join("charts").display());
        Ok(Outcome::Success)
    }
}
