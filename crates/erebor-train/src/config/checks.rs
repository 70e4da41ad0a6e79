//! `TryFrom` from the wire structs to the typed configs: the range checks, each error naming
//! its field, and the preference objective, which is required.

use super::wire::{PreferenceWire, SftWire, SharedWire};
use super::{LoraSettings, PreferenceConfig, SftConfig, TrainLength, TrainSettings, Warmup};
use crate::losses::{DEFAULT_DPOP_LAMBDA, PreferenceLossKind, PreferenceObjective};
use crate::optim::AdamWConfig;
use erebor_core::ConfigError;
use erebor_core::config::PathSegment;

impl TryFrom<SftWire> for SftConfig {
    type Error = ConfigError;

    fn try_from(wire: SftWire) -> Result<Self, ConfigError> {
        let (shared, (packing,)) = wire.split();
        Ok(Self {
            settings: shared.try_into()?,
            packing,
        })
    }
}

impl TryFrom<PreferenceWire> for PreferenceConfig {
    type Error = ConfigError;

    fn try_from(wire: PreferenceWire) -> Result<Self, ConfigError> {
        let (shared, (loss, beta, lambda, reference, max_prompt_len)) = wire.split();
        let settings = shared.try_into()?;
        Ok(Self {
            settings,
            objective: objective(loss, beta, lambda)?,
            reference,
            max_prompt_len,
        })
    }
}

/// The objective of a preference step: `loss` and `beta` required, `lambda` only for DPOP.
fn objective(
    loss: Option<PreferenceLossKind>,
    beta: Option<f64>,
    lambda: Option<f64>,
) -> Result<PreferenceObjective, ConfigError> {
    let Some(kind) = loss else {
        return Err(ConfigError::field(
            "loss",
            "is required: one of dpop, dpo, ipo, slic",
        ));
    };
    let beta = match beta {
        None => return Err(ConfigError::field("beta", "is required (e.g. 0.3)")),
        Some(beta) if !(beta > 0.0 && beta.is_finite()) => {
            return Err(ConfigError::field("beta", "must be greater than 0"));
        }
        Some(beta) => beta,
    };
    if let Some(lambda) = lambda {
        if kind != PreferenceLossKind::Dpop {
            return Err(ConfigError::field(
                "lambda",
                "only the dpop loss uses lambda",
            ));
        }
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return Err(ConfigError::field("lambda", "must be 0 or more"));
        }
    }
    Ok(PreferenceObjective {
        kind,
        beta,
        lambda: lambda.unwrap_or(DEFAULT_DPOP_LAMBDA),
    })
}

impl TryFrom<SharedWire> for TrainSettings {
    type Error = ConfigError;

    fn try_from(wire: SharedWire) -> Result<Self, ConfigError> {
        positive("lr", wire.lr > 0.0 && wire.lr.is_finite())?;
        positive("batch_size", wire.batch_size > 0)?;
        positive("grad_accum", wire.grad_accum > 0)?;
        positive("keep_checkpoints", wire.keep_checkpoints > 0)?;
        if let Some(len) = wire.max_seq_len {
            positive("max_seq_len", len > 1)?;
        }
        for (key, count) in [
            ("max_steps", wire.max_steps),
            ("epochs", wire.epochs),
            ("checkpoint_every", wire.checkpoint_every),
            ("eval_every", wire.eval_every),
        ] {
            positive(key, count != Some(0))?;
        }
        if let Some(ratio) = wire.warmup_ratio {
            unit_interval("warmup_ratio", ratio)?;
        }
        unit_interval("adam_beta1", wire.adam_beta1)?;
        unit_interval("adam_beta2", wire.adam_beta2)?;
        if let Some(lora) = &wire.lora {
            check_lora(lora)?;
        }
        Ok(Self {
            length: match wire.max_steps {
                Some(steps) => TrainLength::Steps(steps),
                None => TrainLength::Epochs(wire.epochs.unwrap_or(1)),
            },
            warmup: match wire.warmup_steps {
                Some(steps) => Warmup::Steps(steps),
                None => Warmup::Ratio(wire.warmup_ratio.unwrap_or(0.0)),
            },
            adamw: AdamWConfig {
                beta1: wire.adam_beta1,
                beta2: wire.adam_beta2,
                eps: wire.adam_eps,
                weight_decay: wire.weight_decay,
            },
            model: wire.model,
            init: wire.init,
            dataset: wire.dataset,
            split: wire.split,
            eval_split: wire.eval_split,
            eval_every: wire.eval_every,
            device: wire.device,
            precision: wire.precision,
            max_seq_len: wire.max_seq_len,
            batch_size: wire.batch_size,
            grad_accum: wire.grad_accum,
            lr: wire.lr,
            lr_schedule: wire.lr_schedule,
            max_grad_norm: wire.max_grad_norm,
            seed: wire.seed,
            checkpoint_every: wire.checkpoint_every,
            keep_checkpoints: wire.keep_checkpoints,
            lora: wire.lora,
            gradient_checkpointing: wire.gradient_checkpointing,
            memory_budget_gb: wire.memory_budget_gb,
        })
    }
}

fn positive(key: &str, ok: bool) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::field(key, "must be greater than 0"))
    }
}

fn unit_interval(key: &str, value: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::field(key, "must be in [0, 1)"))
    }
}

fn check_lora(lora: &LoraSettings) -> Result<(), ConfigError> {
    let at = |field: &str, message: &str| {
        ConfigError::at(
            vec![
                PathSegment::Key("lora".to_owned()),
                PathSegment::Key(field.to_owned()),
            ],
            message,
        )
    };
    if lora.rank == 0 {
        return Err(at("rank", "must be greater than 0"));
    }
    if lora.targets.is_empty() {
        return Err(at("targets", "name at least one projection"));
    }
    Ok(())
}
