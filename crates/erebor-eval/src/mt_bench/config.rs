//! The settings of an MT-Bench run: the `with:` block of an `mt-bench` step, also what
//! `erebor mt-bench` builds from its flags.
//!
//! ```yaml
//! - id: mt-dpop
//!   uses: mt-bench
//!   with:
//!     model: ${{ steps.train.outputs.model }}  # or answers_from: {url, model} / answers: FILE
//!     data_dir: ../shared/data/mt_bench          # question.jsonl, judge_prompts.jsonl, reference_answer/
//!     template: llama-2                          # default: the model's own chat template
//!     system_prompt: "You are a helpful assistant."
//!     judge: {url: http://127.0.0.1:8000/v1, model: gpt-4, api_key_env: OPENAI_API_KEY}
//!     mode: pairwise                             # single (default) or pairwise
//!     against: ${{ steps.mt-dpo.outputs.answers }}
//!     repeats: 3
//!     limit: 10
//!     max_new_tokens: 1024
//!     temperature: 0                             # default: FastChat's per-category table
//!     concurrency: 8
//!   expect: {mt_bench/judge_errors: "== 0"}
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use erebor_core::ConfigError;
use erebor_core::kind::resolve_path;
use erebor_model::DeviceSpec;
use serde::{Deserialize, Serialize};

use super::client::{Endpoint, RetryPolicy};
use super::error::MtBenchError;

fn default_judge_model() -> String {
    "gpt-4".into()
}
fn default_timeout() -> f64 {
    180.0
}
fn default_retries() -> u32 {
    6
}
fn default_retry_base() -> f64 {
    2.0
}
fn default_retry_max() -> f64 {
    60.0
}
fn one() -> u32 {
    1
}
fn default_max_new_tokens() -> usize {
    1024
}
fn default_concurrency() -> usize {
    8
}
fn default_batch_size() -> usize {
    8
}

/// An OpenAI-compatible endpoint and how to reach it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL (`http://host:port/v1`) or the full chat-completions URL.
    pub url: String,
    /// The `model` of the requests (default `gpt-4`).
    #[serde(default = "default_judge_model")]
    pub model: String,
    /// The environment variable holding the API key (never stored or logged).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Seconds allowed for one request.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff in seconds (it doubles per retry, with jitter).
    #[serde(default = "default_retry_base")]
    pub retry_base_s: f64,
    /// Longest backoff in seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_s: f64,
}

impl EndpointConfig {
    /// The endpoint, its key read from the environment.
    pub fn endpoint(&self) -> Result<Endpoint, MtBenchError> {
        let api_key = match &self.api_key_env {
            Some(name) => Some(
                std::env::var(name).map_err(|_| MtBenchError::ApiKeyMissing {
                    variable: name.clone(),
                })?,
            ),
            None => None,
        };
        Ok(Endpoint {
            url: self.url.clone(),
            model: self.model.clone(),
            api_key,
        })
    }

    /// Timeout and retries.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base_delay: Duration::from_secs_f64(self.retry_base_s),
            max_delay: Duration::from_secs_f64(self.retry_max_s),
            timeout: Duration::from_secs_f64(self.timeout_s),
        }
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::field(
                key,
                format!("url `{}` is not http(s)://", self.url),
            ));
        }
        for (name, value) in [
            ("timeout_s", self.timeout_s),
            ("retry_base_s", self.retry_base_s),
            ("retry_max_s", self.retry_max_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::field(key, format!("{name} must be > 0")));
            }
        }
        Ok(())
    }
}

/// Single-answer grading or a pairwise comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A 1–10 rating per answer.
    #[default]
    Single,
    /// These answers against `against`'s, in both orders.
    Pairwise,
}

/// Settings of an MT-Bench run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtBenchConfig {
    /// The model answering: a Hugging Face folder or GGUF file.
    #[serde(default)]
    pub model: Option<String>,
    /// Or answers from an OpenAI-compatible server.
    #[serde(default)]
    pub answers_from: Option<EndpointConfig>,
    /// Or an answers file already written (FastChat's JSONL).
    #[serde(default)]
    pub answers: Option<String>,
    /// The name in the answer and judgment files (default: the step id or the model folder).
    #[serde(default)]
    pub model_id: Option<String>,
    /// Folder with `question.jsonl`, `judge_prompts.jsonl` and `reference_answer/`.
    pub data_dir: String,
    /// Reference answers file (default: `reference_answer/gpt-4.jsonl` under `data_dir`).
    #[serde(default)]
    pub reference_answers: Option<String>,
    /// Chat template: `checkpoint` (default), a built-in name or a .jinja file.
    #[serde(default)]
    pub template: Option<String>,
    /// System prompt put first in every conversation.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// The judge; without one, only answers are produced.
    #[serde(default)]
    pub judge: Option<EndpointConfig>,
    /// `single` (default) or `pairwise`.
    #[serde(default)]
    pub mode: Mode,
    /// Pairwise: the other model's answers file.
    #[serde(default)]
    pub against: Option<String>,
    /// Judgments per request; the score is the median, the spread is reported.
    #[serde(default = "one")]
    pub repeats: u32,
    /// The first N questions only.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Most new tokens per turn.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// One answer temperature for every category instead of FastChat's per-category table
    /// (0 = greedy everywhere, to compare engines token for token); absent: the table.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Seed of the sampled answers.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` (default), `tch-cpu` or `cuda:N`; any other spelling fails to parse.
    #[serde(default)]
    pub device: DeviceSpec,
    /// Compute dtype (default: the device's).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Prompts per generation batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl MtBenchConfig {
    /// Parses and checks a `with:` block.
    pub fn parse(with: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self = erebor_core::parse_with(with)?;
        config.check()?;
        Ok(config)
    }

    /// Checks combinations the types do not.
    pub fn check(&self) -> Result<(), ConfigError> {
        let sources = [
            self.model.is_some(),
            self.answers_from.is_some(),
            self.answers.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(ConfigError::field(
                "model",
                "give exactly one of model, answers_from and answers",
            ));
        }
        if let Some(judge) = &self.judge {
            judge.check("judge")?;
        }
        if let Some(from) = &self.answers_from {
            from.check("answers_from")?;
        }
        match (self.mode, &self.against, &self.judge) {
            (Mode::Pairwise, None, _) => {
                return Err(ConfigError::field(
                    "against",
                    "pairwise mode needs the other model's answers file",
                ));
            }
            (Mode::Single, Some(_), _) => {
                return Err(ConfigError::field(
                    "against",
                    "only pairwise mode compares against other answers",
                ));
            }
            (Mode::Pairwise, Some(_), None) => {
                return Err(ConfigError::field("judge", "pairwise mode needs a judge"));
            }
            _ => {}
        }
        for (key, value) in [
            ("repeats", self.repeats as usize),
            ("max_new_tokens", self.max_new_tokens),
            ("concurrency", self.concurrency),
            ("batch_size", self.batch_size),
            ("limit", self.limit.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(ConfigError::field(key, "must be greater than 0"));
            }
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(ConfigError::field(
                "temperature",
                format!("{t} is not a temperature: use a finite number >= 0 (0 = greedy)"),
            ));
        }
        if self.temperature.is_some() && self.answers.is_some() {
            return Err(ConfigError::field(
                "temperature",
                "answers from a file are not generated: drop temperature or answers",
            ));
        }
        if !self.device.is_compiled_in() {
            return Err(ConfigError::field(
                "device",
                format!("{} needs erebor built with --features tch", self.device),
            ));
        }
        Ok(())
    }

    /// The questions file.
    pub(crate) fn questions_path(&self, base: &Path) -> PathBuf {
        resolve_path(base, &self.data_dir).join("question.jsonl")
    }

    /// The judge prompts file.
    pub(crate) fn prompts_path(&self, base: &Path) -> PathBuf {
        resolve_path(base, &self.data_dir).join("judge_prompts.jsonl")
    }

    /// The reference answers file.
    pub(crate) fn references_path(&self, base: &Path) -> PathBuf {
        match &self.reference_answers {
            Some(path) => resolve_path(base, path),
            None => resolve_path(base, &self.data_dir).join("reference_answer/gpt-4.jsonl"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(extra: &serde_json::Value) -> serde_json::Value {
        let mut with = serde_json::json!({"model": "m", "data_dir": "d"});
        with.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        with
    }

    #[test]
    fn mt_bench_temperature_defaults_to_fastchats_table_and_takes_zero() {
        let config = MtBenchConfig::parse(&with(&serde_json::json!({}))).unwrap();
        assert_eq!(config.temperature, None);
        let config = MtBenchConfig::parse(&with(&serde_json::json!({"temperature": 0}))).unwrap();
        assert_eq!(config.temperature, Some(0.0));
    }

    #[test]
    fn mt_bench_temperature_must_be_non_negative_and_needs_generated_answers() {
        let err =
            MtBenchConfig::parse(&with(&serde_json::json!({"temperature": -0.5}))).unwrap_err();
        assert_eq!(err.path_string(), "temperature", "{err}");
        let from_file =
            serde_json::json!({"answers": "a.jsonl", "data_dir": "d", "temperature": 0});
        let err = MtBenchConfig::parse(&from_file).unwrap_err();
        assert_eq!(err.path_string(), "temperature", "{err}");
    }
}
