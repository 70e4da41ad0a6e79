//! LoRA adapters as PEFT defines them: `W x + (alpha / r) · B A dropout(x)` on chosen linear
//! layers, the base frozen; saved and loaded as a PEFT adapter folder
//! (`adapter_config.json` + `adapter_model.safetensors`, tensors
//! `base_model.model.<module>.lora_A.weight` `[r, in]` and `.lora_B.weight` `[out, r]`), and
//! merged into the base weights on request.
//!
//! - [`apply_lora`]: freezes every base parameter and attaches trainable adapters.
//! - [`save_adapter`] / [`load_adapter`]: the PEFT folder.
//! - [`merge`]: folds the adapters into the weights and removes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::DropoutConfig;
use burn::tensor::{Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result, read_json};
use crate::model::{CausalLm, LoraAdapter, WeightSource};
use crate::weights::{SafetensorsSource, SafetensorsWriter, SaveDType};

/// A module a training step's `lora.targets` may name: the Llama-family projections by their
/// Hugging Face names, `lm_head`, or `all-linear` (every linear layer but `lm_head`, as PEFT).
/// Any other spelling fails where the step's config is parsed, so `erebor validate` points at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LoraTarget {
    /// Attention query projection.
    #[serde(rename = "q_proj")]
    QProj,
    /// Attention key projection.
    #[serde(rename = "k_proj")]
    KProj,
    /// Attention value projection.
    #[serde(rename = "v_proj")]
    VProj,
    /// Attention output projection.
    #[serde(rename = "o_proj")]
    OProj,
    /// MLP gate projection.
    #[serde(rename = "gate_proj")]
    GateProj,
    /// MLP up projection.
    #[serde(rename = "up_proj")]
    UpProj,
    /// MLP down projection.
    #[serde(rename = "down_proj")]
    DownProj,
    /// The output head.
    #[serde(rename = "lm_head")]
    LmHead,
    /// Every linear layer except `lm_head`.
    #[serde(rename = "all-linear")]
    AllLinear,
}

impl LoraTarget {
    /// The name PEFT's `target_modules` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LoraTarget::QProj => "q_proj",
            LoraTarget::KProj => "k_proj",
            LoraTarget::VProj => "v_proj",
            LoraTarget::OProj => "o_proj",
            LoraTarget::GateProj => "gate_proj",
            LoraTarget::UpProj => "up_proj",
            LoraTarget::DownProj => "down_proj",
            LoraTarget::LmHead => "lm_head",
            LoraTarget::AllLinear => "all-linear",
        }
    }
}

/// LoRA settings (PEFT's `LoraConfig` fields erebor uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank `r`.
    pub rank: usize,
    /// `lora_alpha`; the adapter output is scaled by `alpha / r`.
    pub alpha: f64,
    /// Dropout on the adapter input during training.
    pub dropout: f64,
    /// Module names to adapt, matched on the last path component as PEFT does (`q_proj`,
    /// `v_proj`...), or `all-linear` for every linear layer except `lm_head`.
    pub target_modules: Vec<String>,
}

impl LoraConfig {
    /// Whether the module at HF path `path` is targeted.
    pub fn targets(&self, path: &str) -> bool {
        let last = path.rsplit('.').next().unwrap_or(path);
        self.target_modules.iter().any(|t| {
            (t == "all-linear" && path != "lm_head")
                || t == last
                || t == path
                || path.ends_with(&format!(".{t}"))
        })
    }
}

/// PEFT's `adapter_config.json`.
// The flags are PEFT's own independent options, field for field.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeftConfig {
    peft_type: String,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: serde_json::Value,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    task_type: Option<String>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    inference_mode: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rank_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alpha_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    lora_bias: bool,
}

/// Freezes all parameters of `model` and attaches fresh adapters to the targeted layers:
/// `A` Kaiming-uniform with bound `1/sqrt(in)` from a `ChaCha` stream seeded with `seed`, `B`
/// zero, so the adapted model starts equal to the base. An error when nothing matches.
pub fn apply_lora(model: CausalLm, config: &LoraConfig, seed: u64) -> Result<CausalLm> {
    let mut model = model.no_grad();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let device = model.device();
    let mut count = 0;
    for (path, linear) in model.linear_layers_mut() {
        if !config.targets(&path) {
            continue;
        }
        let (d_in, d_out) = (linear.d_in(), linear.d_out());
        let bound = 1.0 / (d_in as f64).sqrt();
        // Drawn in f64 and rounded to f32 on purpose.
        #[allow(clippy::cast_possible_truncation)]
        let a: Vec<f32> = (0..d_in * config.rank)
            .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
            .collect();
        let dtype = linear.weight.val().dtype();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d_in, config.rank]), (&device, dtype));
        let b = Tensor::<2>::zeros([config.rank, d_out], (&device, dtype));
        linear.lora = Some(adapter(a, b, config));
        count += 1;
    }
    if count == 0 {
        return Err(ModelError::InvalidRequest(format!(
            "LoRA target_modules {:?} match no linear layer (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head)",
            config.target_modules
        )));
    }
    tracing::info!(layers = count, rank = config.rank, "LoRA adapters attached");
    Ok(model)
}

fn adapter(a: Tensor<2>, b: Tensor<2>, config: &LoraConfig) -> LoraAdapter {
    LoraAdapter {
        a: Param::from_tensor(a),
        b: Param::from_tensor(b),
        scale: config.alpha / config.rank as f64,
        dropout: DropoutConfig::new(config.dropout).init(),
    }
}

/// Number of trainable adapter parameters `lora` adds to a model of `config` (what
/// [`apply_lora`] attaches: `rank · (in + out)` per targeted layer).
pub fn adapter_parameter_count(config: &ModelConfig, lora: &LoraConfig) -> usize {
    config
        .linear_shapes()
        .iter()
        .filter(|(path, _, _)| lora.targets(path))
        .map(|(_, d_in, d_out)| lora.rank * (d_in + d_out))
        .sum()
}

/// Writes the adapters of `model` as a PEFT folder; returns the files written.
///
/// # Panics
/// Never in practice: the adapter config holds only strings, numbers and booleans, which always
/// serialise, and the writer returns the file of the adapters it was given.
pub fn save_adapter(
    model: &CausalLm,
    config: &LoraConfig,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut writer = SafetensorsWriter::new(dir, SaveDType::F32, usize::MAX);
    let mut modules = Vec::new();
    for (path, linear) in model.linear_layers() {
        let Some(ad) = &linear.lora else { continue };
        let prefix = format!("base_model.model.{path}");
        writer.add(
            format!("{prefix}.lora_A.weight"),
            ad.a.val().transpose().into_data(),
        )?;
        writer.add(
            format!("{prefix}.lora_B.weight"),
            ad.b.val().transpose().into_data(),
        )?;
        modules.push(path.rsplit('.').next().unwrap_or(&path).to_string());
    }
    if modules.is_empty() {
        return Err(ModelError::InvalidRequest(
            "the model has no LoRA adapters to save".into(),
        ));
    }
    modules.sort();
    modules.dedup();
    let mut files = writer.finish()?;
    let weights = dir.join("adapter_model.safetensors");
    std::fs::rename(&files[0], &weights).map_err(|e| ModelError::io(&weights, e))?;
    files[0] = weights;
    let peft = PeftConfig {
        peft_type: "LORA".into(),
        r: config.rank,
        lora_alpha: config.alpha,
        lora_dropout: config.dropout,
        target_modules: serde_json::json!(modules),
        bias: Some("none".into()),
        task_type: Some("CAUSAL_LM".into()),
        base_model_name_or_path: base_model.map(str::to_string),
        fan_in_fan_out: false,
        use_rslora: false,
        use_dora: false,
        inference_mode: true,
        rank_pattern: None,
        alpha_pattern: None,
        lora_bias: false,
    };
    let path = dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&peft).expect("config serialises");
    std::fs::write(&path, text + "\n").map_err(|e| ModelError::io(&path, e))?;
    files.push(path);
    Ok(files)
}

/// Reads a PEFT LoRA folder and attaches its adapters to `model` (base frozen). Returns the
/// model and the adapter's config. Unsupported PEFT options (`DoRA`, `rsLoRA`, `fan_in_fan_out`,
/// trained biases) and tensors that match no layer are errors naming them.
pub fn load_adapter(model: CausalLm, dir: &Path) -> Result<(CausalLm, LoraConfig)> {
    let config_path = dir.join("adapter_config.json");
    let peft: PeftConfig = read_json(&config_path)?;
    let unsupported = [
        ("peft_type", peft.peft_type != "LORA"),
        ("use_dora", peft.use_dora),
        ("use_rslora", peft.use_rslora),
        ("fan_in_fan_out", peft.fan_in_fan_out),
        ("bias", peft.bias.as_deref().is_some_and(|b| b != "none")),
        ("lora_bias", peft.lora_bias),
        (
            "rank_pattern",
            peft.rank_pattern.as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "alpha_pattern",
            peft.alpha_pattern.as_ref().is_some_and(|m| !m.is_empty()),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, bad)| *bad) {
        return Err(ModelError::config(
            &config_path,
            *field,
            "this PEFT option is not supported",
        ));
    }
    let target_modules = match &peft.target_modules {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let config = LoraConfig {
        rank: peft.r,
        alpha: peft.lora_alpha,
        dropout: peft.lora_dropout,
        target_modules,
    };
    let weights = dir.join("adapter_model.safetensors");
    let mut src = SafetensorsSource::open_files(dir, &[weights])?;
    let mut model = model.no_grad();
    let device = model.device();
    let shapes: BTreeMap<String, Vec<usize>> = src.shapes();
    for (path, linear) in model.linear_layers_mut() {
        let a_name = format!("base_model.model.{path}.lora_A.weight");
        let b_name = format!("base_model.model.{path}.lora_B.weight");
        if !shapes.contains_key(&a_name) {
            continue;
        }
        let (d_in, d_out, r) = (linear.d_in(), linear.d_out(), config.rank);
        let dtype = linear.weight.val().dtype();
        let a =
            Tensor::<2>::from_data(src.take(&a_name, &[r, d_in])?, (&device, dtype)).transpose();
        let b =
            Tensor::<2>::from_data(src.take(&b_name, &[d_out, r])?, (&device, dtype)).transpose();
        linear.lora = Some(adapter(a, b, &config));
    }
    let rest = src.remaining();
    if !rest.is_empty() {
        return Err(ModelError::UnexpectedTensors {
            path: dir.join("adapter_model.safetensors"),
            names: rest.into_iter().take(10).collect(),
        });
    }
    Ok((model, config))
}

/// Folds every adapter into its base weight (`W += (alpha/r) · A B`) and removes it. The merged
/// weights keep the base's trainability (frozen after [`apply_lora`]).
pub fn merge(mut model: CausalLm) -> CausalLm {
    for (_, linear) in model.linear_layers_mut() {
        if let Some(ad) = linear.lora.take() {
            let delta = ad.delta().detach();
            let w = linear.weight.val().detach();
            let dtype = w.dtype();
            let merged = w + delta.cast(dtype);
            linear.weight = Param::from_tensor(merged).set_require_grad(false);
        }
    }
    model
}
