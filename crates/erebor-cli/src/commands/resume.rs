//! `erebor resume RUN`: continues a failed, cancelled or killed run.

use crate::commands::run::{RunnerArgs, build_engine, parse_overrides, report};
use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use erebor_engine::Engine;
use erebor_workflow::{LoadOptions, MissingParams};

/// Arguments of `erebor resume`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The run id (or a unique prefix).
    pub(crate) run: String,
    /// Values for secret params, which are never stored: `--set name=value`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// How the steps run.
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

impl ResumeArgs {
    /// Reloads the run's stored workflow and params and continues it.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let runtime = crate::globals::runtime()?;
        runtime.block_on(async {
            let store = globals.store().await?;
            let run = store
                .find_run(&self.run)
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            if run.status == erebor_store::RunStatus::Succeeded {
                println!("run {}: succeeded (nothing to resume)", run.id);
                return Ok(Outcome::Success);
            }
            let (text, file, base_dir) = Engine::resume_workflow_text(&run);
            let mut overrides = stored_params_as_overrides(&run.params);
            overrides.extend(parse_overrides(&self.set)?);
            let options = LoadOptions {
                overrides,
                missing: MissingParams::Error,
                ..LoadOptions::default()
            };
            let workflow =
                erebor_workflow::load_str(&file, &text, &base_dir, &globals.registry, &options)?;
            crate::telemetry::add_secrets(workflow.params.secret_values());
            let runner = inherit_options(self.runner.clone(), &run.options);
            let (engine, _control) = build_engine(globals, store, &runner, &workflow)?;
            let summary = engine
                .resume(&run, &workflow)
                .await
                .map_err(|error| match error {
                    erebor_engine::EngineError::CannotResume(message) => {
                        anyhow::Error::new(BadInput(message))
                    }
                    other => other.into(),
                })?;
            Ok(report(&summary))
        })
    }
}

/// Options the run was started with apply again unless given now: `--no-cache`, `--force`,
/// `--jobs` and `--executor` (GPUs are detected afresh: the machine may differ).
fn inherit_options(mut runner: RunnerArgs, stored: &serde_json::Value) -> RunnerArgs {
    if stored.get("no_cache").and_then(serde_json::Value::as_bool) == Some(true) {
        runner.no_cache = true;
    }
    if runner.force.is_empty()
        && let Some(force) = stored.get("force").and_then(|v| v.as_array())
    {
        runner.force = force
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
    }
    if runner.executor.is_none() {
        runner.executor = stored
            .get("executor")
            .and_then(|v| v.as_str())
            .and_then(crate::commands::run::ExecutorChoice::from_name);
    }
    if runner.jobs.is_none() {
        runner.jobs = stored
            .get("jobs")
            .and_then(serde_json::Value::as_u64)
            .and_then(|j| usize::try_from(j).ok());
    }
    runner
}

/// Stored param values (a run's or a schedule's) as `--set` text; masked secrets are left out
/// (they must be given again, or come from the environment of the scheduler).
pub(crate) fn stored_params_as_overrides(params: &serde_json::Value) -> Vec<(String, String)> {
    let Some(map) = params.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(_, value)| value.as_str() != Some("***"))
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}
