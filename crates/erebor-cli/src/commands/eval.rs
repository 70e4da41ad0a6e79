//! `erebor eval MODEL --tasks ...`: evaluate a model outside any workflow, as people use
//! `lm_eval`. The results table goes to stdout; progress and logs to stderr; results and
//! samples files (lm-eval 0.4's formats) to `--output DIR/<model>/`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use erebor_core::ProgressReporter;
use erebor_eval::evaluator::specs::{TaskSpec, build_tasks};
use erebor_eval::evaluator::{EvalSettings, Hooks, JobOptions, LoadedModel, run_job};
use erebor_eval::output::{results_table, sanitize_model_name};
use erebor_eval::{EvalError, Harness, TaskOptions};
use erebor_model::DeviceSpec;
use erebor_model::device::parse_dtype;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::globals::Globals;
use crate::outcome::{BadInput, Outcome};

/// Arguments of `erebor eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct EvalArgs {
    /// The model: a Hugging Face checkpoint folder, a .gguf file, or `hf://models/OWNER/NAME[@REV]`
    /// from the `EREBOR_HF_MODELS` mirror.
    pub(crate) model: PathBuf,
    /// Comma-separated tasks: leaderboard names (`arc_challenge`, `arc_easy`, `hellaswag`,
    /// `mmlu`, `truthfulqa`, `winogrande`, `gsm8k`) or custom task files (`.yaml`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) tasks: Vec<String>,
    /// Few-shot examples (default: each task's own, e.g. 25 for `arc_challenge`).
    #[arg(long)]
    pub(crate) num_fewshot: Option<usize>,
    /// Documents per task, after the harness's shuffle.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Folder of `<task>_<split>.jsonl` files (laid out like ../shared/data/leaderboard), or
    /// `hf://datasets/OWNER/NAME[@REV][/DIR]` holding them.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// `cpu` (Burn flex), `tch-cpu` or `cuda:N` (LibTorch; build with --features tch).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: DeviceSpec,
    /// Compute dtype: f32, f16 or bf16 (default: f32 on CPU, bf16 on CUDA).
    #[arg(long)]
    pub(crate) dtype: Option<String>,
    /// Results and samples go to DIR/<model name>/ (default: <home>/eval).
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Whose semantics: b281b09 (the Open LLM Leaderboard v1's, default) or v0.4.
    #[arg(long, default_value = "b281b09")]
    pub(crate) harness: Harness,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch_size: usize,
    /// Tokens per forward pass (sequences × padded length).
    #[arg(long, default_value_t = 16_384)]
    pub(crate) max_batch_tokens: usize,
    /// JSONL file the GSM8K exemplars come from.
    #[arg(long)]
    pub(crate) gsm8k_exemplars: Option<PathBuf>,
    /// Few-shot sampler seed (default: the harness's, 42 for b281b09, 1234 for v0.4).
    #[arg(long)]
    pub(crate) fewshot_seed: Option<u64>,
    /// Context window (default: the model's).
    #[arg(long)]
    pub(crate) max_length: Option<usize>,
    /// Prepend BOS when tokenising (off, as lm-eval for Hugging Face models).
    #[arg(long)]
    pub(crate) add_bos: bool,
    /// Score every request on its own instead of computing a shared context once.
    #[arg(long)]
    pub(crate) no_share_contexts: bool,
    /// Score every document again instead of resuming from the cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Resume cache folder (default: <home>/cache/eval).
    #[arg(long)]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Hub cache where `hf://datasets/...` data resolves from, laid out
    /// `hf/datasets/OWNER/NAME/REV/PATH` (default: <home>/cache, the workflow steps' cache).
    #[arg(long)]
    pub(crate) hub_cache: Option<PathBuf>,
}

fn bad(error: EvalError) -> anyhow::Error {
    match error {
        EvalError::Io { .. } | EvalError::Cancelled { .. } | EvalError::Document { .. } => {
            anyhow::Error::new(error)
        }
        other => anyhow::Error::new(BadInput(other.to_string())),
    }
}

impl EvalArgs {
    /// Loads the model, evaluates, writes the files and prints the table.
    pub(crate) fn execute(self, globals: &Globals) -> anyhow::Result<Outcome> {
        let device = self.device;
        let dtype = match &self.dtype {
            Some(d) => Some(parse_dtype(d).map_err(|e| BadInput(e.to_string()))?),
            None => None,
        };
        let specs: Vec<TaskSpec> = self.tasks.iter().map(|t| TaskSpec::parse(t)).collect();
        let options = TaskOptions {
            data_dir: self.data_dir.clone().unwrap_or_default(),
            num_fewshot: self.num_fewshot,
            harness: self.harness,
            gsm8k_exemplars: self.gsm8k_exemplars.clone(),
            fewshot_seed: self.fewshot_seed,
            hub_cache: self
                .hub_cache
                .clone()
                .unwrap_or_else(|| globals.home().join("cache")),
        };
        let tasks = build_tasks(&specs, &options).map_err(bad)?;
        tracing::info!(model = %self.model.display(), "loading the model");
        let cache_root = (!self.no_cache).then(|| {
            self.cache_dir
                .clone()
                .unwrap_or_else(|| globals.home().join("cache").join("eval"))
        });
        let model_dir = resolve_model_arg(&self.model)?;
        let model =
            LoadedModel::load_with_hash_memo(&model_dir, device, dtype, cache_root.as_deref())
                .map_err(bad)?;
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| globals.home().join("eval"))
            .join(sanitize_model_name(&self.model.display().to_string()));
        let job = JobOptions {
            settings: EvalSettings {
                batch_size: self.batch_size.max(1),
                max_batch_tokens: self.max_batch_tokens.max(1),
                share_contexts: !self.no_share_contexts,
                add_bos: self.add_bos,
                max_length: self.max_length,
                limit: self.limit,
            },
            harness: self.harness,
            fewshot_seed: self.fewshot_seed,
            output_dir: output,
            cache_root,
        };
        let progress = BarProgress::new(globals.progress_bars());
        let hooks = Hooks {
            progress: &progress,
            cancel: None,
        };
        let out = run_job(&model, &tasks, &job, hooks).map_err(bad)?;
        progress.finish();
        for task in &out.report.tasks {
            eprintln!(
                "{}: {} documents scored, {} from the resume cache, {:.1}s",
                task.name,
                task.scored_docs(),
                task.cached_docs(),
                task.seconds
            );
        }
        eprintln!("results: {}", out.files.results.display());
        print!("{}", results_table(&out.report));
        Ok(Outcome::Success)
    }
}

/// Progress on stderr: one bar per task with documents/s and ETA.
struct BarProgress {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    fn new(enabled: bool) -> Self {
        BarProgress {
            enabled,
            bar: Mutex::new(None),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish();
        }
    }
}

impl ProgressReporter for BarProgress {
    fn start_phase(&self, phase: &str, total: Option<u64>) {
        let mut slot = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = slot.take() {
            old.finish();
        }
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:<24} {wide_bar} {pos}/{len} docs {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(phase.to_owned());
        bar.enable_steady_tick(Duration::from_millis(250));
        *slot = Some(bar);
    }

    fn set_position(&self, position: u64) {
        if let Some(bar) = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            bar.set_position(position);
        }
    }
}

/// The model folder or file a command's MODEL argument names: a local path (relative to the
/// current directory), or `hf://models/OWNER/NAME[@REV]` from the `EREBOR_HF_MODELS` mirror
/// (docs/recipes.md); a reference that does not resolve is bad input naming it, the folder
/// looked at and how to fill it. `erebor eval` and `erebor mt-bench` take MODEL through this.
pub(crate) fn resolve_model_arg(model: &Path) -> Result<PathBuf, BadInput> {
    match model.to_str() {
        Some(spec) => erebor_core::hub_models::resolve_model(Path::new(""), spec)
            .map_err(|e| BadInput(e.to_string())),
        None => Ok(model.to_owned()),
    }
}
