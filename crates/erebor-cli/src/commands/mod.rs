//! One module per command group; each has an args struct with `execute`.

pub(crate) mod eval;
pub(crate) mod kinds;
pub(crate) mod metrics;
pub(crate) mod model;
pub(crate) mod mt_bench;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod schedule;
pub(crate) mod scheduler;
pub(crate) mod step_exec;
pub(crate) mod validate;
