//! `run` of the `sft` step.

use crate::batch::PackedRow;
use crate::config::SftConfig;
use crate::run_common::{
    dataset_error, finish, log_precision, loop_settings, open_dataset, resolve_model, run_step,
};
use crate::setup::{
    check_tokenizer, fingerprint, load_start_model, model_hash, runtime, with_lora,
};
use crate::sft::{SftObjective, sft_units};
use crate::{TrainError, memory_plan, trainer};
use erebor_core::content::hash_path;
use erebor_core::dataset::{DatasetKind, read_tokenised_sft};
use erebor_core::{StepContext, StepFailure, StepOutputs};
use serde_json::json;
use std::path::Path;

/// Trains, saves and reports an `sft` step.
pub fn run(ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
    run_step(ctx, train)
}

/// The rows of `split` in the dataset folder, as training units (truncated, packed when
/// `packing`): how many rows were read, the units, and how many rows were dropped.
fn split_units(
    dataset_dir: &Path,
    split: &str,
    max_seq_len: usize,
    packing: bool,
) -> Result<(usize, Vec<PackedRow>, usize), TrainError> {
    let rows = read_tokenised_sft(dataset_dir, split).map_err(dataset_error(dataset_dir))?;
    let (units, dropped) =
        sft_units(&rows, max_seq_len, packing).map_err(|e| TrainError::Dataset {
            path: dataset_dir.join(format!("{split}.tokens.jsonl")),
            message: e.to_string(),
        })?;
    Ok((rows.len(), units, dropped))
}

fn train(ctx: &StepContext<'_>, sft: &SftConfig) -> Result<StepOutputs, TrainError> {
    let config = &sft.settings;
    let runtime = runtime(config)?;
    log_precision(&runtime);
    let (dataset_dir, manifest) = open_dataset(ctx, config, DatasetKind::Sft)?;
    let model_dir = resolve_model(ctx, &config.model)?;
    let mut start = load_start_model(&model_dir, config.init, config.seed, &runtime)?;
    start.model = with_lora(start.model, config.lora.as_ref(), config.seed)?;
    check_tokenizer(&dataset_dir, &manifest, &start.tokenizer)?;
    let max_seq_len = memory_plan::effective_seq_len(config, start.model.config());

    let (rows, units, dropped) =
        split_units(&dataset_dir, &config.split, max_seq_len, sft.packing)?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            max_seq_len,
            "rows without a target token after truncation were dropped"
        );
    }
    let eval_rows = match &config.eval_split {
        Some(split) => split_units(&dataset_dir, split, max_seq_len, sft.packing)?.1,
        None => Vec::new(),
    };
    let total_steps = config.total_steps(units.len());
    let dataset_hash = hash_path(&dataset_dir)
        .map_err(|e| TrainError::io(&dataset_dir, e.source))?
        .sha256;
    let model_hash = model_hash(&model_dir, config.init, config.seed)?;
    let fingerprint = fingerprint(&ctx.with, &[&dataset_hash, &model_hash]);
    tracing::info!(
        rows,
        units = units.len(),
        packing = sft.packing,
        total_steps,
        max_seq_len,
        "sft data ready"
    );

    let mut objective = SftObjective {
        packing: sft.packing,
        eval_rows,
        eval_batch_size: config.batch_size,
        compute_dtype: runtime.compute_dtype,
    };
    let settings = loop_settings(ctx, config, &runtime, total_steps, fingerprint);
    let crate::setup::StartModel {
        model,
        tokenizer,
        raw_config,
    } = start;
    let outcome = trainer::train(model, &units, &mut objective, settings)?;
    let eval_loss = outcome.final_metric("eval/loss");
    let details = json!({
        "rows": rows,
        "dropped_rows": dropped,
        "units": units.len(),
        "packing": sft.packing,
        "max_seq_len": max_seq_len,
        "eval": outcome.final_eval,
    });
    let mut outputs = finish(
        ctx,
        &runtime,
        &tokenizer,
        raw_config.as_ref(),
        &outcome,
        config,
        &details,
    )?;
    if let Some(loss) = eval_loss {
        outputs = outputs.with_metric("eval_loss", loss);
    }
    Ok(outputs)
}
