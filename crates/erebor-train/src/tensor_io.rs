//! f32 tensors to and from safetensors files, for checkpoints and the reference log-probs.

use crate::TrainError;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// A host tensor with its name and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Name in the file.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// A named tensor.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            values,
        }
    }
}

/// Writes `tensors` as f32 little-endian to `path` (safetensors writes a temporary file and
/// renames it), with optional string metadata.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: Option<Metadata>,
) -> Result<(), TrainError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (tensor, data) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, tensor.shape.clone(), data).map_err(|e| {
            TrainError::Checkpoint {
                path: path.to_owned(),
                message: format!("tensor `{}`: {e}", tensor.name),
            }
        })?;
        views.push((tensor.name.clone(), view));
    }
    safetensors::serialize_to_file(views, metadata, path).map_err(|e| TrainError::Checkpoint {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io(path, e))
}

/// String metadata of a safetensors file.
pub type Metadata = HashMap<String, String>;

/// Reads every tensor of an f32 safetensors file, and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(Vec<NamedTensor>, Option<Metadata>), TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.push(NamedTensor::new(name, view.shape().to_vec(), values));
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((tensors, metadata.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let tensors = vec![
            NamedTensor::new(
                "a.weight",
                vec![2, 2],
                vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE],
            ),
            NamedTensor::new("b", vec![1], vec![7.0]),
        ];
        let metadata = HashMap::from([("a.step".to_owned(), "3".to_owned())]);
        write_safetensors(&path, &tensors, Some(metadata.clone())).unwrap();
        let (back, meta) = read_safetensors(&path).unwrap();
        assert_eq!(back, tensors);
        assert_eq!(meta, Some(metadata));
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        write_safetensors(&path, &[NamedTensor::new("x", vec![4], vec![0.0; 4])], None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let error = read_safetensors(&path).unwrap_err().to_string();
        assert!(error.contains("t.safetensors"), "{error}");
    }
}
