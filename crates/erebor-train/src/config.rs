//! The `with:` block of the `sft` and `preference` steps.
//!
//! One struct serves both kinds; [`TrainConfig::check`] refuses the preference keys in an `sft`
//! step and requires `loss`/`beta` in a `preference` step, naming the field.

use crate::losses::{DEFAULT_DPOP_LAMBDA, PreferenceLossKind, PreferenceObjective};
use crate::optim::AdamWConfig;
use crate::precision::PrecisionSetting;
use crate::schedule::{LrDecay, LrSchedule};
use erebor_core::ConfigError;
use erebor_model::DeviceSpec;
use erebor_model::lora::LoraTarget;
use serde::{Deserialize, Serialize};

/// Which of the two training kinds a config is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainKind {
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
    /// Projections that get adapters (HF names: q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj, lm_head, or all-linear); another name fails to parse.
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

/// The `with:` block of a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Hugging Face checkpoint folder to start from (config.json, tokenizer, weights unless
    /// `init: random`).
    pub model: String,
    /// Where the starting weights come from.
    #[serde(default)]
    pub init: ModelInit,
    /// Converted dataset folder (the `dataset` output of a `convert` step).
    pub dataset: String,
    /// Split to train on.
    #[serde(default = "default_split")]
    pub split: String,
    /// Held-out split evaluated at the end (and every `eval_every` steps).
    #[serde(default)]
    pub eval_split: Option<String>,
    /// Evaluate the held-out split every this many optimizer steps.
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// `cpu`, `tch-cpu` or `cuda:N`; any other spelling fails to parse, so `erebor validate`
    /// points at it.
    #[serde(default)]
    pub device: DeviceSpec,
    /// Precision policy: `auto` (f32 on CPU, bf16 compute with f32 master weights on CUDA),
    /// `f32`, `bf16-mixed`, `bf16`.
    #[serde(default)]
    pub precision: PrecisionSetting,
    /// Longest sequence (prompt + completion); defaults to the model's context, at most 2048.
    #[serde(default)]
    pub max_seq_len: Option<usize>,
    /// Longest prompt kept when a pair is too long (preference only; default half of
    /// `max_seq_len`).
    #[serde(default)]
    pub max_prompt_len: Option<usize>,
    /// Pack several SFT examples per sequence.
    #[serde(default)]
    pub packing: bool,
    /// Passes over the data (ignored when `max_steps` is set).
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Optimizer steps to run; overrides `epochs`.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Examples (SFT), packed rows (SFT with packing) or pairs (preference) per micro-batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "default_one")]
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decay after warmup.
    #[serde(default)]
    pub lr_schedule: LrDecay,
    /// Warmup in optimizer steps.
    #[serde(default)]
    pub warmup_steps: Option<u64>,
    /// Warmup as a fraction of all steps (used when `warmup_steps` is not given).
    #[serde(default)]
    pub warmup_ratio: Option<f64>,
    /// AdamW decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW β1.
    #[serde(default = "default_beta1")]
    pub adam_beta1: f64,
    /// AdamW β2.
    #[serde(default = "default_beta2")]
    pub adam_beta2: f64,
    /// AdamW ε.
    #[serde(default = "default_eps")]
    pub adam_eps: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// Seed of the data order (and of the weights with `init: random`).
    #[serde(default)]
    pub seed: u64,
    /// Checkpoint every this many optimizer steps (and always at the end and on cancel).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept on disk.
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Train LoRA adapters instead of all weights.
    #[serde(default)]
    pub lora: Option<LoraSettings>,
    /// Recompute activations in the backward pass to save memory.
    #[serde(default)]
    pub gradient_checkpointing: bool,
    /// Memory available for the estimate in `plan`, in GB (default: 80 on CUDA, the machine's
    /// RAM on CPU).
    #[serde(default)]
    pub memory_budget_gb: Option<f64>,
    /// Preference only: `dpop`, `dpo`, `ipo` or `slic`.
    #[serde(default)]
    pub loss: Option<PreferenceLossKind>,
    /// Preference only: β.
    #[serde(default)]
    pub beta: Option<f64>,
    /// Preference only: DPOP's λ (default 50).
    #[serde(default)]
    pub lambda: Option<f64>,
    /// Preference only: the reference model folder (default: `model`, the starting weights).
    #[serde(default)]
    pub reference: Option<String>,
}

fn default_split() -> String {
    "train".into()
}
fn default_batch_size() -> usize {
    8
}
fn default_one() -> usize {
    1
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_max_grad_norm() -> f64 {
    1.0
}
fn default_keep() -> usize {
    2
}

impl TrainConfig {
    /// Parses a `with:` block and checks it for `kind`.
    pub fn parse(with: &serde_json::Value, kind: TrainKind) -> Result<Self, ConfigError> {
        let config: Self = erebor_core::parse_with(with)?;
        config.check(kind)?;
        Ok(config)
    }

    /// Checks values and the keys that belong to one kind only.
    pub fn check(&self, kind: TrainKind) -> Result<(), ConfigError> {
        let positive = |key: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::field(key, "must be greater than 0"))
            }
        };
        positive("lr", self.lr > 0.0 && self.lr.is_finite())?;
        positive("batch_size", self.batch_size > 0)?;
        positive("grad_accum", self.grad_accum > 0)?;
        positive("keep_checkpoints", self.keep_checkpoints > 0)?;
        if let Some(len) = self.max_seq_len {
            positive("max_seq_len", len > 1)?;
        }
        if self.max_steps == Some(0) || self.epochs == Some(0) {
            let key = if self.max_steps == Some(0) {
                "max_steps"
            } else {
                "epochs"
            };
            return Err(ConfigError::field(key, "must be greater than 0"));
        }
        if self.checkpoint_every == Some(0) || self.eval_every == Some(0) {
            let key = if self.checkpoint_every == Some(0) {
                "checkpoint_every"
            } else {
                "eval_every"
            };
            return Err(ConfigError::field(key, "must be greater than 0"));
        }
        if let Some(ratio) = self.warmup_ratio
            && !(0.0..1.0).contains(&ratio)
        {
            return Err(ConfigError::field("warmup_ratio", "must be in [0, 1)"));
        }
        for (key, value) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(ConfigError::field(key, "must be in [0, 1)"));
            }
        }
        if let Some(lora) = &self.lora {
            if lora.rank == 0 {
                return Err(ConfigError::at(
                    vec![key("lora"), key("rank")],
                    "must be greater than 0",
                ));
            }
            if lora.targets.is_empty() {
                return Err(ConfigError::at(
                    vec![key("lora"), key("targets")],
                    "name at least one projection",
                ));
            }
        }
        match kind {
            TrainKind::Sft => {
                let preference_only = [
                    ("loss", self.loss.is_some()),
                    ("beta", self.beta.is_some()),
                    ("lambda", self.lambda.is_some()),
                    ("reference", self.reference.is_some()),
                    ("max_prompt_len", self.max_prompt_len.is_some()),
                ];
                if let Some((name, _)) = preference_only.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::field(
                        name,
                        "belongs to `preference` steps, not `sft`",
                    ));
                }
            }
            TrainKind::Preference => {
                let Some(loss) = self.loss else {
                    return Err(ConfigError::field(
                        "loss",
                        "is required: one of dpop, dpo, ipo, slic",
                    ));
                };
                match self.beta {
                    None => return Err(ConfigError::field("beta", "is required (e.g. 0.3)")),
                    Some(beta) if !(beta > 0.0 && beta.is_finite()) => {
                        return Err(ConfigError::field("beta", "must be greater than 0"));
                    }
                    Some(_) => {}
                }
                if let Some(lambda) = self.lambda {
                    if loss != PreferenceLossKind::Dpop {
                        return Err(ConfigError::field(
                            "lambda",
                            "only the dpop loss uses lambda",
                        ));
                    }
                    if !(lambda >= 0.0 && lambda.is_finite()) {
                        return Err(ConfigError::field("lambda", "must be 0 or more"));
                    }
                }
                if self.packing {
                    return Err(ConfigError::field(
                        "packing",
                        "applies to `sft` steps only: pairs are scored one sequence per row",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The preference objective (only for a checked preference config).
    pub fn objective(&self) -> Option<PreferenceObjective> {
        Some(PreferenceObjective {
            kind: self.loss?,
            beta: self.beta?,
            lambda: self.lambda.unwrap_or(DEFAULT_DPOP_LAMBDA),
        })
    }

    /// AdamW hyper-parameters.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
        }
    }

    /// Optimizer steps for `units` examples (or pairs, or packed rows) per epoch.
    pub fn total_steps(&self, units: usize) -> u64 {
        if let Some(steps) = self.max_steps {
            return steps;
        }
        let per_step = self.batch_size * self.grad_accum;
        let per_epoch = units.div_ceil(per_step) as u64;
        per_epoch * self.epochs.unwrap_or(1)
    }

    /// The learning-rate schedule over `total_steps`.
    pub fn schedule(&self, total_steps: u64) -> LrSchedule {
        let warmup_steps = self.warmup_steps.unwrap_or_else(|| {
            (self.warmup_ratio.unwrap_or(0.0) * total_steps as f64).ceil() as u64
        });
        LrSchedule {
            peak: self.lr,
            warmup_steps,
            total_steps,
            decay: self.lr_schedule,
        }
    }
}

fn key(name: &str) -> erebor_core::config::PathSegment {
    erebor_core::config::PathSegment::Key(name.to_owned())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
