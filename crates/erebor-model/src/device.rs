//! Device selection by name: `cpu` (Burn's pure-Rust flex backend), `tch-cpu` and `cuda:N`
//! (Burn's LibTorch backend, cargo feature `tch`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Device};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::error::{ModelError, Result};

/// A device named by the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// Burn's flex CPU backend (always available); the default.
    #[default]
    Cpu,
    /// LibTorch on the CPU (feature `tch`).
    TchCpu,
    /// LibTorch on CUDA device N (feature `tch`).
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" | "flex" => Ok(DeviceSpec::Cpu),
            "tch-cpu" | "libtorch" | "libtorch-cpu" => Ok(DeviceSpec::TchCpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| ModelError::Device {
                        device: s.to_string(),
                        message: "expected cuda:N with N a device index".into(),
                    }),
                None => Err(ModelError::Device {
                    device: s.to_string(),
                    message: "unknown device; use cpu, tch-cpu or cuda:N".into(),
                }),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::TchCpu => write!(f, "tch-cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// The spellings a workflow file may use for a device, as listed in its errors.
pub(crate) const DEVICE_SPELLINGS: [&str; 3] = ["cpu", "tch-cpu", "cuda:N"];

impl DeviceSpec {
    /// Parses the canonical spelling only (`cpu`, `tch-cpu`, `cuda:N`), the one workflow files
    /// use and runs record; [`FromStr`] also takes the command line's aliases (`gpu`, `flex`...).
    pub(crate) fn parse_canonical(s: &str) -> Option<Self> {
        match s {
            "cpu" => Some(DeviceSpec::Cpu),
            "tch-cpu" => Some(DeviceSpec::TchCpu),
            _ => {
                let index = s.strip_prefix("cuda:")?;
                // `usize::from_str` takes a leading `+`; a device index is digits only.
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                index.parse().ok().map(DeviceSpec::Cuda)
            }
        }
    }

    /// The spellings of the devices this build can use: `cpu` alone without the `tch` feature.
    pub fn compiled_in_spellings() -> &'static [&'static str] {
        if cfg!(feature = "tch") {
            &DEVICE_SPELLINGS
        } else {
            &DEVICE_SPELLINGS[..1]
        }
    }

    /// Whether this is a CUDA device.
    pub fn is_cuda(self) -> bool {
        matches!(self, DeviceSpec::Cuda(_))
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A config's `device:` takes the canonical spellings; anything else is an `unknown variant`
/// error listing them, so the workflow's validation can point at the value and list the choices.
impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if let Some(spec) = DeviceSpec::parse_canonical(&text) {
            return Ok(spec);
        }
        if text.starts_with("cuda:") {
            return Err(de::Error::invalid_value(
                de::Unexpected::Str(&text),
                &"cuda:N with N a device index (cuda:0, cuda:1...)",
            ));
        }
        Err(de::Error::unknown_variant(&text, &DEVICE_SPELLINGS))
    }
}

impl DeviceSpec {
    /// The Burn device; an error naming the cargo feature when the backend is not compiled in.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::TchCpu | DeviceSpec::Cuda(_) => tch_device(self),
        }
    }

    /// The default compute dtype: f32 on CPUs, bf16 on CUDA.
    pub fn default_dtype(self) -> DType {
        match self {
            DeviceSpec::Cuda(_) => DType::BF16,
            _ => DType::F32,
        }
    }

    /// Whether this erebor build can use the device.
    pub fn is_compiled_in(self) -> bool {
        matches!(self, DeviceSpec::Cpu) || cfg!(feature = "tch")
    }
}

// burn 0.22 marks burn-tch deprecated in favour of CubeCL; erebor keeps LibTorch on purpose
// (DEVELOPERS.md: CubeCL's CUDA JIT did not finish one training step in 165 s on an H100).
#[cfg(feature = "tch")]
#[allow(deprecated)]
fn tch_device(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cuda(index) => {
            // LibTorch only fails on the first tensor placed on a missing CUDA device, with a
            // panic deep inside torch; ask it how many devices it sees before handing one out.
            check_cuda_index(spec, index, cuda_device_count())?;
            Ok(Device::libtorch_cuda(index))
        }
        _ => Ok(Device::libtorch()),
    }
}

/// The number of CUDA devices LibTorch sees (0 without a driver, a GPU, or a CUDA build of
/// `PyTorch`); always 0 in a build without the `tch` feature.
pub fn cuda_device_count() -> usize {
    #[cfg(feature = "tch")]
    {
        Device::enumerate(burn::tensor::DeviceType::LibTorch)
            .into_vec()
            .len()
    }
    #[cfg(not(feature = "tch"))]
    {
        0
    }
}

/// An error naming the device and what is missing when `cuda:index` is not among the `count`
/// CUDA devices LibTorch sees.
#[cfg(feature = "tch")]
fn check_cuda_index(spec: DeviceSpec, index: usize, count: usize) -> Result<()> {
    if index < count {
        return Ok(());
    }
    let message = if count == 0 {
        "CUDA is not available to LibTorch (torch.cuda.is_available() is false): no NVIDIA GPU \
         or driver is visible, or the PyTorch/libtorch this build links is CPU-only; use `cpu` \
         or `tch-cpu`, or link a CUDA build of PyTorch"
            .to_string()
    } else {
        format!(
            "LibTorch sees {count} CUDA device(s), cuda:0 to cuda:{}; check CUDA_VISIBLE_DEVICES",
            count - 1
        )
    };
    Err(ModelError::Device {
        device: spec.to_string(),
        message,
    })
}

#[cfg(not(feature = "tch"))]
fn tch_device(spec: DeviceSpec) -> Result<Device> {
    Err(ModelError::Device {
        device: spec.to_string(),
        message: "this build has no LibTorch backend; rebuild with `--features tch` \
                  (LIBTORCH_USE_PYTORCH=1 with torch installed, see docs/models.md)"
            .into(),
    })
}

/// The autodiff device for training on `base`, with Burn's gradient checkpointing when asked
/// (activations of memory-bound operations are recomputed in the backward pass instead of kept).
pub fn training_device(base: Device, gradient_checkpointing: bool) -> Device {
    let device = base.autodiff();
    if gradient_checkpointing {
        device.gradient_checkpointing()
    } else {
        device
    }
}

/// Parses a dtype name: `f32`, `f16`, `bf16` (and the torch spellings).
pub fn parse_dtype(s: &str) -> Result<DType> {
    crate::weights::SaveDType::parse(s)
        .map(crate::weights::SaveDType::burn)
        .ok_or_else(|| ModelError::InvalidRequest(format!("unknown dtype {s:?} (f32, f16, bf16)")))
}

#[cfg(all(test, feature = "tch"))]
mod tch_tests {
    use super::*;

    #[test]
    fn a_cuda_index_past_the_devices_libtorch_sees_is_an_error_naming_both() {
        assert!(check_cuda_index(DeviceSpec::Cuda(1), 1, 2).is_ok());
        let err = check_cuda_index(DeviceSpec::Cuda(2), 2, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device `cuda:2`: LibTorch sees 2 CUDA device(s), cuda:0 to cuda:1; check \
             CUDA_VISIBLE_DEVICES"
        );
        let err = check_cuda_index(DeviceSpec::Cuda(0), 0, 0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("device `cuda:0`: CUDA is not available to LibTorch"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn from_json(text: &str) -> std::result::Result<DeviceSpec, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn configs_take_the_canonical_spellings_and_write_them_back() {
        assert_eq!(from_json("\"cpu\""), Ok(DeviceSpec::Cpu));
        assert_eq!(from_json("\"tch-cpu\""), Ok(DeviceSpec::TchCpu));
        assert_eq!(from_json("\"cuda:3\""), Ok(DeviceSpec::Cuda(3)));
        assert_eq!(
            serde_json::to_string(&DeviceSpec::Cuda(3)).unwrap(),
            "\"cuda:3\""
        );
    }

    #[test]
    fn anything_else_is_an_unknown_variant_listing_the_spellings() {
        // `gpu` is a command-line alias, not a config spelling: a typo there must not pass.
        for text in ["gpu", "CPU", "cuda", "flex"] {
            assert_eq!(
                from_json(&format!("\"{text}\"")).unwrap_err(),
                format!("unknown variant `{text}`, expected one of `cpu`, `tch-cpu`, `cuda:N`")
            );
        }
        for text in ["cuda:", "cuda:x", "cuda:+1", "cuda:-1"] {
            let error = from_json(&format!("\"{text}\"")).unwrap_err();
            assert!(
                error.starts_with(&format!(
                    "invalid value: string \"{text}\", expected cuda:N"
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn the_build_supports_cpu_always_and_libtorch_with_the_tch_feature() {
        let supported = DeviceSpec::compiled_in_spellings();
        assert_eq!(supported.contains(&"cuda:N"), cfg!(feature = "tch"));
        assert_eq!(supported[0], "cpu");
    }
}
