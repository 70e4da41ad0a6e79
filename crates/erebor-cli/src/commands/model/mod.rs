//! `erebor model`: inspect, convert, generate with and score against a checkpoint (a Hugging
//! Face folder or a GGUF file), outside any workflow.
//!
//! - [`ModelCommand`]: the subcommands and their dispatch.
//! - [`load`]: where and in what precision the checkpoint loads, and its errors as exit code 2.
//! - [`InspectArgs`], [`ConvertArgs`], [`GenerateArgs`], [`ScoreArgs`], [`ServeArgs`]: one
//!   subcommand each.

mod command;
mod convert;
mod inspect;
mod load;
mod run;
mod serve;
#[cfg(test)]
mod tests;

pub use command::ModelCommand;
pub use convert::ConvertArgs;
pub use inspect::InspectArgs;
pub use run::{GenerateArgs, ScoreArgs};
pub use serve::ServeArgs;
