//! The `with:` block of the `sft` and `preference` steps.
//!
//! Each kind has a wire struct ([`SftWire`], [`PreferenceWire`]) that serde reads with
//! `deny_unknown_fields`, so a key of the other kind fails to parse; `TryFrom` turns it into the
//! typed, checked config ([`SftConfig`], [`PreferenceConfig`]), naming the field of a value out
//! of range. The fields both kinds take become [`TrainSettings`].

mod checks;
mod wire;

use crate::losses::PreferenceObjective;
use crate::optim::AdamWConfig;
use crate::precision::PrecisionSetting;
use crate::schedule::{LrDecay, LrSchedule};
use erebor_core::ConfigError;
use erebor_model::DeviceSpec;
use erebor_model::lora::LoraTarget;
use serde::{Deserialize, Serialize};
pub use wire::{PreferenceWire, SftWire};

/// Which of the two training kinds a config is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrainKind {
    /// Supervised fine-tuning.
    Sft,
    /// Preference optimisation.
    Preference,
}

/// Where the starting weights come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelInit {
    /// The checkpoint's own weights.
    #[default]
    Pretrained,
    /// Fresh weights drawn from `seed` (normal, std 0.02, as transformers initialises Llama);
    /// the folder needs only config.json and the tokenizer files.
    Random,
}

/// LoRA settings: a frozen base with trained low-rank adapters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    /// Rank of the adapters.
    pub rank: usize,
    /// Scale numerator: the update is `alpha / rank · B A`.
    #[serde(default = "default_lora_alpha")]
    pub alpha: f64,
    /// Dropout on the adapter input.
    #[serde(default)]
    pub dropout: f64,
    /// Projections that get adapters (HF names: `q_proj`, `k_proj`, `v_proj`, `o_proj`,
    /// `gate_proj`, `up_proj`, `down_proj`, `lm_head`, or `all-linear`); another name fails to
    /// parse.
    #[serde(default = "default_lora_targets")]
    pub targets: Vec<LoraTarget>,
}

fn default_lora_alpha() -> f64 {
    16.0
}

fn default_lora_targets() -> Vec<LoraTarget> {
    vec![
        LoraTarget::QProj,
        LoraTarget::KProj,
        LoraTarget::VProj,
        LoraTarget::OProj,
    ]
}

/// How long a step trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrainLength {
    /// This many optimizer steps (`max_steps`, which wins over `epochs`).
    Steps(u64),
    /// This many passes over the data (`epochs`, default 1).
    Epochs(u64),
}

/// How long the linear warmup is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Warmup {
    /// This many optimizer steps (`warmup_steps`, which wins over `warmup_ratio`).
    Steps(u64),
    /// This fraction of all steps, rounded up as transformers does (`warmup_ratio`, in [0, 1);
    /// 0 when neither is given).
    Ratio(f64),
}

/// The checked settings both training kinds share. The kinds' `TryFrom` builds them and checks
/// the ranges: `lr`, `batch_size`, `grad_accum`, `keep_checkpoints` and the optional
/// step counts are greater than 0, `max_seq_len` is at least 2, `AdamW`'s β are in [0, 1), and a
/// `lora:` block has a rank and a target.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrainSettings {
    /// The starting model: a folder or an `hf://models/...` reference.
    pub model: String,
    /// Where the starting weights come from.
    pub init: ModelInit,
    /// Converted dataset folder.
    pub dataset: String,
    /// Split to train on.
    pub split: String,
    /// Held-out split evaluated at the end (and every `eval_every` steps).
    pub eval_split: Option<String>,
    /// Evaluate the held-out split every this many optimizer steps.
    pub eval_every: Option<u64>,
    /// The device to train on.
    pub device: DeviceSpec,
    /// Precision policy, resolved against the device at run time.
    pub precision: PrecisionSetting,
    /// Longest sequence, when set (otherwise the model's context, at most 2048).
    pub max_seq_len: Option<usize>,
    /// How long to train.
    pub length: TrainLength,
    /// Examples, packed rows or pairs per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decay after warmup.
    pub lr_schedule: LrDecay,
    /// Warmup length.
    pub warmup: Warmup,
    /// `AdamW` hyper-parameters.
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Seed of the data order (and of the weights with `init: random`).
    pub seed: u64,
    /// Checkpoint every this many optimizer steps (and always at the end and on cancel).
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// LoRA adapters to train instead of all weights.
    pub lora: Option<LoraSettings>,
    /// Recompute activations in the backward pass to save memory.
    pub gradient_checkpointing: bool,
    /// Memory budget for the estimate, in GB, when set.
    pub memory_budget_gb: Option<f64>,
}

/// The checked config of an `sft` step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SftConfig {
    /// The settings both kinds share.
    pub settings: TrainSettings,
    /// Pack several examples per sequence.
    pub packing: bool,
}

/// The checked config of a `preference` step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PreferenceConfig {
    /// The settings both kinds share.
    pub settings: TrainSettings,
    /// The loss with its β and λ (DPOP's default λ when not given).
    pub objective: PreferenceObjective,
    /// The reference model, when it is not `model`.
    pub reference: Option<String>,
    /// Longest prompt kept when a pair is too long, when set (otherwise half of the sequence).
    pub max_prompt_len: Option<usize>,
}

/// A checked training config of one kind, as the shared run code takes it.
pub(crate) trait KindConfig: Sized {
    /// The kind it configures.
    const KIND: TrainKind;

    /// Parses a `with:` block: its wire struct, then `TryFrom`.
    fn parse(with: &serde_json::Value) -> Result<Self, ConfigError>;

    /// The settings both kinds share.
    fn settings(&self) -> &TrainSettings;
}

impl KindConfig for SftConfig {
    const KIND: TrainKind = TrainKind::Sft;

    fn parse(with: &serde_json::Value) -> Result<Self, ConfigError> {
        let wire: SftWire = erebor_core::parse_with(with)
            .map_err(|e| wire::other_kind_key(e, wire::PREFERENCE_ONLY))?;
        Self::try_from(wire)
    }

    fn settings(&self) -> &TrainSettings {
        &self.settings
    }
}

impl KindConfig for PreferenceConfig {
    const KIND: TrainKind = TrainKind::Preference;

    fn parse(with: &serde_json::Value) -> Result<Self, ConfigError> {
        let wire: PreferenceWire =
            erebor_core::parse_with(with).map_err(|e| wire::other_kind_key(e, wire::SFT_ONLY))?;
        Self::try_from(wire)
    }

    fn settings(&self) -> &TrainSettings {
        &self.settings
    }
}

impl TrainSettings {
    /// Parses a `with:` block as a step of `kind` and keeps the shared settings (what
    /// validation, the plan's memory estimate and the device setup need).
    pub(crate) fn parse(with: &serde_json::Value, kind: TrainKind) -> Result<Self, ConfigError> {
        Ok(match kind {
            TrainKind::Sft => SftConfig::parse(with)?.settings,
            TrainKind::Preference => PreferenceConfig::parse(with)?.settings,
        })
    }

    /// Optimizer steps for `units` examples (or pairs, or packed rows) per epoch.
    pub(crate) fn total_steps(&self, units: usize) -> u64 {
        match self.length {
            TrainLength::Steps(steps) => steps,
            TrainLength::Epochs(epochs) => {
                let per_step = self.batch_size * self.grad_accum;
                units.div_ceil(per_step) as u64 * epochs
            }
        }
    }

    /// The learning-rate schedule over `total_steps`.
    // The warmup ratio is validated to lie in [0, 1), so the rounded-up warmup is a whole number
    // in [0, total_steps]: the f64 -> u64 cast neither truncates nor loses a sign.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn schedule(&self, total_steps: u64) -> LrSchedule {
        let warmup_steps = match self.warmup {
            Warmup::Steps(steps) => steps,
            Warmup::Ratio(ratio) => (ratio * total_steps as f64).ceil() as u64,
        };
        LrSchedule {
            peak: self.lr,
            warmup_steps,
            total_steps,
            decay: self.lr_schedule,
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
