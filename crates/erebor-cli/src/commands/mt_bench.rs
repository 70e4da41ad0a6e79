//! `erebor mt-bench MODEL`: MT-Bench outside any workflow, as people run FastChat's
//! `gen_model_answer.py`, `gen_judgment.py` and `show_result.py`: answers, judgments (cached in the
//! run store), and the scores on stdout. Files go to `--output DIR/<model_id>/`.

use std::path::{Path, PathBuf};

use erebor_core::{MemorySink, NullProgress, StepEvent};
use erebor_eval::mt_bench::{
    EndpointConfig, Mode, MtBenchConfig, MtBenchError, RunContext, RunOutcome, record_metrics, run,
};

use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};
use crate::step_kinds::mt_bench::StoreProvider;
use erebor_model::DeviceSpec;

/// Arguments of `erebor mt-bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct MtBenchArgs {
    /// The model: a Hugging Face checkpoint folder, a .gguf file, or
    /// `hf://models/OWNER/NAME[@REV]` from the `EREBOR_HF_MODELS` mirror (or use --answers /
    /// --answers-from-url).
    pub(crate) model: Option<PathBuf>,
    /// Folder with `question.jsonl`, `judge_prompts.jsonl` and `reference_answer/`.
    #[arg(long)]
    pub(crate) data_dir: PathBuf,
    /// Judge an answers file already written (FastChat's answer JSONL) instead of a model.
    #[arg(long)]
    pub(crate) answers: Option<PathBuf>,
    /// Ask this OpenAI-compatible server for the answers instead of a local model.
    #[arg(long)]
    pub(crate) answers_from_url: Option<String>,
    /// The `model` of the answer requests.
    #[arg(long, default_value = "gpt-3.5-turbo")]
    pub(crate) answers_from_model: String,
    /// The judge's chat-completions URL (base `…/v1` or full); without it only answers are made.
    #[arg(long)]
    pub(crate) judge_url: Option<String>,
    /// The judge model.
    #[arg(long, default_value = "gpt-4")]
    pub(crate) judge_model: String,
    /// Environment variable holding the API key (never stored or logged).
    #[arg(long)]
    pub(crate) api_key_env: Option<String>,
    /// Seconds allowed per request.
    #[arg(long, default_value_t = 180.0)]
    pub(crate) timeout_s: f64,
    /// `single` (a 1-10 rating per answer) or `pairwise` (against --against).
    #[arg(long, default_value = "single")]
    pub(crate) mode: String,
    /// Pairwise: the other model's answers file.
    #[arg(long)]
    pub(crate) against: Option<PathBuf>,
    /// Judgments per request (median and spread reported).
    #[arg(long, default_value_t = 1)]
    pub(crate) repeats: u32,
    /// The first N questions.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Most new tokens per turn.
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_new_tokens: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Chat template: checkpoint (default), a built-in name or a .jinja file.
    #[arg(long)]
    pub(crate) template: Option<String>,
    /// System prompt put first in every conversation.
    #[arg(long)]
    pub(crate) system_prompt: Option<String>,
    /// Name in the answer and judgment files (default: the model folder's name).
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// One answer temperature for every category instead of FastChat's per-category table
    /// (writing/roleplay 0.7, stem/humanities 0.1, the rest 0); `--temperature 0` answers
    /// everything greedily, to compare engines token for token.
    #[arg(long)]
    pub(crate) temperature: Option<f32>,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// `cpu`, `tch-cpu` or `cuda:N` (LibTorch; build with --features tch).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: DeviceSpec,
    /// Compute dtype.
    #[arg(long)]
    pub(crate) dtype: Option<String>,
    /// Prompts per generation batch.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch_size: usize,
    /// Output folder (default: `<home>/mt_bench`).
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
}

fn endpoint(url: String, model: String, key: Option<String>, timeout_s: f64) -> EndpointConfig {
    EndpointConfig {
        url,
        model,
        api_key_env: key,
        timeout_s,
        max_retries: 6,
        retry_base_s: 2.0,
        retry_max_s: 60.0,
    }
}

impl MtBenchArgs {
    /// The settings, with `model` the resolved MODEL argument.
    fn config(&self, model: Option<&Path>) -> anyhow::Result<MtBenchConfig> {
        let mode = match self.mode.as_str() {
            "single" => Mode::Single,
            "pairwise" => Mode::Pairwise,
            other => return Err(BadInput(format!("--mode {other}: use single or pairwise")).into()),
        };
        let path = |p: &PathBuf| p.display().to_string();
        let config = MtBenchConfig {
            model: model.map(|m| m.display().to_string()),
            answers_from: self.answers_from_url.clone().map(|url| {
                endpoint(
                    url,
                    self.answers_from_model.clone(),
                    self.api_key_env.clone(),
                    self.timeout_s,
                )
            }),
            answers: self.answers.as_ref().map(path),
            model_id: self.model_id.clone(),
            data_dir: path(&self.data_dir),
            reference_answers: None,
            template: self.template.clone(),
            system_prompt: self.system_prompt.clone(),
            judge: self.judge_url.clone().map(|url| {
                endpoint(
                    url,
                    self.judge_model.clone(),
                    self.api_key_env.clone(),
                    self.timeout_s,
                )
            }),
            mode,
            against: self.against.as_ref().map(path),
            repeats: self.repeats,
            limit: self.limit,
            max_new_tokens: self.max_new_tokens,
            concurrency: self.concurrency,
            temperature: self.temperature,
            seed: self.seed,
            device: self.device,
            dtype: self.dtype.clone(),
            batch_size: self.batch_size,
        };
        config.check().map_err(|e| BadInput(format!("--{e}")))?;
        Ok(config)
    }

    /// Answers, judges, writes the files and prints the scores.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let model = self
            .model
            .as_deref()
            .map(crate::commands::eval::resolve_model_arg)
            .transpose()?;
        let config = self.config(model.as_deref())?;
        let default_id = model
            .as_deref()
            .or(self.answers.as_deref())
            .and_then(default_model_id)
            .map_or_else(
                || {
                    config
                        .answers_from
                        .as_ref()
                        .map_or("model".into(), |a| a.model.clone())
                },
                |s| s.to_string_lossy().into_owned(),
            );
        let model_id = config.model_id.clone().unwrap_or(default_id.clone());
        let work_dir = self
            .output
            .clone()
            .unwrap_or_else(|| globals.home().join("mt_bench"))
            .join(&model_id);
        let provider = StoreProvider::Url(globals.db_url());
        let cwd = std::env::current_dir()?;
        let cancel = erebor_core::CancelToken::new();
        erebor_engine::step_process::cancel_on_signals(cancel.clone())?;
        let ctx = RunContext {
            base_dir: &cwd,
            work_dir: &work_dir,
            default_model_id: default_id,
            provider: &provider,
            progress: &NullProgress,
            cancel: &cancel,
        };
        let outcome = run(&config, &ctx).map_err(|e| match e {
            MtBenchError::Endpoint { .. }
            | MtBenchError::Cache(_)
            | MtBenchError::Io { .. }
            | MtBenchError::HttpClient(_)
            | MtBenchError::JudgeTask(_)
            | MtBenchError::JudgeTaskLost
            | MtBenchError::Cancelled(_) => anyhow::Error::new(e),
            other => BadInput(other.to_string()).into(),
        })?;
        print_summary(&outcome);
        Ok(Outcome::Success)
    }
}

/// The name a model or answers file goes by when no `--model-id` is given: a folder's name
/// (`hf://models/abacusai/Smaug-72B-v0.1` is `Smaug-72B-v0.1`, its mirror folder's name), a
/// file's name without its extension (`m.gguf` is `m`).
fn default_model_id(path: &Path) -> Option<&std::ffi::OsStr> {
    if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    }
}

/// The files on stderr, the metrics as a table on stdout.
fn print_summary(outcome: &RunOutcome) {
    eprintln!("answers: {}", outcome.answers_file.display());
    if let Some(file) = &outcome.judgments_file {
        eprintln!(
            "judgments: {} ({} asked, {} from the cache)",
            file.display(),
            outcome.judgments,
            outcome.from_cache
        );
    }
    let sink = MemorySink::new();
    record_metrics(outcome, &sink);
    let points: Vec<(String, u64, f64)> = sink
        .events()
        .into_iter()
        .filter_map(|event| match event {
            StepEvent::Metric { key, index, value } => Some((key, index, value)),
            StepEvent::Progress { .. } => None,
        })
        .collect();
    let width = points
        .iter()
        .map(|p| p.0.len() + 4)
        .max()
        .unwrap_or(6)
        .max(6);
    println!("{:<width$}  value", "metric");
    for (key, index, value) in points {
        let key = if key == "mt_bench/repeat_score" {
            format!("{key}[{index}]")
        } else {
            key
        };
        println!("{key:<width$}  {value:.4}");
    }
}
