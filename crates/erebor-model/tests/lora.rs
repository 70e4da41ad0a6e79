//! LoRA against PEFT: a PEFT adapter (tests/fixtures/lora-llama, made by `make_lora_fixture.py` on
//! the hf-tiny Llama) loads and gives PEFT's logits; merging gives the same logits; an adapter
//! saved by erebor loads back identically; freshly applied adapters start as the base model,
//! train while the base stays frozen.

mod common;

use std::path::PathBuf;

use burn::tensor::DType;
use common::{floats, json, max_abs_diff, prompt_logits, prompt_tensor, shared};
use erebor_model::lora::{LoraConfig, apply_lora, load_adapter, merge, save_adapter};
use erebor_model::{CausalLm, Checkpoint, ModelError};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lora-llama")
}

fn check_against_peft(values: &[f64], expected: &serde_json::Value, what: &str) {
    let n = values.len() / 512;
    let first = &values[..16];
    let last = &values[(n - 1) * 512..(n - 1) * 512 + 16];
    let d1 = max_abs_diff(first, &floats(&expected["logits_first_row_head"]));
    let d2 = max_abs_diff(last, &floats(&expected["logits_last_row_head"]));
    assert!(
        d1 <= 1e-4 && d2 <= 1e-4,
        "{what}: differs from PEFT by {d1} / {d2}"
    );
    let sum: f64 = values.iter().sum();
    assert!(
        (sum - expected["logits_sum"].as_f64().unwrap()).abs() < 1e-2,
        "{what}: sum {sum}"
    );
}

#[test]
fn peft_adapter_loads_merges_and_round_trips() {
    let Some(base_dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let expected = json(&fixture().join("expected.json"));
    let prompt = common::ids(&expected["prompt_ids"]);
    let device = common::device();
    let base = Checkpoint::load(&base_dir, &device, DType::F32)
        .unwrap()
        .model;
    let base_logits = prompt_logits(&base, &prompt);

    let (adapted, config) = load_adapter(base, &fixture()).unwrap();
    assert_eq!((config.rank, config.alpha), (4, 8.0));
    let adapted_logits = prompt_logits(&adapted, &prompt);
    assert!(
        max_abs_diff(&adapted_logits, &base_logits) > 1e-3,
        "the adapter changes the model"
    );
    check_against_peft(&adapted_logits, &expected, "adapter");

    let out = tempfile::tempdir().unwrap();
    let files = save_adapter(&adapted, &config, out.path(), Some("hf-tiny/llama")).unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("adapter_model.safetensors"))
    );
    let fresh = Checkpoint::load(&base_dir, &device, DType::F32)
        .unwrap()
        .model;
    let (reloaded, _) = load_adapter(fresh, out.path()).unwrap();
    assert_eq!(
        prompt_logits(&reloaded, &prompt),
        adapted_logits,
        "save → load is exact"
    );

    let merged = merge(adapted);
    assert!(merged.linear_layers().iter().all(|(_, l)| l.lora.is_none()));
    check_against_peft(&prompt_logits(&merged, &prompt), &expected, "merged");
}

#[test]
fn fresh_adapters_start_at_the_base_and_only_they_get_gradients() {
    let Some(base_dir) = shared("fixtures/hf-tiny/qwen2") else {
        return;
    };
    let device = common::device().autodiff();
    let base = Checkpoint::load(&base_dir, &device, DType::F32)
        .unwrap()
        .model;
    let prompt: Vec<u32> = (3..15).collect();
    let before = prompt_logits(&base, &prompt);
    let config = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.1,
        target_modules: vec!["all-linear".into()],
    };
    assert_eq!(
        erebor_model::lora::adapter_parameter_count(base.config(), &config),
        lora_params_qwen2_tiny()
    );
    let model = apply_lora(base, &config, 7).unwrap();
    // B = 0: the adapted model equals the base. (`valid()` runs on the plain device, whose
    // fused attention kernel differs from the autodiff composition in the last bits.)
    let model_eval = burn::module::Module::valid(&model);
    let after = prompt_logits(&model_eval, &prompt);
    let d = max_abs_diff(&after, &before);
    assert!(d < 1e-6, "adapted model differs from the base by {d}");

    let loss = model
        .forward(prompt_tensor(&prompt, &device))
        .square()
        .mean();
    let grads = loss.backward();
    let layer = &model.layers[0].self_attn.q_proj;
    assert!(
        layer.weight.val().grad(&grads).is_none(),
        "base weights are frozen"
    );
    assert!(
        model.embed_tokens.val().grad(&grads).is_none(),
        "embeddings are frozen"
    );
    let ad = layer.lora.as_ref().unwrap();
    let gb = ad.b.val().grad(&grads).expect("B gets a gradient");
    let norm: f32 = gb.square().sum().into_scalar::<f32>();
    assert!(norm > 0.0, "B's gradient is non-zero");
    assert!(ad.a.val().grad(&grads).is_some(), "A is trainable");
}

/// q, k, v, o, gate, up, down on 2 layers of the hf-tiny Qwen2 (hidden 64, kv 32, mlp 128), r = 2.
fn lora_params_qwen2_tiny() -> usize {
    let per_layer = [
        (64, 64),
        (64, 32),
        (64, 32),
        (64, 64),
        (64, 128),
        (64, 128),
        (128, 64),
    ];
    2 * per_layer.iter().map(|(i, o)| 2 * (i + o)).sum::<usize>()
}

#[test]
fn unmatched_targets_and_unsupported_peft_options_are_errors() {
    let Some(base_dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let device = common::device();
    let base = Checkpoint::load(&base_dir, &device, DType::F32)
        .unwrap()
        .model;
    let config = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        target_modules: vec!["query_key_value".into()],
    };
    let err = apply_lora(base.clone(), &config, 0).unwrap_err();
    assert!(err.to_string().contains("query_key_value"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).unwrap();
    }
    let cfg_path = dir.path().join("adapter_config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["use_dora"] = serde_json::Value::Bool(true);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let err = load_adapter(base, dir.path()).unwrap_err();
    assert!(
        matches!(&err, ModelError::Config { field, .. } if field == "use_dora"),
        "{err}"
    );
}

/// The adapter count `plan` uses comes from the config alone; it must be what `apply_lora`
/// attaches to a built model, layer by layer.
#[test]
fn the_adapter_count_from_the_config_is_what_apply_lora_attaches() {
    let dims = erebor_model::DecoderDims {
        vocab_size: 64,
        hidden_size: 16,
        intermediate_size: 40,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
    };
    let config =
        erebor_model::ModelConfig::synthetic(erebor_model::Architecture::Llama, dims, false);
    let model = CausalLm::random(&config, 1, 0.02, &common::device(), DType::F32);
    let built: Vec<(String, usize, usize)> = model
        .linear_layers()
        .iter()
        .map(|(path, linear)| (path.clone(), linear.d_in(), linear.d_out()))
        .collect();
    assert_eq!(built, config.linear_shapes());
    for targets in [vec!["all-linear"], vec!["q_proj", "down_proj", "lm_head"]] {
        let lora = LoraConfig {
            rank: 3,
            alpha: 6.0,
            dropout: 0.0,
            target_modules: targets.iter().map(ToString::to_string).collect(),
        };
        let adapted = apply_lora(model.clone(), &lora, 1).unwrap();
        let attached: usize = adapted
            .linear_layers()
            .iter()
            .filter_map(|(_, linear)| linear.lora.as_ref())
            .map(|adapter| {
                adapter.a.val().shape().num_elements() + adapter.b.val().shape().num_elements()
            })
            .sum();
        assert!(attached > 0);
        assert_eq!(
            erebor_model::lora::adapter_parameter_count(&config, &lora),
            attached,
            "{targets:?}"
        );
    }
}
