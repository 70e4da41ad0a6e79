//! Pieces both step kinds' `run` share: the entry with its memory check, the dataset, the loop
//! settings, the outputs.

use crate::TrainError;
use crate::checkpoint::checkpoint_name;
use crate::config::{KindConfig, TrainKind, TrainSettings};
use crate::memory_plan;
use crate::optim::AdamW;
use crate::setup::{Runtime, lora_config, save_model};
use crate::trainer::{LoopOutcome, LoopSettings};
use burn::module::Module;
use erebor_core::dataset::{DatasetError, DatasetKind, DatasetManifest};
use erebor_core::{StepContext, StepFailure, StepOutputs};
use erebor_model::{ModelConfig, Tokenizer};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The `run` of a training step: parses the kind's config, checks the memory estimate against
/// the model's config before anything is loaded, then trains.
pub(crate) fn run_step<C: KindConfig>(
    ctx: &StepContext<'_>,
    train: impl FnOnce(&StepContext<'_>, &C) -> Result<StepOutputs, TrainError>,
) -> Result<StepOutputs, StepFailure> {
    let config = C::parse(&ctx.with)?;
    let settings = config.settings();
    let model_dir = resolve_model(ctx, &settings.model)?;
    let model_config = ModelConfig::from_dir(&model_dir)
        .map_err(|e| StepFailure::bad_input(format!("model: {e}")))?;
    check_memory(settings, C::KIND, &model_config)?;
    Ok(train(ctx, &config)?)
}

/// The step's model folder: a local path, or `hf://models/OWNER/NAME[@REV]` from the model
/// mirror (`EREBOR_HF_MODELS`); a reference not in the mirror is a configuration error naming it.
pub(crate) fn resolve_model(ctx: &StepContext<'_>, spec: &str) -> Result<PathBuf, TrainError> {
    ctx.resolve_model(spec)
        .map_err(|e| TrainError::Config(e.to_string()))
}

/// The step's dataset folder and manifest, refused when it holds the other kind of rows.
pub(crate) fn open_dataset(
    ctx: &StepContext<'_>,
    config: &TrainSettings,
    kind: DatasetKind,
) -> Result<(PathBuf, DatasetManifest), TrainError> {
    let dir = ctx.resolve(&config.dataset);
    let manifest = DatasetManifest::read(&dir).map_err(dataset_error(&dir))?;
    manifest
        .expect_kind(&dir, kind)
        .map_err(dataset_error(&dir))?;
    Ok((dir, manifest))
}

/// Maps a dataset-format error to a training error naming the folder.
pub(crate) fn dataset_error(dir: &Path) -> impl Fn(DatasetError) -> TrainError + '_ {
    move |e| TrainError::Dataset {
        path: dir.to_owned(),
        message: e.to_string(),
    }
}

/// Logs the precision policy in force.
pub(crate) fn log_precision(runtime: &Runtime) {
    tracing::info!(
        precision = %runtime.precision,
        policy = runtime.precision.describe(),
        device = %runtime.spec,
        "precision policy"
    );
}

/// Refuses to start on CUDA when the estimate does not fit the budget; warns on CPU.
pub(crate) fn check_memory(
    config: &TrainSettings,
    kind: TrainKind,
    model: &ModelConfig,
) -> Result<(), StepFailure> {
    let footprint = memory_plan::footprint(config, kind, model);
    let estimate = footprint.estimate(model);
    let (budget, source) = memory_plan::budget(config);
    let line = memory_plan::describe(&footprint, &estimate, budget, &source);
    if memory_plan::fits(&estimate, budget) {
        tracing::info!("{line}");
        Ok(())
    } else if config.device.is_cuda() {
        Err(StepFailure::out_of_memory(format!(
            "{line}; not starting (set memory_budget_gb to override)"
        )))
    } else {
        tracing::warn!("{line}");
        Ok(())
    }
}

/// Loop settings from the config, the context and the runtime.
pub(crate) fn loop_settings<'a>(
    ctx: &'a StepContext<'a>,
    config: &TrainSettings,
    runtime: &Runtime,
    total_steps: u64,
    fingerprint: String,
) -> LoopSettings<'a> {
    LoopSettings {
        batch_size: config.batch_size,
        grad_accum: config.grad_accum,
        total_steps,
        schedule: config.schedule(total_steps),
        optimizer: AdamW::new(config.adamw),
        max_grad_norm: config.max_grad_norm,
        seed: config.seed,
        checkpoint_every: config.checkpoint_every,
        keep_checkpoints: config.keep_checkpoints,
        eval_every: config.eval_every,
        checkpoint_dir: ctx.checkpoint_dir(),
        fingerprint,
        precision: runtime.precision.to_string(),
        device: runtime.device.clone(),
        metrics: ctx.metrics,
        progress: ctx.progress,
        cancel: ctx.cancel.clone(),
    }
}

/// Saves the model, writes `training.json` and builds the outputs shared by both kinds.
pub(crate) fn finish(
    ctx: &StepContext<'_>,
    runtime: &Runtime,
    tokenizer: &Tokenizer,
    raw_config: Option<&serde_json::Value>,
    outcome: &LoopOutcome,
    config: &TrainSettings,
    extra: &serde_json::Value,
) -> Result<StepOutputs, TrainError> {
    let lora = config.lora.as_ref();
    let config_model = config.model.clone();
    let mut adapter_dir = None;
    let model_dir = match lora {
        Some(lora) => {
            let dir = ctx.work_dir.join("adapter");
            let source = resolve_model(ctx, &config_model)?;
            erebor_model::lora::save_adapter(
                &outcome.model.valid(),
                &lora_config(lora),
                &dir,
                Some(&source.display().to_string()),
            )?;
            adapter_dir = Some(dir);
            let merged = erebor_model::lora::merge(outcome.model.valid());
            save_model(&merged, tokenizer, raw_config, &ctx.work_dir.join("model"))?
        }
        None => save_model(
            &outcome.model,
            tokenizer,
            raw_config,
            &ctx.work_dir.join("model"),
        )?,
    };
    let report = json!({
        "precision": runtime.precision.to_string(),
        "precision_policy": runtime.precision.describe(),
        "device": runtime.spec.to_string(),
        "steps": outcome.steps,
        "final_loss": outcome.final_loss,
        "resumed_from_step": outcome.resumed_from,
        "checkpoint": checkpoint_name(outcome.steps),
        "lora": lora,
        "gradient_checkpointing": config.gradient_checkpointing,
        "details": extra,
    });
    let report_path = ctx.work_dir.join("training.json");
    let text = serde_json::to_vec_pretty(&report).map_err(|e| TrainError::Checkpoint {
        path: report_path.clone(),
        message: e.to_string(),
    })?;
    crate::checkpoint::write_synced(&report_path, &text)?;
    tracing::info!(
        steps = outcome.steps,
        final_loss = outcome.final_loss,
        precision = %runtime.precision,
        model = %model_dir.display(),
        "training finished"
    );
    let outputs = StepOutputs::new();
    let outputs = match &adapter_dir {
        Some(dir) => outputs.with_path("adapter", dir),
        None => outputs,
    };
    Ok(outputs
        .with_path("model", &model_dir)
        .with_path("checkpoint", &outcome.checkpoint)
        .with_path("report", &report_path)
        .with_metric("final_loss", outcome.final_loss)
        .with_metric("steps", outcome.steps as f64)
        .with_text("precision", runtime.precision.to_string()))
}
