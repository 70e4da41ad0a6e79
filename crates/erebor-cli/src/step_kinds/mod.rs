//! The CLI's side of step kinds that need the run store, which only the CLI may open. The kinds
//! themselves live in their crates (`command`, `noop` and `report` in erebor-steps).
//!
//! - [`mt_bench`]: the `mt-bench` kind's judgment cache over the run store.
//! - [`report`]: gathering a `report` step's data from the store in the runner.

pub(crate) mod mt_bench;
pub(crate) mod report;
