//! One evaluation from start to files, shared by `erebor eval` and the `eval` step kind: load
//! the model (and hash it for the resume cache), evaluate, write results and samples.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use erebor_model::burn::tensor::DType;
use erebor_model::{Checkpoint, DeviceSpec, Tokenizer};

use super::loglikelihood::window;
use super::{EvalModel, EvalReport, EvalSettings, Evaluator, Hooks};
use crate::cache::ResumeCache;
use crate::error::{EvalError, Result};
use crate::hash_memo::weights_hash_cached;
use crate::output::{OutputFiles, RunInfo, date_id, write_outputs};
use crate::task::{Harness, Task};

/// A model loaded for evaluation.
pub struct LoadedModel {
    /// The checkpoint (weights on the device).
    pub checkpoint: Checkpoint,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The path it was loaded from.
    pub path: PathBuf,
    /// sha256 of its weights, config and tokenizer files.
    pub weights_sha256: String,
    /// Compute dtype, lower case (`f32`, `bf16`).
    pub dtype: String,
    /// The device, as given (`cpu`, `cuda:0`).
    pub device: String,
}

impl LoadedModel {
    /// Loads `path` (a Hugging Face folder or a GGUF file) on `device` in `dtype` (default:
    /// the device's), and hashes its files.
    pub fn load(path: &Path, device: DeviceSpec, dtype: Option<DType>) -> Result<Self> {
        Self::load_with_hash_memo(path, device, dtype, None)
    }

    /// [`Self::load`], with the weights hash remembered in `cache_root` (the resume cache's
    /// root, [`crate::hash_memo`]): files unchanged since the last run are not hashed again.
    pub fn load_with_hash_memo(
        path: &Path,
        device: DeviceSpec,
        dtype: Option<DType>,
        cache_root: Option<&Path>,
    ) -> Result<Self> {
        let dtype = dtype.unwrap_or_else(|| device.default_dtype());
        let checkpoint = Checkpoint::load(path, &device.device()?, dtype)?;
        let tokenizer = checkpoint
            .tokenizer
            .clone()
            .ok_or_else(|| EvalError::Task {
                task: path.display().to_string(),
                message: "the model has no tokenizer.json beside its weights".into(),
            })?;
        Ok(LoadedModel {
            weights_sha256: weights_hash_cached(path, cache_root)?,
            checkpoint,
            tokenizer,
            path: path.to_owned(),
            dtype: format!("{dtype:?}").to_lowercase(),
            device: device.to_string(),
        })
    }

    /// The model and tokenizer, for an [`Evaluator`].
    pub(crate) fn eval_model(&self) -> EvalModel<'_> {
        EvalModel {
            model: &self.checkpoint.model,
            tokenizer: &self.tokenizer,
        }
    }
}

/// How to run and where to write.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Batching and tokenisation.
    pub settings: EvalSettings,
    /// Whose semantics the tasks follow (recorded in the results).
    pub harness: Harness,
    /// The few-shot seed, when set explicitly (recorded in the results).
    pub fewshot_seed: Option<u64>,
    /// Folder the results and samples files go to.
    pub output_dir: PathBuf,
    /// Root of the resume cache; `None` scores everything again.
    pub cache_root: Option<PathBuf>,
}

/// What a job produced.
pub struct JobOutput {
    /// Scores, documents and token counts.
    pub report: EvalReport,
    /// The files written.
    pub files: OutputFiles,
    /// What defines the numbers, as written in the results.
    pub info: RunInfo,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Evaluates `tasks` on `model` and writes the results and samples files.
pub fn run_job(
    model: &LoadedModel,
    tasks: &[Box<dyn Task>],
    options: &JobOptions,
    hooks: Hooks<'_>,
) -> Result<JobOutput> {
    let start_time = unix_now();
    let date = date_id(chrono::Local::now());
    let cache = options
        .cache_root
        .as_ref()
        .map(|root| ResumeCache::new(root, &model.weights_sha256, &model.dtype));
    let mut evaluator = Evaluator::new(model.eval_model(), options.settings.clone(), hooks);
    if let Some(cache) = &cache {
        evaluator = evaluator.with_cache(cache);
    }
    let report = evaluator.evaluate(tasks)?;
    let info = RunInfo {
        model: model.path.display().to_string(),
        model_sha256: model.weights_sha256.clone(),
        model_parameters: model.checkpoint.model.config().num_parameters(),
        dtype: model.dtype.clone(),
        device: model.device.clone(),
        harness: options.harness,
        fewshot_seed: options.fewshot_seed,
        settings: options.settings.clone(),
        max_length: window(model.eval_model(), &options.settings),
        cache_dir: cache.as_ref().map(|c| c.dir().to_owned()),
        start_time,
        end_time: unix_now(),
        date_id: date,
    };
    let files = write_outputs(&report, &info, &options.output_dir)?;
    Ok(JobOutput {
        report,
        files,
        info,
    })
}
