//! Logits and greedy continuations of the committed tests/fixtures/hf-extra checkpoints against
//! transformers (`scripts/hf_extra_fixtures.py`, float32, eager attention): Mistral with a sliding
//! window shorter than the prompts, Qwen2 with sliding-window layers above `max_window_layers`,
//! Llama with `rope_type: llama3` scaling, and Llama with `attention_bias`.
//!
//! Each case also checks that its feature matters: the same weights without the window or the
//! scaling give logits far from transformers', so a loader that dropped the setting would fail.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use common::{floats, ids, json, max_abs_diff};
use erebor_model::config::RopeScaling;
use erebor_model::{Checkpoint, GenerationConfig, generate};
use serde_json::Value;

/// f32 logits of a few units agree to ~1e-6 between implementations (measured: at most 9.2e-7
/// here); 1e-5 leaves room for summation order and is far below any masking, `RoPE` or bias
/// mistake (> 1e-2 here).
const TOLERANCE: f64 = 1e-5;

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf-extra")
        .join(case)
}

/// Largest logit difference from transformers over every prompt of the case.
fn largest_diff(dir: &Path, reference: &Value) -> f64 {
    let device = common::device();
    let model = Checkpoint::load(dir, &device, DType::F32).unwrap().model;
    let mut largest = 0.0f64;
    for prompt in reference["prompts"].as_array().unwrap() {
        let got = common::prompt_logits(&model, &ids(&prompt["ids"]));
        largest = largest.max(max_abs_diff(&got, &floats(&prompt["logits"])));
    }
    largest
}

/// Logits of every prompt within [`TOLERANCE`], the same argmax at every position, the same
/// greedy continuation alone and with the other prompt in one left-padded batch.
fn check_case(case: &str) {
    let dir = case_dir(case);
    let reference = json(&dir.join("reference.json"));
    let device = common::device();
    let model = Checkpoint::load(&dir, &device, DType::F32).unwrap().model;
    let prompts: Vec<Vec<u32>> = reference["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ids(&p["ids"]))
        .collect();
    for (prompt, want) in prompts.iter().zip(reference["prompts"].as_array().unwrap()) {
        let got = common::prompt_logits(&model, prompt);
        let d = max_abs_diff(&got, &floats(&want["logits"]));
        eprintln!("{case}, {} tokens: max logit diff {d:e}", prompt.len());
        assert!(d <= TOLERANCE, "{case}: logits differ by {d}");
        let vocab = got.len() / prompt.len();
        let argmax: Vec<u32> = got
            .chunks(vocab)
            .map(|row| {
                let best = (0..vocab)
                    .max_by(|a, b| row[*a].total_cmp(&row[*b]))
                    .unwrap();
                u32::try_from(best).unwrap()
            })
            .collect();
        assert_eq!(argmax, ids(&want["argmax"]), "{case}: argmax");
    }
    let greedy = GenerationConfig {
        max_new_tokens: 8,
        ..GenerationConfig::default()
    };
    let batched = generate(&model, None, &prompts, &greedy).unwrap();
    for (i, want) in reference["prompts"].as_array().unwrap().iter().enumerate() {
        let want = ids(&want["greedy"]);
        let alone = generate(&model, None, std::slice::from_ref(&prompts[i]), &greedy).unwrap();
        assert_eq!(alone[0].token_ids, want, "{case}: greedy of prompt {i}");
        assert_eq!(
            batched[i].token_ids, want,
            "{case}: batched greedy of prompt {i}"
        );
    }
}

/// A copy of the case's checkpoint with `edit` applied to its config.json.
fn edited(case: &str, edit: impl Fn(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(case);
    std::fs::create_dir_all(&dir).unwrap();
    let src = case_dir(case);
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut config = json(&src.join("config.json"));
    edit(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    (tmp, dir)
}

#[test]
fn mistral_sliding_window_matches_transformers() {
    let dir = case_dir("mistral-sliding");
    let config = erebor_model::ModelConfig::from_dir(&dir).unwrap();
    assert_eq!(config.sliding_window, Some(4));
    check_case("mistral-sliding");
    let (_tmp, full) = edited("mistral-sliding", |c| c["sliding_window"] = Value::Null);
    let d = largest_diff(&full, &json(&dir.join("reference.json")));
    assert!(d > 1e-2, "without the window the logits differ by only {d}");
}

#[test]
fn qwen2_sliding_window_layers_match_transformers() {
    let dir = case_dir("qwen2-sliding");
    let config = erebor_model::ModelConfig::from_dir(&dir).unwrap();
    let windows: Vec<Option<usize>> = (0..3).map(|l| config.window_of_layer(l)).collect();
    assert_eq!(windows, [None, Some(4), Some(4)]);
    check_case("qwen2-sliding");
    let (_tmp, off) = edited("qwen2-sliding", |c| c["use_sliding_window"] = false.into());
    let d = largest_diff(&off, &json(&dir.join("reference.json")));
    assert!(d > 1e-2, "without the window the logits differ by only {d}");
    // The window on every layer is another model too: layer 0 must stay full attention.
    let (_tmp2, all) = edited("qwen2-sliding", |c| {
        c["layer_types"] = serde_json::json!(vec!["sliding_attention"; 3]);
        c["max_window_layers"] = 0.into();
    });
    let d = largest_diff(&all, &json(&dir.join("reference.json")));
    assert!(
        d > 1e-2,
        "windowing layer 0 too changes the logits by only {d}"
    );
}

#[test]
// The factor is read from the config as written: equality is the check.
#[allow(clippy::float_cmp)]
fn llama3_rope_scaling_matches_transformers() {
    let dir = case_dir("llama3-rope");
    let config = erebor_model::ModelConfig::from_dir(&dir).unwrap();
    assert!(
        matches!(config.rope_scaling, RopeScaling::Llama3 { factor, original_max_position_embeddings: 128, .. } if factor == 8.0),
        "{:?}",
        config.rope_scaling
    );
    check_case("llama3-rope");
    let (_tmp, plain) = edited("llama3-rope", |c| {
        c["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 10000.0});
    });
    let d = largest_diff(&plain, &json(&dir.join("reference.json")));
    assert!(
        d > 1e-2,
        "without the scaling the logits differ by only {d}"
    );
    // With high_freq_factor 2 the band edge moves to 64 and the one smoothed frequency
    // (wavelength 62.8) is kept instead: the smoothing alone must show.
    let (_tmp2, edge) = edited("llama3-rope", |c| {
        c["rope_parameters"]["high_freq_factor"] = 2.0.into();
    });
    let d = largest_diff(&edge, &json(&dir.join("reference.json")));
    assert!(
        d > 1e-2,
        "without the smoothed band the logits differ by only {d}"
    );
}

#[test]
fn llama_attention_bias_matches_transformers() {
    let dir = case_dir("llama-bias");
    let config = erebor_model::ModelConfig::from_dir(&dir).unwrap();
    assert!(config.qkv_bias && config.o_bias && !config.mlp_bias);
    check_case("llama-bias");
}

/// The llama3-rope model as llama.cpp's converter writes it (`scripts/hf_extra_fixtures.py`):
/// the scaling as a `rope_freqs.weight` tensor of per-frequency divisors, which the import
/// turns back into `rope_type: llama3`, giving transformers' logits.
#[test]
fn llama3_gguf_with_rope_freqs_matches_transformers() {
    let gguf = case_dir("llama3-rope.gguf");
    let config = Checkpoint::read_config(&gguf).unwrap();
    assert_eq!(
        config.rope_scaling,
        RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 128,
        }
    );
    let reference = json(&case_dir("llama3-rope").join("reference.json"));
    let d = largest_diff(&gguf, &reference);
    eprintln!("llama3-rope.gguf: max logit diff {d:e}");
    assert!(d <= TOLERANCE, "GGUF logits differ by {d}");

    // Divisors no llama3 scaling gives (2 on the kept frequency) are refused, naming the tensor.
    let file = erebor_model::weights::GgufFile::open(&gguf).unwrap();
    let (divisors, _) = file.dequantized("rope_freqs.weight").unwrap();
    let stored: Vec<u8> = divisors.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut bytes = std::fs::read(&gguf).unwrap();
    let at = bytes
        .windows(stored.len())
        .position(|w| w == stored.as_slice())
        .unwrap();
    bytes[at..at + 4].copy_from_slice(&2.0f32.to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.gguf");
    std::fs::write(&bad, bytes).unwrap();
    let err = Checkpoint::read_config(&bad).unwrap_err().to_string();
    assert!(
        err.contains("rope_freqs.weight") && err.contains("bad.gguf"),
        "{err}"
    );
}
