//! `erebor step-exec --request FILE` (hidden): runs one step inside a step process. The runner
//! starts it; see docs/steps.md, "Step processes".

use crate::globals::Globals;
use crate::outcome::Outcome;
use erebor_core::CancelToken;
use erebor_engine::step_process::{self, Hosting};
use std::path::PathBuf;

/// Arguments of `erebor step-exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct StepExecArgs {
    /// The request file written by the runner.
    #[arg(long)]
    pub(crate) request: PathBuf,
}

impl StepExecArgs {
    /// Runs the step and exits with its failure class's exit code.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        if let Ok(secrets) = erebor_engine::protocol::secrets_from_env() {
            crate::telemetry::add_secrets(secrets.into_values());
        }
        let cancel = CancelToken::new();
        step_process::cancel_on_signals(cancel.clone())?;
        let code = step_process::run_step_process(
            &self.request,
            &globals.registry,
            &cancel,
            Hosting::ChildProcess,
        );
        Ok(Outcome::StepExit(code))
    }
}
