//! The `convert` step: its config, pipeline, outputs and report.

pub mod config;
pub mod kind;
pub mod output;
pub mod report;
pub mod run;
pub mod sources;
mod tokenise;

pub use config::ConvertConfig;
pub use kind::ConvertKind;
pub use run::{ConvertEnv, ConvertOutput, run_convert};
