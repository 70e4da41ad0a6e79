//! The `erebor model` subcommands and their dispatch.

use super::{ConvertArgs, GenerateArgs, InspectArgs, ScoreArgs, ServeArgs};
use crate::outcome::Outcome;

/// `erebor model ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ModelCommand {
    /// Architecture, parameter count, weights dtype, tokenizer and chat template of a checkpoint.
    Inspect(InspectArgs),
    /// Convert a GGUF file or HF folder into an HF safetensors folder.
    Convert(ConvertArgs),
    /// Generate text from a prompt.
    Generate(GenerateArgs),
    /// Log-probability of a continuation given a context (lm-eval `loglikelihood`).
    Score(ScoreArgs),
    /// Serve the model over an OpenAI-compatible HTTP API with continuous batching.
    Serve(ServeArgs),
}

impl ModelCommand {
    /// Runs the subcommand.
    pub(crate) fn execute(self) -> anyhow::Result<Outcome> {
        match self {
            ModelCommand::Inspect(a) => a.execute(),
            ModelCommand::Convert(a) => a.execute(),
            ModelCommand::Generate(a) => a.execute(),
            ModelCommand::Score(a) => a.execute(),
            ModelCommand::Serve(a) => a.execute(),
        }
    }
}
