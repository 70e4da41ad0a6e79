//! [`GgufFile`]: a memory-mapped GGUF file's header, metadata and tensor directory, its tensors
//! checked against the file's length on open and dequantised to f32 on request.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::meta::{Cursor, MetaValue};
use super::quant::{self, GgufTensorType};
use crate::error::{ModelError, Result};

/// One tensor's entry in the GGUF directory.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    /// Dimensions as stored (innermost first, ggml's `ne`).
    pub dims: Vec<usize>,
    /// Raw `ggml_type` id.
    pub type_id: u32,
    /// Offset from the start of the data section.
    pub offset: usize,
}

/// A parsed, memory-mapped GGUF file.
pub struct GgufFile {
    pub(crate) path: PathBuf,
    mmap: Mmap,
    /// Metadata key/values.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensor directory by GGUF name.
    pub tensors: BTreeMap<String, GgufTensorInfo>,
    data_start: usize,
}

impl GgufFile {
    /// Opens and parses `path`; a bad magic, unknown value type or truncated file is an error.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only mapping kept alive by this struct; the file is not modified while
        // it is loaded.
        #[allow(unsafe_code)]
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let bad = |m: String| ModelError::weights(path, m);
        let mut c = Cursor::new(&mmap);
        if c.bytes(4).map_err(&bad)? != b"GGUF" {
            return Err(bad("not a GGUF file (bad magic)".into()));
        }
        let version = c.u32().map_err(&bad)?;
        if !(2..=3).contains(&version) {
            return Err(bad(format!(
                "GGUF version {version} is not supported (2, 3)"
            )));
        }
        let n_tensors = c.usize().map_err(&bad)?;
        let n_kv = c.usize().map_err(&bad)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string().map_err(&bad)?;
            let ty = c.u32().map_err(&bad)?;
            let value = c
                .value(ty)
                .map_err(|e| bad(format!("metadata `{key}`: {e}")))?;
            metadata.insert(key, value);
        }
        let mut tensors = BTreeMap::new();
        for _ in 0..n_tensors {
            let name = c.string().map_err(&bad)?;
            let n_dims = c.u32().map_err(&bad)? as usize;
            let dims = (0..n_dims)
                .map(|_| c.usize())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(&bad)?;
            let type_id = c.u32().map_err(&bad)?;
            let offset = c.usize().map_err(&bad)?;
            tensors.insert(
                name,
                GgufTensorInfo {
                    dims,
                    type_id,
                    offset,
                },
            );
        }
        let alignment = metadata
            .get("general.alignment")
            .and_then(MetaValue::as_u64)
            .and_then(|a| usize::try_from(a).ok())
            .unwrap_or(32);
        let data_start = c.position().div_ceil(alignment) * alignment;
        let gguf = GgufFile {
            path: path.to_path_buf(),
            mmap,
            metadata,
            tensors,
            data_start,
        };
        for (name, info) in &gguf.tensors {
            gguf.tensor_bytes(name, info)?;
        }
        Ok(gguf)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tensor_bytes(&self, name: &str, info: &GgufTensorInfo) -> Result<(GgufTensorType, &[u8])> {
        let ty = GgufTensorType::from_id(info.type_id).ok_or_else(|| {
            ModelError::weights(
                &self.path,
                format!(
                    "tensor `{name}` has ggml type {}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K",
                    info.type_id
                ),
            )
        })?;
        let (per_block, _) = ty.block();
        let row = info.dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(per_block) {
            return Err(ModelError::weights(
                &self.path,
                format!(
                    "tensor `{name}`: rows of {row} values are not whole {ty:?} blocks of {per_block}"
                ),
            ));
        }
        let n: usize = info.dims.iter().product();
        let len = ty.byte_len(n).ok_or_else(|| {
            ModelError::weights(
                &self.path,
                format!("tensor `{name}`: {n} elements is not a whole number of {ty:?} blocks"),
            )
        })?;
        let start = self.data_start + info.offset;
        self.mmap
            .get(start..start + len)
            .map(|b| (ty, b))
            .ok_or_else(|| {
                ModelError::weights(
                    &self.path,
                    format!("tensor `{name}` runs past the end of the file (truncated?)"),
                )
            })
    }

    /// The tensor dequantised to f32, with its shape in `PyTorch` order (outermost first).
    pub fn dequantized(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        let (ty, bytes) = self.tensor_bytes(name, info)?;
        let shape: Vec<usize> = info.dims.iter().rev().copied().collect();
        Ok((quant::dequantize(ty, bytes), shape))
    }

    pub(super) fn meta_u64(&self, key: &str) -> Option<u64> {
        self.metadata.get(key).and_then(MetaValue::as_u64)
    }

    /// A metadata integer as `usize` (`None` when missing or too wide for this platform).
    pub(super) fn meta_usize(&self, key: &str) -> Option<usize> {
        self.meta_u64(key).and_then(|v| usize::try_from(v).ok())
    }

    /// A metadata integer as a token id (`None` when missing or beyond `u32`).
    pub(super) fn meta_token_id(&self, key: &str) -> Option<u32> {
        self.meta_u64(key).and_then(|v| u32::try_from(v).ok())
    }

    pub(super) fn meta_f64(&self, key: &str) -> Option<f64> {
        self.metadata.get(key).and_then(MetaValue::as_f64)
    }

    /// `general.architecture`.
    pub(crate) fn architecture_name(&self) -> Option<&str> {
        self.metadata
            .get("general.architecture")
            .and_then(MetaValue::as_str)
    }
}
