//! One module per command group; each has an args struct with `execute`.

pub mod eval;
pub mod kinds;
pub mod metrics;
pub mod model;
pub mod mt_bench;
pub mod plan;
pub mod report;
pub mod resume;
pub mod run;
pub mod runs;
pub mod schedule;
pub mod scheduler;
pub mod step_exec;
pub mod validate;
