//! Learning-rate schedules: linear warmup, then constant, linear or cosine decay.
//!
//! The multipliers are exactly those of transformers' `get_constant_schedule_with_warmup`,
//! `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` (one half-cycle),
//! applied as the Hugging Face Trainer applies them: optimizer step `k` (1-based) uses
//! `peak · f(k − 1)`. With warmup the first step therefore runs at learning rate 0 (Adam's moments
//! still see its gradient), as in a TRL run with the same settings.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// The shape of the decay after warmup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Stay at the peak.
    Constant,
    /// Fall linearly to 0 at the last step.
    Linear,
    /// Follow half a cosine to 0 at the last step.
    #[default]
    Cosine,
}

/// A learning-rate schedule over a known number of optimizer steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The learning rate reached at the end of warmup.
    pub peak: f64,
    /// Optimizer steps of linear warmup from 0.
    pub warmup_steps: u64,
    /// Total optimizer steps of the run.
    pub total_steps: u64,
    /// The decay after warmup.
    pub decay: LrDecay,
}

impl LrSchedule {
    /// The multiplier of the peak after `completed` optimizer steps (transformers' `lr_lambda`).
    pub fn factor(&self, completed: u64) -> f64 {
        let step = completed as f64;
        let warmup = self.warmup_steps as f64;
        if completed < self.warmup_steps {
            return step / warmup.max(1.0);
        }
        let total = self.total_steps as f64;
        match self.decay {
            LrDecay::Constant => 1.0,
            LrDecay::Linear => ((total - step) / (total - warmup).max(1.0)).max(0.0),
            LrDecay::Cosine => {
                let progress = (step - warmup) / (total - warmup).max(1.0);
                (0.5 * (1.0 + (PI * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate of optimizer step `step` (1-based).
    pub(crate) fn lr_for_step(&self, step: u64) -> f64 {
        self.peak * self.factor(step.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(decay: LrDecay) -> LrSchedule {
        LrSchedule {
            peak: 1e-3,
            warmup_steps: 4,
            total_steps: 20,
            decay,
        }
    }

    #[test]
    fn warmup_rises_linearly_from_zero() {
        let s = schedule(LrDecay::Cosine);
        let lrs: Vec<f64> = (1..=5).map(|k| s.lr_for_step(k)).collect();
        assert_eq!(lrs, vec![0.0, 0.25e-3, 0.5e-3, 0.75e-3, 1e-3]);
    }

    #[test]
    #[allow(clippy::float_cmp)] // the end of a linear decay and a constant schedule are exactly 0 and 1
    fn decays_match_the_transformers_formulas() {
        // Hand values: after warmup 4 of 20, step index 12 is progress (12-4)/16 = 0.5.
        let linear = schedule(LrDecay::Linear);
        assert!((linear.factor(12) - 8.0 / 16.0).abs() < 1e-15);
        assert_eq!(linear.factor(20), 0.0);
        let cosine = schedule(LrDecay::Cosine);
        assert!((cosine.factor(12) - 0.5).abs() < 1e-15);
        // progress 0.25: 0.5(1 + cos(π/4)) = 0.853553...
        assert!((cosine.factor(8) - 0.853_553_390_593_273_7).abs() < 1e-12);
        assert!(cosine.factor(20).abs() < 1e-15);
        assert_eq!(schedule(LrDecay::Constant).factor(19), 1.0);
    }

    #[test]
    #[allow(clippy::float_cmp)] // the first step's rate is the peak itself, bit for bit
    fn no_warmup_starts_at_the_peak() {
        let s = LrSchedule {
            peak: 2e-5,
            warmup_steps: 0,
            total_steps: 10,
            decay: LrDecay::Linear,
        };
        assert_eq!(s.lr_for_step(1), 2e-5);
        assert!((s.lr_for_step(10) - 2e-6).abs() < 1e-18);
    }
}
