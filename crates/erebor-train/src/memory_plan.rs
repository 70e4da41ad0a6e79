//! The memory estimate `erebor plan` shows under a training step, and the same check at run
//! time before anything is loaded. The estimate itself is erebor-model's
//! [`erebor_model::estimate_memory`]; this module adds the training policy on top: bytes per
//! element from the [`Precision`] policy, `AdamW`'s two moments, the rows a step's batch puts
//! through the model, the budget and its 10% headroom, and advice when a run does not fit.

use crate::config::{TrainKind, TrainSettings};
use crate::precision::Precision;
use crate::setup::lora_config;
use erebor_model::lora::adapter_parameter_count;
use erebor_model::memory::{TrainingAttention, estimate_memory_with};
use erebor_model::{MemoryEstimate, MemoryPlan, ModelConfig, Trainable};
use std::path::Path;

/// Default context used when `max_seq_len` is not set.
pub(crate) const DEFAULT_MAX_SEQ_LEN: usize = 2048;

/// Share of the budget an estimate may use (erebor-model's, shared with evaluation steps).
pub use erebor_model::memory::budget::HEADROOM;

/// Sequence length a step uses: `max_seq_len`, else the model's context capped at 2048.
pub(crate) fn effective_seq_len(config: &TrainSettings, model: &ModelConfig) -> usize {
    config
        .max_seq_len
        .unwrap_or_else(|| model.max_position_embeddings.min(DEFAULT_MAX_SEQ_LEN))
}

/// One forward/backward pass of a step as the estimator sees it, with the policy behind it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepFootprint {
    /// Parameters of the model.
    pub parameters: u64,
    /// Precision policy.
    pub precision: Precision,
    /// LoRA rank, or `None` for full fine-tuning.
    pub lora_rank: Option<usize>,
    /// What erebor-model estimates.
    pub plan: MemoryPlan,
    /// The attention path of the step's device (fused on LibTorch, composed on flex).
    pub attention: TrainingAttention,
}

impl StepFootprint {
    /// The estimate of erebor-model for this pass.
    pub(crate) fn estimate(&self, model: &ModelConfig) -> MemoryEstimate {
        estimate_memory_with(model, &self.plan, self.attention)
    }
}

/// The footprint of one forward/backward pass of a step.
pub(crate) fn footprint(
    config: &TrainSettings,
    kind: TrainKind,
    model: &ModelConfig,
) -> StepFootprint {
    let precision = config.precision.resolve(config.device);
    let rows = match kind {
        TrainKind::Sft => config.batch_size,
        TrainKind::Preference => 2 * config.batch_size,
    };
    let trainable = match &config.lora {
        Some(lora) => Trainable::Adapters(adapter_parameter_count(model, &lora_config(lora))),
        None => Trainable::Full,
    };
    StepFootprint {
        parameters: model.num_parameters() as u64,
        precision,
        lora_rank: config.lora.as_ref().map(|lora| lora.rank),
        plan: step_plan(
            precision,
            trainable,
            rows,
            effective_seq_len(config, model),
            config.gradient_checkpointing,
        ),
        attention: TrainingAttention::on_device(config.device),
    }
}

/// What erebor-model estimates for one forward/backward pass of `rows` sequences of `seq_len`
/// tokens under `precision` (`AdamW`'s two moments per trained parameter): the plan `erebor
/// plan` shows (with [`TrainingAttention::on_device`]), and the one the benchmarks hold against
/// measured peaks.
pub fn step_plan(
    precision: Precision,
    trainable: Trainable,
    rows: usize,
    seq_len: usize,
    gradient_checkpointing: bool,
) -> MemoryPlan {
    MemoryPlan {
        weight_bytes: precision.compute_bytes(),
        compute_bytes: precision.compute_bytes(),
        master_bytes: precision.master_bytes(),
        optimizer_bytes: 2 * precision.moment_bytes(),
        trainable,
        batch_size: rows,
        seq_len,
        gradient_checkpointing,
    }
}

/// Whether `estimate` fits `budget` bytes with [`HEADROOM`].
pub fn fits(estimate: &MemoryEstimate, budget: f64) -> bool {
    estimate.total() as f64 <= HEADROOM * budget
}

/// The memory budget in bytes and where it comes from.
pub(crate) fn budget(config: &TrainSettings) -> (f64, String) {
    if let Some(gb) = config.memory_budget_gb {
        return (gb * 1e9, format!("the configured {gb} GB"));
    }
    erebor_model::memory::budget::device_budget(config.device)
}

/// The memory check of a step whose model config can be read before it runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MemoryCheck {
    /// The `plan` line ([`describe`]).
    pub line: String,
    /// Bytes the estimate needs.
    pub needed: u64,
    /// Bytes of the budget, and where they come from.
    pub budget: (f64, String),
    /// Whether it fits with [`HEADROOM`].
    pub fits: bool,
}

/// The check against the memory the step's device has; `None` when the model config is not
/// there yet (an upstream step's output).
pub(crate) fn memory_check(
    config: &TrainSettings,
    kind: TrainKind,
    model_dir: &Path,
) -> Option<MemoryCheck> {
    let model = ModelConfig::from_dir(model_dir).ok()?;
    let footprint = footprint(config, kind, &model);
    let estimate = footprint.estimate(&model);
    let (bytes, source) = budget(config);
    Some(MemoryCheck {
        line: describe(&footprint, &estimate, bytes, &source),
        needed: estimate.total(),
        fits: fits(&estimate, bytes),
        budget: (bytes, source),
    })
}

/// The estimate and whether it fits, as `plan` lines.
pub(crate) fn memory_notes(
    config: &TrainSettings,
    kind: TrainKind,
    model_dir: &Path,
) -> Vec<String> {
    match memory_check(config, kind, model_dir) {
        Some(check) => vec![check.line],
        None => vec![format!(
            "memory: estimated when the step starts (no model config at `{}` yet)",
            config.model
        )],
    }
}

/// Why `plan` and `run` refuse the step: the memory it needs against the memory it sees.
pub(crate) fn memory_refusal(
    config: &TrainSettings,
    kind: TrainKind,
    model_dir: &Path,
) -> Option<String> {
    let check = memory_check(config, kind, model_dir).filter(|c| !c.fits)?;
    let (bytes, source) = &check.budget;
    Some(format!(
        "needs {:.1} GB of memory, sees {source} ({:.1} GB usable with 10% headroom) on {}: \
         cannot train {} here (set memory_budget_gb to override)",
        check.needed as f64 / 1e9,
        HEADROOM * bytes / 1e9,
        config.device,
        config.model,
    ))
}

/// One line: mode, estimate, verdict (with advice when it does not fit).
pub(crate) fn describe(
    footprint: &StepFootprint,
    estimate: &MemoryEstimate,
    budget: f64,
    source: &str,
) -> String {
    let mode = match footprint.lora_rank {
        Some(rank) => format!("LoRA r={rank}"),
        None => "full fine-tune".to_owned(),
    };
    let checkpointing = if footprint.plan.gradient_checkpointing {
        ", gradient checkpointing"
    } else {
        ""
    };
    let parameters = footprint.parameters as f64;
    let size = if parameters >= 1e9 {
        format!("{:.2}B", parameters / 1e9)
    } else {
        format!("{:.2}M", parameters / 1e6)
    };
    let head = format!(
        "memory ({size} params, {mode}, {}{checkpointing}, {} rows x {} tokens): {estimate}",
        footprint.precision, footprint.plan.batch_size, footprint.plan.seq_len,
    );
    if fits(estimate, budget) {
        format!("{head}; fits {source}")
    } else {
        let advice = if footprint.lora_rank.is_none() {
            "use `lora:` with `gradient_checkpointing: true`, or a bigger device"
        } else if !footprint.plan.gradient_checkpointing {
            "set `gradient_checkpointing: true` or lower batch_size / max_seq_len"
        } else {
            "lower batch_size / max_seq_len, or use a bigger device"
        };
        format!("{head}; does NOT fit {source} (with 10% headroom): {advice}")
    }
}

#[cfg(test)]
#[path = "memory_plan_tests.rs"]
mod tests;
