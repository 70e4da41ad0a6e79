//! `erebor scheduler`: the daemon that fires schedules' ticks as ordinary runs, exactly once
//! per (schedule, tick time) however many daemons share the store.
//!
//! - [`cron`]: cron expressions in a time zone, and the daylight-saving rule.
//! - [`policy`]: which ticks fire (`--missed`, `--overlap`); pure.
//! - [`regression`]: median ± k·MAD bands over earlier fresh runs; pure.
//! - [`clock`]: the system clock, or the test clock file of `EREBOR_TEST_CLOCK`.
//! - [`daemon`]: the loop: plan ticks, claim them, re-drive orphans, start and resume runs.
//! - [`evaluate`]: after a tick's run ends: was it fresh, what did it measure, did it regress.
//! - [`notify`]: the JSON notice posted to a schedule's webhook.
//! - [`FRESH_ALL`]: the entry of a schedule's fresh steps that means every step.

pub(crate) mod clock;
pub(crate) mod cron;
pub(crate) mod daemon;
pub(crate) mod evaluate;
mod fresh;
pub(crate) mod notify;
pub(crate) mod policy;
pub(crate) mod regression;

pub(crate) use fresh::FRESH_ALL;
