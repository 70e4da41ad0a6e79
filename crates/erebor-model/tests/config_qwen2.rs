//! Qwen2's sliding-window layers read from config.json as transformers' `Qwen2Config` decides
//! them (`use_sliding_window`, `sliding_window`, `max_window_layers`, transformers-5
//! `layer_types`), and written back so transformers reads the same.

use erebor_model::config::HfConfig;
use erebor_model::{ModelConfig, ModelError};
use serde_json::{Value, json};
use std::path::Path;

fn qwen2(layers: usize, extra: &Value) -> Value {
    let mut config = json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64,
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": layers,
        "num_attention_heads": 2, "num_key_value_heads": 1
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn parse(config: Value) -> Result<ModelConfig, ModelError> {
    let hf: HfConfig = serde_json::from_value(config).unwrap();
    ModelConfig::from_hf(&hf, Path::new("config.json"))
}

fn windows(config: &ModelConfig) -> Vec<Option<usize>> {
    (0..config.num_layers)
        .map(|l| config.window_of_layer(l))
        .collect()
}

#[test]
fn max_window_layers_defaults_to_28_as_in_transformers() {
    let config = parse(qwen2(
        30,
        &json!({"use_sliding_window": true, "sliding_window": 16}),
    ))
    .unwrap();
    let mut expected = vec![None; 28];
    expected.extend([Some(16), Some(16)]);
    assert_eq!(windows(&config), expected);
}

#[test]
fn max_window_layers_and_the_default_window() {
    // No `sliding_window`: transformers' 4096.
    let config = parse(qwen2(
        4,
        &json!({"use_sliding_window": true, "max_window_layers": 2}),
    ))
    .unwrap();
    assert_eq!(windows(&config), [None, None, Some(4096), Some(4096)]);
}

#[test]
fn layer_types_decide_over_max_window_layers() {
    let types = [
        "full_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
    ];
    let config = parse(qwen2(
        4,
        &json!({"use_sliding_window": true, "sliding_window": 8, "max_window_layers": 0,
               "layer_types": types}),
    ))
    .unwrap();
    assert_eq!(windows(&config), [None, Some(8), None, Some(8)]);
    // Written back with the same layers, and read again the same.
    let written = config.to_hf_json("float32");
    assert_eq!(written["layer_types"], json!(types));
    assert_eq!(written["max_window_layers"], json!(1));
    assert_eq!(parse(written).unwrap(), config);
}

#[test]
fn without_use_sliding_window_no_layer_has_a_window() {
    let config = parse(qwen2(
        2,
        &json!({"use_sliding_window": false, "sliding_window": 8, "max_window_layers": 0,
               "layer_types": ["sliding_attention", "sliding_attention"]}),
    ))
    .unwrap();
    assert_eq!(windows(&config), [None, None]);
    let written = config.to_hf_json("float32");
    assert_eq!(written["use_sliding_window"], json!(false));
    assert_eq!(parse(written).unwrap(), config);
}

#[test]
fn bad_layer_types_are_refused_with_the_field() {
    let short = parse(qwen2(
        3,
        &json!({"use_sliding_window": true, "layer_types": ["full_attention"]}),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        short.contains("layer_types") && short.contains("3 layers"),
        "{short}"
    );
    let unknown = parse(qwen2(
        1,
        &json!({"use_sliding_window": true, "layer_types": ["chunked_attention"]}),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("layer_types[0]") && unknown.contains("chunked_attention"),
        "{unknown}"
    );
}
