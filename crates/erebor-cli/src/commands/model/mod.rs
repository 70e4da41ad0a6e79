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

pub(crate) use command::ModelCommand;
pub(crate) use convert::ConvertArgs;
pub(crate) use inspect::InspectArgs;
pub(crate) use run::{GenerateArgs, ScoreArgs};
pub(crate) use serve::ServeArgs;
