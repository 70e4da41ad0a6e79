//! Writing tensors as Hugging Face safetensors: `model.safetensors`, or shards
//! `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json` over a size limit.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use safetensors::tensor::{Dtype, View};
use serde_json::json;

use crate::error::{ModelError, Result};

/// The dtype tensors are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDType {
    /// float32.
    F32,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
}

impl SaveDType {
    /// Parses `f32|float32`, `f16|float16|fp16`, `bf16|bfloat16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Some(SaveDType::F32),
            "f16" | "float16" | "fp16" | "half" => Some(SaveDType::F16),
            "bf16" | "bfloat16" => Some(SaveDType::BF16),
            _ => None,
        }
    }

    /// The name transformers writes as `torch_dtype`.
    pub(crate) fn torch_name(self) -> &'static str {
        match self {
            SaveDType::F32 => "float32",
            SaveDType::F16 => "float16",
            SaveDType::BF16 => "bfloat16",
        }
    }

    pub(crate) fn burn(self) -> DType {
        match self {
            SaveDType::F32 => DType::F32,
            SaveDType::F16 => DType::F16,
            SaveDType::BF16 => DType::BF16,
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            SaveDType::F32 => Dtype::F32,
            SaveDType::F16 => Dtype::F16,
            SaveDType::BF16 => Dtype::BF16,
        }
    }
}

/// One tensor ready to be written.
struct Blob {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Blob {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes tensors in shards of at most `max_shard_bytes`, flushing each shard to disk as soon
/// as it is full so that at most one shard is held in memory.
pub(crate) struct SafetensorsWriter {
    dir: PathBuf,
    dtype: SaveDType,
    max_shard_bytes: usize,
    current: Vec<(String, Blob)>,
    current_bytes: usize,
    /// Written shards: temporary path and the names in it.
    written: Vec<(PathBuf, Vec<String>)>,
    total_bytes: usize,
}

impl SafetensorsWriter {
    /// A writer into `dir` converting every tensor to `dtype`.
    pub(crate) fn new(dir: &Path, dtype: SaveDType, max_shard_bytes: usize) -> Self {
        SafetensorsWriter {
            dir: dir.to_path_buf(),
            dtype,
            max_shard_bytes: max_shard_bytes.max(1),
            current: Vec::new(),
            current_bytes: 0,
            written: Vec::new(),
            total_bytes: 0,
        }
    }

    /// Adds one tensor (converted to the writer's dtype).
    pub(crate) fn add(&mut self, name: String, data: TensorData) -> Result<()> {
        let shape = data.shape().as_slice().to_vec();
        let bytes = data.convert_dtype(self.dtype.burn()).into_bytes().to_vec();
        if self.current_bytes > 0 && self.current_bytes + bytes.len() > self.max_shard_bytes {
            self.flush()?;
        }
        self.current_bytes += bytes.len();
        self.total_bytes += bytes.len();
        let blob = Blob {
            dtype: self.dtype.safetensors(),
            shape,
            bytes,
        };
        self.current.push((name, blob));
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let path = self.dir.join(format!(
            ".erebor-shard-{:05}.safetensors.tmp",
            self.written.len() + 1
        ));
        write_shard(&path, &self.current)?;
        let names = self.current.drain(..).map(|(n, _)| n).collect();
        self.written.push((path, names));
        self.current_bytes = 0;
        Ok(())
    }

    /// Writes the last shard, renames the shards to their final names and writes the index
    /// when there is more than one; returns the files written.
    ///
    /// # Panics
    /// Never in practice: the index holds only strings and numbers, which always serialise.
    pub(crate) fn finish(mut self) -> Result<Vec<PathBuf>> {
        if !self.current.is_empty() || self.written.is_empty() {
            self.flush()?;
        }
        let n = self.written.len();
        let rename =
            |from: &Path, to: &Path| std::fs::rename(from, to).map_err(|e| ModelError::io(to, e));
        if n == 1 {
            let path = self.dir.join("model.safetensors");
            rename(&self.written[0].0, &path)?;
            return Ok(vec![path]);
        }
        let mut weight_map = BTreeMap::new();
        let mut paths = Vec::new();
        for (i, (tmp, names)) in self.written.iter().enumerate() {
            let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
            for name in names {
                weight_map.insert(name.clone(), file.clone());
            }
            let path = self.dir.join(&file);
            rename(tmp, &path)?;
            paths.push(path);
        }
        let index = json!({"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map});
        let index_path = self.dir.join("model.safetensors.index.json");
        let text = serde_json::to_string_pretty(&index).expect("index serialises");
        std::fs::write(&index_path, text + "\n").map_err(|e| ModelError::io(&index_path, e))?;
        paths.push(index_path);
        Ok(paths)
    }
}

fn write_shard(path: &Path, shard: &[(String, Blob)]) -> Result<()> {
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let views: Vec<(&str, &Blob)> = shard.iter().map(|(n, b)| (n.as_str(), b)).collect();
    safetensors::serialize_to_file(views, Some(meta), path)
        .map_err(|e| ModelError::weights(path, format!("cannot write safetensors: {e}")))
}
