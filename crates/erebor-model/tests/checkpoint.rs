//! Saving and loading Hugging Face folders: bit-exact round trips (single file and shards),
//! reduced-precision saves, both `RoPE` spellings, seeded random init, and the errors for broken
//! checkpoints (truncated weights, wrong shapes, missing config keys, missing and unexpected
//! tensors, unknown architectures).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{DType, Int, Tensor, TensorData};
use common::shared;
use erebor_model::weights::{SafetensorsSource, SaveDType};
use erebor_model::{CausalLm, Checkpoint, ModelConfig, ModelError, SaveOptions, save_pretrained};
use serde_json::Value;

fn logits(model: &CausalLm) -> Vec<f32> {
    let prompt: Vec<i64> = vec![5, 17, 300, 42, 7, 99, 511, 3];
    let ids = Tensor::<2, Int>::from_data(TensorData::new(prompt, [1, 8]), &model.device());
    model
        .forward(ids)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

/// Every tensor of a safetensors folder as raw bytes.
fn tensor_bytes(dir: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    use erebor_model::model::WeightSource;
    let mut src = SafetensorsSource::open_dir(dir).unwrap();
    let shapes = src.shapes();
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let data = src.take(&name, &shape).unwrap();
            (name, (shape, data.as_bytes().to_vec()))
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(v.as_object_mut().unwrap());
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn save_then_load_is_bit_exact_single_and_sharded() {
    for arch in ["llama", "qwen2"] {
        let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
            return;
        };
        let device = common::device();
        let ckpt = Checkpoint::load(&dir, &device, DType::F32).unwrap();
        let original = tensor_bytes(&dir);
        for max_shard in [usize::MAX, 40_000] {
            let out = tempfile::tempdir().unwrap();
            let opts = SaveOptions {
                dtype: SaveDType::F32,
                max_shard_bytes: max_shard,
            };
            let files = save_pretrained(
                &ckpt.model,
                out.path(),
                None,
                ckpt.raw_config.as_ref(),
                &opts,
            )
            .unwrap();
            let sharded = out.path().join("model.safetensors.index.json").is_file();
            assert_eq!(sharded, max_shard != usize::MAX, "{arch}: {files:?}");
            assert_eq!(
                tensor_bytes(out.path()),
                original,
                "{arch}: tensors differ after saving"
            );
            let back = Checkpoint::load(out.path(), &device, DType::F32).unwrap();
            assert_eq!(
                logits(&back.model),
                logits(&ckpt.model),
                "{arch}: logits differ after reload"
            );
            let saved: Value = serde_json::from_str(
                &std::fs::read_to_string(out.path().join("config.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(saved["torch_dtype"], "float32");
            assert_eq!(
                saved["rope_parameters"],
                ckpt.raw_config.as_ref().unwrap()["rope_parameters"]
            );
        }
    }
}

#[test]
fn half_precision_saves_load_back_close() {
    let Some(dir) = shared("fixtures/hf-tiny/mistral") else {
        return;
    };
    let device = common::device();
    let ckpt = Checkpoint::load(&dir, &device, DType::F32).unwrap();
    let reference = logits(&ckpt.model);
    for (dtype, tol) in [(SaveDType::BF16, 3e-2), (SaveDType::F16, 3e-3)] {
        let out = tempfile::tempdir().unwrap();
        let opts = SaveOptions {
            dtype,
            ..SaveOptions::default()
        };
        save_pretrained(
            &ckpt.model,
            out.path(),
            None,
            ckpt.raw_config.as_ref(),
            &opts,
        )
        .unwrap();
        let src = SafetensorsSource::open_dir(out.path()).unwrap();
        assert_eq!(
            src.dominant_dtype().unwrap(),
            format!("{dtype:?}").to_uppercase()
        );
        let back = Checkpoint::load(out.path(), &device, DType::F32).unwrap();
        let got = logits(&back.model);
        let d = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(d > 0.0 && d < tol, "{dtype:?}: max diff {d}");
    }
}

#[test]
// The values come from JSON literals unchanged: equality is the check.
#[allow(clippy::float_cmp)]
fn both_rope_spellings_give_the_same_config() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir, tmp.path());
    let new_style = ModelConfig::from_dir(tmp.path()).unwrap();
    edit_config(tmp.path(), |m| {
        m.remove("rope_parameters");
        m.insert("rope_theta".into(), Value::from(10000.0));
    });
    let old_style = ModelConfig::from_dir(tmp.path()).unwrap();
    assert_eq!(new_style, old_style);
    edit_config(tmp.path(), |m| {
        m.insert("rope_theta".into(), Value::from(500_000.0));
        m.insert(
            "rope_scaling".into(),
            serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
        );
    });
    let scaled = ModelConfig::from_dir(tmp.path()).unwrap();
    assert_eq!(scaled.rope_theta, 500_000.0);
    assert!(
        matches!(scaled.rope_scaling, erebor_model::config::RopeScaling::Llama3 { factor, .. } if factor == 8.0)
    );
}

#[test]
fn random_init_is_seeded_and_saves_as_a_loadable_checkpoint() {
    let Some(dir) = shared("fixtures/hf-tiny/qwen2") else {
        return;
    };
    let config = ModelConfig::from_dir(&dir).unwrap();
    let device = common::device();
    let a = CausalLm::random(&config, 11, 0.02, &device, DType::F32);
    let b = CausalLm::random(&config, 11, 0.02, &device, DType::F32);
    let c = CausalLm::random(&config, 12, 0.02, &device, DType::F32);
    assert_eq!(logits(&a), logits(&b));
    assert_ne!(logits(&a), logits(&c));
    let emb = a
        .embed_tokens
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let n = emb.len() as f64;
    let mean = emb.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let std = (emb
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    assert!(
        mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3,
        "mean {mean} std {std}"
    );
    let out = tempfile::tempdir().unwrap();
    save_pretrained(&a, out.path(), None, None, &SaveOptions::default()).unwrap();
    assert_eq!(ModelConfig::from_dir(out.path()).unwrap(), config);
    let back = Checkpoint::load(out.path(), &device, DType::F32).unwrap();
    assert_eq!(logits(&back.model), logits(&a));
}

fn load_err(dir: &Path) -> ModelError {
    Checkpoint::load(dir, &common::device(), DType::F32).unwrap_err()
}

/// A fresh copy of the tiny Llama checkpoint to break, or `None` without the shared fixtures.
fn tiny_llama_copies() -> Option<impl Fn() -> tempfile::TempDir> {
    let dir = shared("fixtures/hf-tiny/llama")?;
    Some(move || {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&dir, tmp.path());
        tmp
    })
}

#[test]
fn broken_or_mismatched_weights_are_clear_errors() {
    let Some(fresh) = tiny_llama_copies() else {
        return;
    };

    // Truncated weights.
    let t = fresh();
    let w = t.path().join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_err(t.path());
    assert!(
        matches!(&err, ModelError::Weights { path, .. } if path.ends_with("model.safetensors")),
        "{err}"
    );

    // A config whose MLP width does not match the weights.
    let t = fresh();
    edit_config(t.path(), |m| {
        m.insert("intermediate_size".into(), Value::from(96));
    });
    let err = load_err(t.path());
    match &err {
        ModelError::ShapeMismatch {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "model.layers.0.mlp.gate_proj.weight");
            assert_eq!(
                (expected.as_slice(), found.as_slice()),
                (&[96, 64][..], &[128, 64][..])
            );
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }

    // More layers in the config than in the weights, and fewer.
    let t = fresh();
    edit_config(t.path(), |m| {
        m.insert("num_hidden_layers".into(), Value::from(3));
    });
    let err = load_err(t.path());
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "model.layers.2.input_layernorm.weight"),
        "{err}"
    );
    let t = fresh();
    edit_config(t.path(), |m| {
        m.insert("num_hidden_layers".into(), Value::from(1));
    });
    let err = load_err(t.path());
    assert!(
        matches!(&err, ModelError::UnexpectedTensors { names, .. } if names.iter().all(|n| n.starts_with("model.layers.1."))),
        "{err}"
    );

    // No weights at all.
    let t = fresh();
    std::fs::remove_file(t.path().join("model.safetensors")).unwrap();
    let err = load_err(t.path());
    assert!(matches!(&err, ModelError::MissingFile { .. }), "{err}");
}

#[test]
fn broken_configs_are_clear_errors() {
    let Some(fresh) = tiny_llama_copies() else {
        return;
    };

    // A missing config key.
    let t = fresh();
    edit_config(t.path(), |m| {
        m.remove("hidden_size");
    });
    let err = load_err(t.path());
    assert!(
        matches!(&err, ModelError::Config { field, .. } if field == "hidden_size"),
        "{err}"
    );

    // An architecture erebor does not implement, and a config that is not JSON.
    let t = fresh();
    edit_config(t.path(), |m| {
        m.insert(
            "architectures".into(),
            serde_json::json!(["GPT2LMHeadModel"]),
        );
        m.insert("model_type".into(), Value::from("gpt2"));
    });
    let err = load_err(t.path());
    assert!(err.to_string().contains("GPT2LMHeadModel"), "{err}");
    let t = fresh();
    std::fs::write(
        t.path().join("config.json"),
        "{\"hidden_size\": 64,\n \"vocab_size\": }",
    )
    .unwrap();
    let err = load_err(t.path());
    assert!(matches!(&err, ModelError::Json { line: 2, .. }), "{err}");
}
