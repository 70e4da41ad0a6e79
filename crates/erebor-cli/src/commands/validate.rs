//! `erebor validate FILE`: checks a workflow without running it.

use crate::globals::Globals;
use crate::outcome::Outcome;
use erebor_workflow::{LoadOptions, MissingParams};
use std::path::PathBuf;

/// Arguments of `erebor validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// The workflow file.
    pub(crate) file: PathBuf,
    /// Override a param: `--set name=value` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
}

impl ValidateArgs {
    /// Loads and validates the file; prints a one-line summary on success.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let overrides = crate::commands::run::parse_overrides(&self.set)?;
        let options = LoadOptions {
            overrides,
            missing: MissingParams::Placeholder,
            ..LoadOptions::default()
        };
        let workflow = erebor_workflow::load_file(&self.file, &globals.registry, &options)?;
        println!(
            "{}: workflow `{}` is valid ({} steps after matrix expansion)",
            self.file.display(),
            workflow.name,
            workflow.steps.len()
        );
        Ok(Outcome::Success)
    }
}
