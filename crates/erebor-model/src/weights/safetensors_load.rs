//! Reading `model.safetensors` or a sharded `model.safetensors.index.json` (f32, f16, bf16).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use memmap2::Mmap;
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorInfo};
use serde::Deserialize;

use crate::error::{ModelError, Result, read_json};
use crate::model::WeightSource;

/// The index file of a sharded checkpoint.
#[derive(Debug, Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
}

/// Tensors of one or several safetensors files, memory-mapped.
pub struct SafetensorsSource {
    origin: PathBuf,
    files: Vec<MappedFile>,
    tensors: HashMap<String, (usize, TensorInfo)>,
    taken: HashSet<String>,
}

fn map_file(path: &Path) -> Result<MappedFile> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: the mapping is read-only and lives as long as this source; checkpoints are not
    // modified while a model loads from them (the same assumption transformers and
    // safetensors' own loaders make).
    #[allow(unsafe_code)]
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
    let (header_len, _) = SafeTensors::read_metadata(&mmap)
        .map_err(|e| ModelError::weights(path, format!("not a valid safetensors file: {e}")))?;
    Ok(MappedFile {
        path: path.to_path_buf(),
        mmap,
        data_start: 8 + header_len,
    })
}

impl SafetensorsSource {
    /// Opens the weights of a checkpoint folder: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.is_file() {
            Self::open_files(dir, &[single])
        } else if index.is_file() {
            let idx: ShardIndex = read_json(&index)?;
            let mut shards: Vec<String> = idx.weight_map.values().cloned().collect();
            shards.sort();
            shards.dedup();
            let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            let source = Self::open_files(dir, &paths)?;
            for (name, shard) in &idx.weight_map {
                let found = source
                    .tensors
                    .get(name)
                    .map(|(i, _)| &source.files[*i].path);
                if found != Some(&dir.join(shard)) {
                    return Err(ModelError::weights(
                        &index,
                        format!("weight_map puts `{name}` in {shard}, which does not contain it"),
                    ));
                }
            }
            Ok(source)
        } else if dir.join("pytorch_model.bin").is_file() {
            Err(ModelError::weights(
                dir,
                "has only pytorch_model.bin; convert it to safetensors (transformers: save_pretrained(safe_serialization=True))",
            ))
        } else {
            Err(ModelError::MissingFile {
                path: single,
                what: "model weights (model.safetensors or model.safetensors.index.json)".into(),
            })
        }
    }

    /// Opens the given safetensors files; a tensor name in two files is an error.
    pub(crate) fn open_files(origin: &Path, paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        let mut tensors = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let mapped = map_file(path)?;
            let (_, meta) = SafeTensors::read_metadata(&mapped.mmap).map_err(|e| {
                ModelError::weights(path, format!("not a valid safetensors file: {e}"))
            })?;
            for (name, info) in meta.tensors() {
                if tensors.insert(name.clone(), (i, info.clone())).is_some() {
                    return Err(ModelError::weights(
                        path,
                        format!("tensor `{name}` appears in two shards"),
                    ));
                }
            }
            files.push(mapped);
        }
        Ok(SafetensorsSource {
            origin: origin.to_path_buf(),
            files,
            tensors,
            taken: HashSet::new(),
        })
    }

    /// Names and shapes of all tensors in the files.
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.tensors
            .iter()
            .map(|(n, (_, info))| (n.clone(), info.shape.clone()))
            .collect()
    }

    /// The dtype name (`F32`, `BF16`...) the files store most parameters in.
    pub fn dominant_dtype(&self) -> Option<String> {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for (_, info) in self.tensors.values() {
            *count.entry(format!("{:?}", info.dtype)).or_default() +=
                info.shape.iter().product::<usize>();
        }
        count.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| d)
    }
}

impl WeightSource for SafetensorsSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let (file_idx, info) = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.origin.clone(),
                name: name.to_string(),
            })?;
        let file = &self.files[*file_idx];
        if info.shape != shape {
            return Err(ModelError::ShapeMismatch {
                path: file.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        let dtype = match info.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::weights(
                    &file.path,
                    format!("tensor `{name}` has dtype {other:?}; supported: F32, F16, BF16"),
                ));
            }
        };
        let (start, end) = info.data_offsets;
        let bytes = file.mmap[file.data_start + start..file.data_start + end].to_vec();
        self.taken.insert(name.to_string());
        Ok(TensorData::from_bytes_vec(bytes, shape.to_vec(), dtype))
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn remaining(&self) -> Vec<String> {
        self.tensors
            .keys()
            .filter(|n| !self.taken.contains(*n))
            .cloned()
            .collect()
    }

    fn origin(&self) -> &Path {
        &self.origin
    }
}
