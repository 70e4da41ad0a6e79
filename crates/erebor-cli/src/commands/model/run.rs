//! `erebor model generate` and `erebor model score`: the commands that run the model.

use std::path::PathBuf;

use erebor_model::scoring::encode_pair;
use erebor_model::{
    ChatMessage, ChatTemplate, GenerationConfig, LoglikelihoodRequest, Scorer, ScorerOptions,
    generate,
};
use serde_json::json;

use super::load::{DeviceArgs, bad, tokenizer_of};
use crate::outcome::{BadInput, Outcome};

/// Arguments of `erebor model generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Checkpoint folder or .gguf file.
    pub(crate) path: PathBuf,
    /// The prompt.
    #[arg(long)]
    pub(crate) prompt: String,
    /// Wrap the prompt as a user message in the chat template.
    #[arg(long)]
    pub(crate) chat: bool,
    /// Chat template: `checkpoint`, a built-in (chatml, llama-2, mistral, llama-3) or a .jinja file.
    #[arg(long, default_value = "checkpoint")]
    pub(crate) template: String,
    /// System prompt override (with --chat).
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Most new tokens.
    #[arg(long, default_value_t = 128)]
    pub(crate) max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) top_p: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Stop strings (repeatable).
    #[arg(long)]
    pub(crate) stop: Vec<String>,
    /// Device and dtype.
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

impl GenerateArgs {
    pub(super) fn execute(self) -> anyhow::Result<Outcome> {
        let ckpt = self.device.load(&self.path)?;
        let tok = tokenizer_of(&ckpt)?;
        let ids = if self.chat {
            let mut template = ChatTemplate::from_spec(&self.template, tok).map_err(bad)?;
            if let Some(system) = &self.system {
                template = template.with_system_prompt(system.clone());
            }
            let text = template
                .render(&[ChatMessage::user(self.prompt.clone())], true)
                .map_err(bad)?;
            tok.encode_ids(&text, false).map_err(bad)?
        } else {
            tok.encode_ids(&self.prompt, true).map_err(bad)?
        };
        let config = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: 0,
            stop_token_ids: tok.stop_token_ids().to_vec(),
            stop_strings: self.stop.clone(),
            seed: self.seed,
        };
        let out = generate(&ckpt.model, Some(tok), &[ids], &config).map_err(bad)?;
        println!("{}", out[0].text);
        tracing::info!(tokens = out[0].token_ids.len(), finish = ?out[0].finish_reason, "generated");
        Ok(Outcome::Success)
    }
}

/// Arguments of `erebor model score`.
#[derive(Debug, clap::Args)]
pub(crate) struct ScoreArgs {
    /// Checkpoint folder or .gguf file.
    pub(crate) path: PathBuf,
    /// The context.
    #[arg(long)]
    pub(crate) context: String,
    /// The continuation to score.
    #[arg(long)]
    pub(crate) continuation: String,
    /// Add the tokenizer's special tokens (BOS) when encoding, like lm-eval's `add_bos_token`.
    #[arg(long)]
    pub(crate) add_special_tokens: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Device and dtype.
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

impl ScoreArgs {
    pub(super) fn execute(self) -> anyhow::Result<Outcome> {
        let ckpt = self.device.load(&self.path)?;
        let tok = tokenizer_of(&ckpt)?;
        let (context, continuation) = encode_pair(
            tok,
            &self.context,
            &self.continuation,
            self.add_special_tokens,
        )
        .map_err(bad)?;
        if continuation.is_empty() {
            return Err(anyhow::Error::new(BadInput(
                "the continuation encodes to no tokens".into(),
            )));
        }
        let scorer = Scorer::new(
            &ckpt.model,
            ScorerOptions {
                pad_id: tok.pad_id_or_fallback(),
                ..ScorerOptions::for_model(&ckpt.model)
            },
        );
        let request = LoglikelihoodRequest {
            context,
            continuation: continuation.clone(),
        };
        let result = scorer.loglikelihood(&[request]).map_err(bad)?.remove(0);
        let tokens: Vec<serde_json::Value> = continuation
            .iter()
            .zip(&result.token_logprobs)
            .map(|(id, lp)| json!({"id": id, "token": tok.id_to_token(*id), "logprob": lp}))
            .collect();
        if self.json {
            let out = json!({"logprob": result.logprob, "is_greedy": result.is_greedy,
                             "truncated": result.truncated, "tokens": tokens});
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("logprob    {:.6}", result.logprob);
            println!("is_greedy  {}", result.is_greedy);
            for t in &tokens {
                println!(
                    "  {:>8} {:<20} {:.6}",
                    t["id"],
                    t["token"].as_str().unwrap_or("?"),
                    t["logprob"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
        Ok(Outcome::Success)
    }
}
