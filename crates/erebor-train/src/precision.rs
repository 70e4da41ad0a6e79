//! The precision policy of a training step, stated in the config and recorded with the run.
//!
//! | policy | weights kept in | forward/backward in | `AdamW` moments | log-softmax |
//! | --- | --- | --- | --- | --- |
//! | `f32` (CPU default) | f32 | f32 | f32 | f32 |
//! | `bf16-mixed` (CUDA default) | f32 master copy | bf16 | f32 | f32 |
//! | `bf16` (pure, on request) | bf16 | bf16 | bf16 | f32 |
//!
//! Reference log-probs are computed by the same forward and the same dtype as the policy's,
//! because DPOP's λ = 50 turns any drift between the two into a penalty.

use erebor_model::DeviceSpec;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the config asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrecisionSetting {
    /// f32 on CPU, bf16-mixed on CUDA.
    #[default]
    Auto,
    /// Everything in f32.
    F32,
    /// bf16 compute with f32 master weights and optimizer state.
    Bf16Mixed,
    /// Everything in bf16 except the log-softmax.
    Bf16,
}

/// The policy in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything in f32.
    F32,
    /// bf16 compute, f32 master weights and optimizer state.
    Bf16Mixed,
    /// bf16 throughout, log-softmax in f32.
    Bf16,
}

impl Precision {
    /// Bytes per element of the weights the forward pass reads.
    pub fn compute_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::Bf16Mixed | Precision::Bf16 => 2,
        }
    }

    /// Bytes per element of the weights the optimizer updates (and of their gradients).
    pub fn master_bytes(self) -> usize {
        match self {
            Precision::F32 | Precision::Bf16Mixed => 4,
            Precision::Bf16 => 2,
        }
    }

    /// Bytes per element of each `AdamW` moment.
    pub fn moment_bytes(self) -> usize {
        self.master_bytes()
    }

    /// The policy as one line for logs and the run record.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Precision::F32 => "f32 weights, compute, gradients and AdamW state; f32 log-softmax",
            Precision::Bf16Mixed => {
                "bf16 compute, f32 master weights, gradients and AdamW state; f32 log-softmax"
            }
            Precision::Bf16 => "bf16 weights, compute, gradients and AdamW state; f32 log-softmax",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16Mixed => "bf16-mixed",
            Precision::Bf16 => "bf16",
        })
    }
}

impl PrecisionSetting {
    /// The policy for `device`: `auto` is f32 on CPU devices and bf16-mixed on CUDA; an
    /// explicit setting is taken as it is (Burn's flex and LibTorch CPU backends compute in bf16
    /// too, slowly; useful for checking a CUDA recipe on a CPU).
    pub fn resolve(self, device: DeviceSpec) -> Precision {
        match self {
            PrecisionSetting::Auto if device.is_cuda() => Precision::Bf16Mixed,
            PrecisionSetting::Auto | PrecisionSetting::F32 => Precision::F32,
            PrecisionSetting::Bf16Mixed => Precision::Bf16Mixed,
            PrecisionSetting::Bf16 => Precision::Bf16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_f32_on_cpu_and_mixed_on_cuda() {
        let auto = PrecisionSetting::Auto;
        assert_eq!(auto.resolve(DeviceSpec::Cpu), Precision::F32);
        assert_eq!(auto.resolve(DeviceSpec::TchCpu), Precision::F32);
        assert_eq!(auto.resolve(DeviceSpec::Cuda(0)), Precision::Bf16Mixed);
        assert_eq!(
            PrecisionSetting::Bf16.resolve(DeviceSpec::Cuda(1)),
            Precision::Bf16
        );
        assert_eq!(
            PrecisionSetting::Bf16Mixed.resolve(DeviceSpec::Cpu),
            Precision::Bf16Mixed
        );
    }

    #[test]
    fn settings_parse_from_kebab_case() {
        let setting: PrecisionSetting = serde_json::from_str("\"bf16-mixed\"").unwrap();
        assert_eq!(setting, PrecisionSetting::Bf16Mixed);
        assert_eq!(Precision::Bf16Mixed.to_string(), "bf16-mixed");
    }
}
