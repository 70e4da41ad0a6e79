//! `run` of the `preference` step.

use crate::batch::{PairExample, prepare_pairs};
use crate::config::{ModelInit, PreferenceConfig, TrainSettings};
use crate::preference::{CHOSEN_AFTER_EDIT, PairObjective, PairUnit, reference_logps};
use crate::ref_logps::{
    CacheOutcome, EREBOR_VERSION, REF_LOGPS_FORMAT_VERSION, REF_LOGPS_NUMERICS_VERSION, RefLogps,
    RefLogpsKey, RefLogpsRow, cached_ref_logps, fresh_lora_identity,
};
use crate::run_common::{
    dataset_error, finish, log_precision, loop_settings, open_dataset, resolve_model, run_step,
};
use crate::setup::{
    Runtime, StartModel, check_tokenizer, fingerprint, load_start_model, model_hash, runtime,
    with_lora,
};
use crate::{TrainError, memory_plan, trainer};
use erebor_core::content::hash_path;
use erebor_core::dataset::{DatasetKind, TokenisedPreference, read_tokenised_preference};
use erebor_core::{StepContext, StepFailure, StepOutputs};
use erebor_model::CausalLm;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Trains, saves and reports a `preference` step.
pub fn run(ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
    run_step(ctx, train)
}

struct Split {
    name: String,
    rows: Vec<TokenisedPreference>,
    pairs: Vec<PairExample>,
}

fn load_split(
    dir: &Path,
    name: &str,
    max_seq_len: usize,
    max_prompt_len: usize,
) -> Result<Split, TrainError> {
    let rows = read_tokenised_preference(dir, name).map_err(dataset_error(dir))?;
    let pairs =
        prepare_pairs(&rows, max_seq_len, max_prompt_len).map_err(|e| TrainError::Dataset {
            path: dir.join(format!("{name}.tokens.jsonl")),
            message: e.to_string(),
        })?;
    Ok(Split {
        name: name.to_owned(),
        rows,
        pairs,
    })
}

fn train(ctx: &StepContext<'_>, preference: &PreferenceConfig) -> Result<StepOutputs, TrainError> {
    let config = &preference.settings;
    let objective = preference.objective;
    let runtime = runtime(config)?;
    log_precision(&runtime);
    let data = load_data(ctx, preference)?;
    let reference = reference_pass(ctx, preference, &runtime, &data)?;
    let (units, eval_units) = pair_units(&data.splits, &reference.values, &reference.path)?;
    let total_steps = config.total_steps(units.len());
    let model_hash = model_hash(&data.model_dir, config.init, config.seed)?;
    let fingerprint = fingerprint(
        &ctx.with,
        &[&data.dataset_hash, &model_hash, &reference.reference_hash],
    );
    tracing::info!(
        pairs = units.len(),
        eval_pairs = eval_units.len(),
        total_steps,
        loss = objective.kind.as_str(),
        beta = objective.beta,
        lambda = objective.lambda,
        "preference data ready"
    );
    let mut pair_objective = PairObjective::new(objective, eval_units, config.batch_size);
    pair_objective.compute_dtype = runtime.compute_dtype;
    let settings = loop_settings(ctx, config, &runtime, total_steps, fingerprint);
    let start = match reference.policy {
        Some(start) => start,
        None => load_policy(&data.model_dir, config, &runtime)?,
    };
    let outcome = trainer::train(start.model, &units, &mut pair_objective, settings)?;
    let details = json!({
        "loss": objective.kind.as_str(),
        "beta": objective.beta,
        "lambda": objective.lambda,
        "pairs": units.len(),
        "max_seq_len": data.max_seq_len,
        "max_prompt_len": data.max_prompt_len,
        "ref_logps_cache": reference.cache_path,
        "ref_logps_reused": reference.cache_outcome == CacheOutcome::Reused,
        "eval": outcome.final_eval,
    });
    let mut outputs = finish(
        ctx,
        &runtime,
        &start.tokenizer,
        start.raw_config.as_ref(),
        &outcome,
        config,
        &details,
    )?
    .with_path("ref_logps", &reference.path);
    if let Some(accuracy) = outcome.final_metric("eval/rewards/accuracies") {
        outputs = outputs.with_metric("reward_accuracy", accuracy);
    }
    if let Some(after_edit) = outcome.final_metric(CHOSEN_AFTER_EDIT) {
        outputs = outputs.with_metric("chosen_after_edit", after_edit);
    }
    Ok(outputs)
}

/// The tokenised pairs of the training split (and the eval split), with what identifies them.
struct PreferenceData {
    model_dir: PathBuf,
    dataset_hash: String,
    max_seq_len: usize,
    max_prompt_len: usize,
    /// The training split first, then the eval split when there is one.
    splits: Vec<Split>,
}

/// Opens the dataset, checks its tokenizer against the model's, and loads the splits.
fn load_data(
    ctx: &StepContext<'_>,
    preference: &PreferenceConfig,
) -> Result<PreferenceData, TrainError> {
    let config = &preference.settings;
    let (dataset_dir, manifest) = open_dataset(ctx, config, DatasetKind::Preference)?;
    let model_dir = resolve_model(ctx, &config.model)?;
    let model_config = erebor_model::ModelConfig::from_dir(&model_dir)?;
    let tokenizer = erebor_model::Tokenizer::from_dir(&model_dir)?;
    check_tokenizer(&dataset_dir, &manifest, &tokenizer)?;
    let max_seq_len = memory_plan::effective_seq_len(config, &model_config);
    let max_prompt_len = preference.max_prompt_len.unwrap_or(max_seq_len / 2);
    let mut splits = vec![load_split(
        &dataset_dir,
        &config.split,
        max_seq_len,
        max_prompt_len,
    )?];
    if let Some(eval) = &config.eval_split {
        splits.push(load_split(&dataset_dir, eval, max_seq_len, max_prompt_len)?);
    }
    let dataset_hash = hash_path(&dataset_dir)
        .map_err(|e| TrainError::io(&dataset_dir, e.source))?
        .sha256;
    Ok(PreferenceData {
        model_dir,
        dataset_hash,
        max_seq_len,
        max_prompt_len,
        splits,
    })
}

/// The policy's starting weights; with LoRA, fresh adapters (zero `B`), so the adapted model
/// equals the base and, with the default reference, the pre-pass runs through the policy's own
/// forward.
fn load_policy(
    model_dir: &Path,
    config: &TrainSettings,
    runtime: &Runtime,
) -> Result<StartModel, TrainError> {
    let mut start = load_start_model(model_dir, config.init, config.seed, runtime)?;
    start.model = with_lora(start.model, config.lora.as_ref(), config.seed)?;
    Ok(start)
}

/// The reference pass's result: the log-probs (written to the step's folder), where they came
/// from, and the policy when the pass loaded it (the reference is the policy's start).
struct ReferencePass {
    values: RefLogps,
    path: PathBuf,
    cache_path: PathBuf,
    cache_outcome: CacheOutcome,
    reference_hash: String,
    policy: Option<StartModel>,
}

/// The reference model's log-probs of every pair, from the cache or computed.
fn reference_pass(
    ctx: &StepContext<'_>,
    preference: &PreferenceConfig,
    runtime: &Runtime,
    data: &PreferenceData,
) -> Result<ReferencePass, TrainError> {
    let config = &preference.settings;
    let (reference_dir, reference_init) = match &preference.reference {
        Some(path) => (resolve_model(ctx, path)?, ModelInit::Pretrained),
        None => (data.model_dir.clone(), config.init),
    };
    let reference_hash = model_hash(&reference_dir, reference_init, config.seed)?;
    let same_model = preference.reference.is_none();
    let key = ref_logps_key(config, runtime, data, &reference_hash, same_model);
    // The policy is loaded inside when the reference is the policy's start (and kept for
    // training); a distinct reference is loaded, used and dropped before the policy is loaded,
    // so the two are never in memory together.
    let mut policy = None;
    let score = |model: &CausalLm| {
        score_splits(
            model,
            &data.splits,
            &key,
            config.batch_size,
            runtime.compute_dtype,
            ctx,
        )
    };
    let (values, cache_path, cache_outcome) = cached_ref_logps(&ctx.cache_dir, &key, || {
        if same_model {
            let start = load_policy(&data.model_dir, config, runtime)?;
            let scored = score(&start.model);
            policy = Some(start);
            scored
        } else {
            // Loaded, used and dropped here: never in memory during training.
            let reference = load_start_model(&reference_dir, reference_init, config.seed, runtime)?;
            score(&reference.model)
        }
    })?;
    tracing::info!(outcome = ?cache_outcome, path = %cache_path.display(), "reference log-probs");
    let path = ctx.work_dir.join("ref_logps.json");
    std::fs::create_dir_all(&ctx.work_dir).map_err(|e| TrainError::io(&ctx.work_dir, e))?;
    values.write(&path)?;
    Ok(ReferencePass {
        values,
        path,
        cache_path,
        cache_outcome,
        reference_hash,
        policy,
    })
}

/// What the reference log-probs depend on: a cache entry is reused only when all of it matches.
fn ref_logps_key(
    config: &TrainSettings,
    runtime: &Runtime,
    data: &PreferenceData,
    reference_hash: &str,
    same_model: bool,
) -> RefLogpsKey {
    RefLogpsKey {
        reference_sha256: reference_hash.to_owned(),
        dataset_sha256: data.dataset_hash.clone(),
        splits: data.splits.iter().map(|s| s.name.clone()).collect(),
        max_seq_len: data.max_seq_len,
        max_prompt_len: data.max_prompt_len,
        precision: runtime.precision.to_string(),
        device_kind: match runtime.spec {
            erebor_model::DeviceSpec::Cuda(_) => "cuda".to_owned(),
            other => other.to_string(),
        },
        numerics_version: REF_LOGPS_NUMERICS_VERSION,
        erebor_version: EREBOR_VERSION.to_owned(),
        // With the policy's start as the reference, the pass runs through its fresh adapters.
        adapter: match (&config.lora, same_model) {
            (Some(lora), true) => Some(fresh_lora_identity(lora, config.seed)),
            _ => None,
        },
    }
}

/// Each split's pairs with their reference log-probs: (training units, eval units).
fn pair_units(
    splits: &[Split],
    values: &RefLogps,
    ref_path: &Path,
) -> Result<(Vec<PairUnit>, Vec<PairUnit>), TrainError> {
    let mut unit_splits = Vec::new();
    for split in splits {
        let ids: Vec<&str> = split.rows.iter().map(|r| r.id.as_str()).collect();
        let rows = values.rows_for(&split.name, &ids, ref_path)?;
        let units: Vec<PairUnit> = split
            .pairs
            .iter()
            .zip(rows)
            .map(|(pair, r)| PairUnit {
                pair: pair.clone(),
                reference_chosen: r.chosen,
                reference_rejected: r.rejected,
            })
            .collect();
        unit_splits.push(units);
    }
    let eval_units = if unit_splits.len() > 1 {
        unit_splits.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((unit_splits.pop().unwrap_or_default(), eval_units))
}

fn score_splits(
    model: &CausalLm,
    splits: &[Split],
    key: &RefLogpsKey,
    batch_size: usize,
    compute: Option<burn::tensor::DType>,
    ctx: &StepContext<'_>,
) -> Result<RefLogps, TrainError> {
    let mut out = BTreeMap::new();
    for split in splits {
        let scored = reference_logps(model, &split.pairs, batch_size, compute, ctx.progress)?;
        let rows = split
            .rows
            .iter()
            .zip(scored)
            .map(|(row, (chosen, rejected))| RefLogpsRow {
                id: row.id.clone(),
                chosen,
                rejected,
            })
            .collect();
        out.insert(split.name.clone(), rows);
    }
    Ok(RefLogps {
        format_version: REF_LOGPS_FORMAT_VERSION,
        key: key.clone(),
        splits: out,
    })
}
