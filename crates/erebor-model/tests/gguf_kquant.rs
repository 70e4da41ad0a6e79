//! K-quant GGUF tensors (Q4K, Q5K, Q6K) against the `gguf` Python package, and the import of
//! a K-quant model with llama.cpp's rope-scaling and sliding-window metadata.
//!
//! The fixtures in tests/fixtures/gguf-kquant come from `scripts/gguf_kquant_fixture.py`:
//! blocks.gguf holds raw super-blocks beside the f32 values `gguf.quants.dequantize` gives for
//! them; tiny-llama-kquant.gguf is a one-layer Llama in llama.cpp's layout, with expected.json
//! holding the SHA-256 of each dequantised tensor in Hugging Face layout and the config fields.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use erebor_model::checkpoint::{SaveOptions, save_pretrained};
use erebor_model::config::RopeScaling;
use erebor_model::weights::{GgufFile, GgufTensorType};
use erebor_model::{Checkpoint, ModelConfig, ModelError};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf-kquant")
}

#[test]
fn k_quant_blocks_dequantise_exactly_as_gguf_py() {
    let file = GgufFile::open(&fixtures().join("blocks.gguf")).unwrap();
    for (name, id, ty) in [
        ("q4_k", 12, GgufTensorType::Q4K),
        ("q5_k", 13, GgufTensorType::Q5K),
        ("q6_k", 14, GgufTensorType::Q6K),
    ] {
        assert_eq!(file.tensors[name].type_id, id);
        assert_eq!(GgufTensorType::from_id(id), Some(ty));
        assert_eq!(format!("{ty:?}"), name.to_uppercase(), "ggml's name");
        let (got, shape) = file.dequantized(name).unwrap();
        let (want, want_shape) = file.dequantized(&format!("{name}.expected")).unwrap();
        assert_eq!(shape, [3, 256]);
        assert_eq!(shape, want_shape);
        let differing: Vec<usize> = (0..got.len())
            .filter(|&i| got[i].to_bits() != want[i].to_bits())
            .collect();
        assert!(
            differing.is_empty(),
            "{name}: {} values differ from gguf.quants.dequantize, first at {}: {} vs {}",
            differing.len(),
            differing[0],
            got[differing[0]],
            want[differing[0]]
        );
        // Not a trivial block: many distinct values.
        let mut distinct: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 100, "{name}: {} distinct", distinct.len());
    }
}

fn sha256_of_f32(values: &[f32], scratch: &Path) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(scratch, bytes).unwrap();
    erebor_core::content::hash_file(scratch).unwrap().sha256
}

/// What `erebor model convert` does: load the GGUF in f32 and save a Hugging Face checkpoint.
#[test]
// The metadata values are read as written: equality is the check.
#[allow(clippy::float_cmp)]
fn k_quant_model_converts_to_the_gguf_py_values_with_its_metadata() {
    let gguf = fixtures().join("tiny-llama-kquant.gguf");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let config = Checkpoint::read_config(&gguf).unwrap();
    assert_eq!(config.rope_scaling, RopeScaling::Linear { factor: 2.0 });
    assert_eq!(config.sliding_window, Some(16));
    assert_eq!(config.window_of_layer(0), Some(16));
    assert_eq!(config.rope_theta, 500_000.0);

    let device = burn::tensor::Device::flex();
    let ckpt = Checkpoint::load(&gguf, &device, DType::F32).unwrap();
    let out = tempfile::tempdir().unwrap();
    let saved = out.path().join("hf");
    save_pretrained(&ckpt.model, &saved, None, None, &SaveOptions::default()).unwrap();

    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(saved.join("config.json")).unwrap()).unwrap();
    for (key, want) in expected["config"].as_object().unwrap() {
        assert_eq!(&written[key], want, "config.json `{key}`");
    }
    // transformers reads the written config back as the same model.
    assert_eq!(ModelConfig::from_dir(&saved).unwrap(), config);

    let bytes = std::fs::read(saved.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let scratch = out.path().join("tensor.bin");
    let tensors = expected["tensors"].as_object().unwrap();
    assert_eq!(st.names().len(), tensors.len());
    for (name, want) in tensors {
        let view = st.tensor(name).unwrap();
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| usize::try_from(d.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let sum: f64 = values.iter().map(|v| f64::from(*v)).sum();
        assert_eq!(
            sha256_of_f32(&values, &scratch),
            want["sha256"].as_str().unwrap(),
            "{name} ({}): sum {sum} vs gguf-py {}",
            want["type"],
            want["sum"]
        );
    }
}

/// A copy of the model fixture with some metadata values replaced (same types, same lengths)
/// or appended.
fn patched(edit: impl Fn(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let mut bytes = std::fs::read(fixtures().join("tiny-llama-kquant.gguf")).unwrap();
    edit(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patched.gguf");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not in the fixture", String::from_utf8_lossy(from)));
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn unsupported_rope_scaling_and_window_metadata_are_refused_naming_the_key() {
    // `linear` → `yarn\0\0`: same length is impossible, so change the string's length field too.
    let (_d, yarn) = patched(|b| {
        let key = b"llama.rope.scaling.type";
        let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
        // type id (u32 = 8), then u64 length 6 and "linear"
        assert_eq!(&b[at + 12..at + 18], b"linear");
        b[at + 12..at + 18].copy_from_slice(b"yarn__");
    });
    let err = Checkpoint::read_config(&yarn).unwrap_err();
    assert!(
        matches!(&err, ModelError::Config { field, .. } if field == "llama.rope.scaling.type")
            && err.to_string().contains("yarn__"),
        "{err}"
    );

    // The window on a Qwen2 GGUF names no layers.
    let (_d, qwen) = patched(|b| {
        replace(b, b"\x05\0\0\0\0\0\0\0llama", b"\x05\0\0\0\0\0\0\0qwen2");
        for key in [
            "context_length",
            "embedding_length",
            "block_count",
            "feed_forward_length",
            "attention.head_count",
            "attention.key_length",
            "attention.value_length",
            "rope.dimension_count",
            "attention.layer_norm_rms_epsilon",
            "rope.freq_base",
            "rope.scaling.type",
            "rope.scaling.factor",
            "attention.sliding_window",
        ] {
            replace(
                b,
                format!("llama.{key}").as_bytes(),
                format!("qwen2.{key}").as_bytes(),
            );
        }
        // head_count_kv after head_count, whose prefix it shares.
        replace(
            b,
            b"llama.attention.head_count_kv",
            b"qwen2.attention.head_count_kv",
        );
    });
    let err = Checkpoint::read_config(&qwen).unwrap_err();
    assert!(
        matches!(&err, ModelError::Config { field, .. } if field == "qwen2.attention.sliding_window"),
        "{err}"
    );
}
