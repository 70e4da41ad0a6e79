//! What both training kinds do before and after the loop: resolve the device and precision, load
//! the starting model, check the dataset was tokenised for it, fingerprint the inputs, and write
//! the trained model in Hugging Face layout.

use crate::TrainError;
use crate::config::{LoraSettings, ModelInit, TrainSettings};
use crate::precision::Precision;
use burn::module::Module;
use burn::tensor::{DType, Device};
use erebor_core::content::hash_path;
use erebor_core::dataset::DatasetManifest;
use erebor_model::lora::{LoraConfig, apply_lora};
use erebor_model::{
    CausalLm, Checkpoint, DeviceSpec, ModelConfig, ModelError, SaveOptions, Tokenizer,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The resolved runtime of a training step.
#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    /// The device as named in the config.
    pub spec: DeviceSpec,
    /// The training device (autodiff; gradient checkpointing when asked).
    pub device: Device,
    /// The precision policy.
    pub precision: Precision,
    /// The dtype the weights are stored (and updated) in.
    pub dtype: DType,
    /// The dtype the forward pass computes in, when it differs (bf16-mixed).
    pub compute_dtype: Option<DType>,
}

/// Resolves `config.device` and `config.precision`.
pub(crate) fn runtime(config: &TrainSettings) -> Result<Runtime, TrainError> {
    let spec = config.device;
    let precision = config.precision.resolve(spec);
    // Weights are stored in `dtype`; under bf16-mixed they are f32 master weights and the
    // forward pass runs on a bf16 cast of them (`compute_dtype`).
    let (dtype, compute_dtype) = match precision {
        Precision::F32 => (DType::F32, None),
        Precision::Bf16 => (DType::BF16, None),
        Precision::Bf16Mixed => (DType::F32, Some(DType::BF16)),
    };
    let base = spec
        .device()
        .map_err(|e| TrainError::Config(format!("device: {e}")))?;
    let mut device = base.autodiff();
    if config.gradient_checkpointing {
        device = device.gradient_checkpointing();
    }
    Ok(Runtime {
        spec,
        device,
        precision,
        dtype,
        compute_dtype,
    })
}

/// The model to train with its tokenizer and the config.json it came with.
pub(crate) struct StartModel {
    /// The model, on the training device.
    pub model: CausalLm,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// config.json as read (saved back with the trained weights).
    pub raw_config: Option<Value>,
}

/// Loads the starting weights (or draws them from `config.seed` with `init: random`).
pub(crate) fn load_start_model(
    dir: &Path,
    init: ModelInit,
    seed: u64,
    runtime: &Runtime,
) -> Result<StartModel, TrainError> {
    match init {
        ModelInit::Pretrained => {
            let checkpoint = Checkpoint::load(dir, &runtime.device, runtime.dtype)?;
            let tokenizer = checkpoint
                .tokenizer
                .ok_or_else(|| ModelError::MissingFile {
                    path: dir.join("tokenizer.json"),
                    what: "training needs the tokenizer the dataset was made with".into(),
                })?;
            Ok(StartModel {
                model: checkpoint.model,
                tokenizer,
                raw_config: checkpoint.raw_config,
            })
        }
        ModelInit::Random => {
            let config = ModelConfig::from_dir(dir)?;
            let path = dir.join("config.json");
            let raw: Value = serde_json::from_slice(
                &std::fs::read(&path).map_err(|e| TrainError::io(&path, e))?,
            )
            .map_err(|e| ModelError::json(&path, &e))?;
            let std = raw
                .get("initializer_range")
                .and_then(Value::as_f64)
                .unwrap_or(0.02);
            let model = CausalLm::random(&config, seed, std, &runtime.device, runtime.dtype);
            let tokenizer = Tokenizer::from_dir(dir)?;
            tracing::info!(dir = %dir.display(), seed, std, params = config.num_parameters(), "initialised random weights");
            Ok(StartModel {
                model,
                tokenizer,
                raw_config: Some(raw),
            })
        }
    }
}

/// The model-core LoRA settings of a step's `lora:` block.
pub(crate) fn lora_config(lora: &LoraSettings) -> LoraConfig {
    LoraConfig {
        rank: lora.rank,
        alpha: lora.alpha,
        dropout: lora.dropout,
        target_modules: lora.targets.iter().map(|t| t.as_str().to_owned()).collect(),
    }
}

/// Freezes the base and attaches fresh LoRA adapters (seeded) when the config asks for them.
/// The adapters start at zero (`B = 0`), so the adapted model equals the base exactly.
pub(crate) fn with_lora(
    model: CausalLm,
    lora: Option<&LoraSettings>,
    seed: u64,
) -> Result<CausalLm, TrainError> {
    match lora {
        Some(lora) => apply_lora(model, &lora_config(lora), seed)
            .map_err(|e| TrainError::Config(format!("lora: {e}"))),
        None => Ok(model),
    }
}

/// Refuses a dataset tokenised with another tokenizer than the model's.
pub(crate) fn check_tokenizer(
    dataset: &Path,
    manifest: &DatasetManifest,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError> {
    let Some(reference) = &manifest.tokenizer else {
        return Err(TrainError::Dataset {
            path: dataset.to_owned(),
            message: "is not tokenised; give its convert step the model's tokenizer".into(),
        });
    };
    let hash =
        hash_path(tokenizer.path()).map_err(|e| TrainError::io(tokenizer.path(), e.source))?;
    if hash.sha256 != reference.tokenizer_sha256 {
        return Err(TrainError::Dataset {
            path: dataset.to_owned(),
            message: format!(
                "was tokenised with {} (tokenizer.json sha256 {}), not with the model's {} ({}); \
                 convert it again with this model's tokenizer",
                reference.source,
                short(&reference.tokenizer_sha256),
                tokenizer.path().display(),
                short(&hash.sha256)
            ),
        });
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Content hash of a model folder; for random weights, of its config and the seed.
pub(crate) fn model_hash(dir: &Path, init: ModelInit, seed: u64) -> Result<String, TrainError> {
    match init {
        ModelInit::Pretrained => Ok(hash_path(dir)
            .map_err(|e| TrainError::io(dir, e.source))?
            .sha256),
        ModelInit::Random => {
            let config = dir.join("config.json");
            let hash = hash_path(&config).map_err(|e| TrainError::io(&config, e.source))?;
            Ok(format!("random-{seed}-{}", hash.sha256))
        }
    }
}

/// Hash of the step's `with:` block and its inputs' hashes: checkpoints carry it, and a resume
/// with anything different is refused.
pub fn fingerprint(with: &Value, input_hashes: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(with).unwrap_or_default());
    for hash in input_hashes {
        hasher.update(b"\0");
        hasher.update(hash.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Writes the trained model in Hugging Face layout (f32 safetensors) to `dir`.
pub(crate) fn save_model(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    raw_config: Option<&Value>,
    dir: &Path,
) -> Result<PathBuf, TrainError> {
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    erebor_model::save_pretrained(
        &model.valid(),
        &tmp,
        Some(tokenizer),
        raw_config,
        &SaveOptions::default(),
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
    Ok(dir.to_owned())
}
