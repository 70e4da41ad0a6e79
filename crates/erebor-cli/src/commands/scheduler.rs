//! `erebor scheduler`: the long-running daemon that fires schedules' ticks as runs
//! (`crate::scheduler::daemon` says how; docs/schedules.md for users).

use crate::commands::run::{ExecutorChoice, detect_gpus, parse_gpus};
use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use crate::scheduler::clock::Clock;
use crate::scheduler::daemon::{Daemon, DaemonOptions};
use anyhow::Context;
use erebor_engine::RunControl;
use std::time::Duration;

/// Arguments of `erebor scheduler`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchedulerArgs {
    /// Time between looks at the schedules.
    #[arg(long, default_value = "1s", value_parser = parse_duration_arg)]
    pub(crate) poll: Duration,
    /// A tick first seen later than this after its time counts as missed (`--missed`).
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg)]
    pub(crate) late_after: Duration,
    /// Steps running at once in each run (default: the number of CPUs).
    #[arg(long, short = 'j')]
    pub(crate) jobs: Option<usize>,
    /// GPU slots: a count, a list of device ids or `none` (default: the GPUs found).
    #[arg(long)]
    pub(crate) gpus: Option<String>,
    /// Where steps run (default: each workflow's `executor:`, else local).
    #[arg(long, value_enum)]
    pub(crate) executor: Option<ExecutorChoice>,
    /// Time a stopped step gets to checkpoint before it is killed (on SIGTERM).
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub(crate) stop_grace: Duration,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    erebor_workflow::fields::parse_duration(text).map_err(|e| e.to_string())
}

impl SchedulerArgs {
    /// Runs the daemon until SIGTERM / SIGINT.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let gpus = match &self.gpus {
            Some(spec) => parse_gpus(spec).map_err(BadInput)?,
            None => detect_gpus(),
        };
        let options = DaemonOptions {
            poll: self.poll.max(Duration::from_millis(50)),
            late_after: self.late_after,
            jobs: self.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            }),
            gpus,
            executor: self.executor,
            stop_grace: self.stop_grace,
        };
        let runtime = crate::globals::runtime()?;
        runtime.block_on(async {
            let store = globals.store().await?;
            let control = RunControl::new();
            control
                .stop_on_signals()
                .context("installing the SIGTERM handler")?;
            let daemon = Daemon::new(
                store,
                globals.registry.clone(),
                globals.home(),
                globals.db_url(),
                options,
                control,
                Clock::from_env(),
            );
            daemon.run().await?;
            Ok(Outcome::Success)
        })
    }
}
