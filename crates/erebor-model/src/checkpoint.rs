//! Loading a model (and its tokenizer) from a Hugging Face folder or a GGUF file, and saving it
//! back as a Hugging Face folder that transformers and vLLM load.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use serde_json::Value;

use crate::config::{HfConfig, ModelConfig};
use crate::error::{ModelError, Result, read_json};
use crate::model::CausalLm;
use crate::tokenizer::Tokenizer;
use crate::weights::{GgufSource, SafetensorsSource, SafetensorsWriter, SaveDType};

/// Where the weights came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsFormat {
    /// Hugging Face safetensors (dtype name as stored, e.g. `F32`, `BF16`).
    Safetensors(String),
    /// GGUF.
    Gguf,
    /// Random initialisation.
    Random,
}

/// A loaded model with its tokenizer and the files it came from.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model.
    pub model: CausalLm,
    /// The tokenizer, when the folder has a tokenizer.json.
    pub tokenizer: Option<Tokenizer>,
    /// The folder (or the GGUF file's folder).
    pub dir: PathBuf,
    /// config.json as read, kept so that saving preserves fields erebor does not use.
    pub raw_config: Option<Value>,
    /// Weight format of the source.
    pub format: WeightsFormat,
}

impl Checkpoint {
    /// Loads `path`: a Hugging Face folder (config.json + safetensors), a `.gguf` file, or a
    /// folder holding exactly one `.gguf` file. Weights are converted to `dtype` on `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Self> {
        let path = path.as_ref();
        if path.is_file() {
            return Self::load_gguf(path, device, dtype);
        }
        if !path.is_dir() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
                what: "a checkpoint folder or .gguf file".into(),
            });
        }
        let config_path = path.join("config.json");
        let has_weights = path.join("model.safetensors").is_file()
            || path.join("model.safetensors.index.json").is_file();
        if !has_weights && let Some(gguf) = single_gguf(path)? {
            return Self::load_gguf(&gguf, device, dtype);
        }
        let config = ModelConfig::from_dir(path)?;
        let raw: Value = read_json(&config_path)?;
        let mut src = SafetensorsSource::open_dir(path)?;
        let stored = src.dominant_dtype().unwrap_or_else(|| "F32".into());
        let model = CausalLm::from_source(&config, &mut src, device, dtype)?;
        tracing::info!(dir = %path.display(), params = config.num_parameters(), stored = %stored, "loaded checkpoint");
        Ok(Checkpoint {
            model,
            tokenizer: load_tokenizer_if_present(path)?,
            dir: path.to_path_buf(),
            raw_config: Some(raw),
            format: WeightsFormat::Safetensors(stored),
        })
    }

    fn load_gguf(file: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let mut src = GgufSource::open(file)?;
        let config = src.config().clone();
        let model = CausalLm::from_source(&config, &mut src, device, dtype)?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok(Checkpoint {
            model,
            tokenizer: load_tokenizer_if_present(&dir)?,
            dir,
            raw_config: None,
            format: WeightsFormat::Gguf,
        })
    }

    /// Only the config of `path` (folder or GGUF), without loading weights.
    pub fn read_config(path: impl AsRef<Path>) -> Result<ModelConfig> {
        let path = path.as_ref();
        if path.is_file() {
            return crate::weights::GgufFile::open(path)?.model_config();
        }
        let has_weights = path.join("model.safetensors").is_file()
            || path.join("model.safetensors.index.json").is_file();
        if !has_weights && let Some(gguf) = single_gguf(path)? {
            return crate::weights::GgufFile::open(&gguf)?.model_config();
        }
        let hf: HfConfig = read_json(&path.join("config.json"))?;
        ModelConfig::from_hf(&hf, &path.join("config.json"))
    }
}

fn single_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let p = entry.map_err(|e| ModelError::io(dir, e))?.path();
        if p.extension().is_some_and(|e| e == "gguf") {
            found.push(p);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ModelError::weights(
            dir,
            "holds several .gguf files; name one",
        )),
    }
}

fn load_tokenizer_if_present(dir: &Path) -> Result<Option<Tokenizer>> {
    if dir.join("tokenizer.json").is_file() {
        Ok(Some(Tokenizer::from_dir(dir)?))
    } else {
        Ok(None)
    }
}

/// Options for [`save_pretrained`].
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Dtype of the written weights.
    pub dtype: SaveDType,
    /// Largest shard in bytes (transformers' default is 5 GB).
    pub max_shard_bytes: usize,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            dtype: SaveDType::F32,
            max_shard_bytes: 5_000_000_000,
        }
    }
}

/// Writes `model` to `dir` in Hugging Face layout: `config.json` (the original one with the
/// dtype updated when `raw_config` is given), `generation_config.json`, safetensors (sharded
/// over the limit), and the tokenizer's files (`tokenizer.json`, `tokenizer_config.json` with
/// its chat template, `special_tokens_map.json`, `chat_template.jinja`) copied. LoRA adapters
/// are not written (merge them first with [`crate::lora::merge`], or save them with
/// [`crate::lora::save_adapter`]). Returns the files written.
pub fn save_pretrained(
    model: &CausalLm,
    dir: &Path,
    tokenizer: Option<&Tokenizer>,
    raw_config: Option<&Value>,
    options: &SaveOptions,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut written = Vec::new();
    let dtype_name = options.dtype.torch_name();
    let config = match raw_config {
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            m.insert("torch_dtype".into(), Value::from(dtype_name));
            if m.contains_key("dtype") {
                m.insert("dtype".into(), Value::from(dtype_name));
            }
            Value::Object(m)
        }
        _ => model.config().to_hf_json(dtype_name),
    };
    let config_path = dir.join("config.json");
    write_json(&config_path, &config)?;
    written.push(config_path);

    let gen_path = dir.join("generation_config.json");
    let c = model.config();
    let gen_config = serde_json::json!({
        "bos_token_id": c.bos_token_id,
        "eos_token_id": match c.eos_token_ids.as_slice() {
            [] => Value::Null,
            [one] => Value::from(*one),
            many => Value::from(many.to_vec()),
        },
    });
    write_json(&gen_path, &gen_config)?;
    written.push(gen_path);

    let mut writer = SafetensorsWriter::new(dir, options.dtype, options.max_shard_bytes);
    model.export_hf(&mut |name, data| writer.add(name, data))?;
    written.extend(writer.finish()?);

    if let Some(tok) = tokenizer {
        for src in tok.files() {
            let Some(name) = src.file_name() else {
                continue;
            };
            let dst = dir.join(name);
            if dst != src {
                std::fs::copy(&src, &dst).map_err(|e| ModelError::io(&dst, e))?;
                make_owner_writable(&dst)?;
            }
            written.push(dst);
        }
    }
    Ok(written)
}

/// Copies keep the source's mode; a read-only source (e.g. ../shared) must not give a read-only
/// copy that a later save cannot overwrite.
fn make_owner_writable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut perms = std::fs::metadata(path)
            .map_err(|e| ModelError::io(path, e))?
            .permissions();
        perms.set_mode(perms.mode() | 0o200);
        std::fs::set_permissions(path, perms).map_err(|e| ModelError::io(path, e))?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    std::fs::write(path, text + "\n").map_err(|e| ModelError::io(path, e))
}
