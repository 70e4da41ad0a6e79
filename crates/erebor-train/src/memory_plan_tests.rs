use super::*;
use serde_json::json;

fn llama2_7b(dir: &Path) {
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": false
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn plan_flags_a_7b_full_fine_tune_and_passes_lora() {
    let dir = tempfile::tempdir().unwrap();
    llama2_7b(dir.path());
    let with = json!({"model": "m", "dataset": "d", "lr": 1e-6, "loss": "dpop", "beta": 0.3,
                      "device": "cuda:0", "batch_size": 8, "max_seq_len": 512});
    let config = TrainSettings::parse(&with, TrainKind::Preference).unwrap();
    let notes = memory_notes(&config, TrainKind::Preference, dir.path());
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("6.74B params, full fine-tune, bf16-mixed"),
        "{}",
        notes[0]
    );
    assert!(
        notes[0].contains("does NOT fit 80 GB of cuda:0"),
        "{}",
        notes[0]
    );

    let mut with = with;
    with["lora"] = json!({"rank": 16});
    with["gradient_checkpointing"] = json!(true);
    let config = TrainSettings::parse(&with, TrainKind::Preference).unwrap();
    let notes = memory_notes(&config, TrainKind::Preference, dir.path());
    assert!(notes[0].contains("LoRA r=16"), "{}", notes[0]);
    // Without nvidia-smi the 80 GB are assumed, and the line says so after the device name.
    assert!(notes[0].contains("; fits 80 GB of cuda:0"), "{}", notes[0]);
}

#[test]
fn a_step_that_does_not_fit_is_refused_naming_the_memory_needed_and_seen() {
    let dir = tempfile::tempdir().unwrap();
    llama2_7b(dir.path());
    let with = json!({"model": "hf://models/meta-llama/Llama-2-7b-chat-hf", "dataset": "d",
                      "lr": 1e-6, "loss": "dpop", "beta": 0.3, "device": "cuda:0", "batch_size": 8,
                      "max_seq_len": 512, "memory_budget_gb": 80.0});
    let config = TrainSettings::parse(&with, TrainKind::Preference).unwrap();
    let check = memory_check(&config, TrainKind::Preference, dir.path()).unwrap();
    assert!(!check.fits);
    let refusal = memory_refusal(&config, TrainKind::Preference, dir.path()).unwrap();
    let needed = format!("needs {:.1} GB of memory", check.needed as f64 / 1e9);
    assert!(refusal.starts_with(&needed), "{refusal}");
    assert!(
        refusal.contains("sees the configured 80 GB (72.0 GB usable with 10% headroom) on cuda:0")
            && refusal.contains("cannot train hf://models/meta-llama/Llama-2-7b-chat-hf here"),
        "{refusal}"
    );

    let mut with = with;
    with["lora"] = json!({"rank": 16});
    with["gradient_checkpointing"] = json!(true);
    let config = TrainSettings::parse(&with, TrainKind::Preference).unwrap();
    assert_eq!(
        memory_refusal(&config, TrainKind::Preference, dir.path()),
        None
    );
    // No model config yet (an upstream output): nothing to refuse before the run.
    assert_eq!(
        memory_refusal(&config, TrainKind::Preference, Path::new("/no/such/model")),
        None
    );
}

#[test]
fn a_model_made_by_an_earlier_step_is_estimated_at_run_time() {
    let with = json!({"model": "${{ steps.sft.outputs.model }}", "dataset": "d", "lr": 1e-4});
    let config = TrainSettings::parse(&with, TrainKind::Sft).unwrap();
    let notes = memory_notes(&config, TrainKind::Sft, Path::new("/no/such/model"));
    assert!(
        notes[0].starts_with("memory: estimated when the step starts"),
        "{}",
        notes[0]
    );
}

/// Llama-2-7B's config.json, in a temporary folder, parsed.
fn llama2_7b_config() -> ModelConfig {
    let dir = tempfile::tempdir().unwrap();
    llama2_7b(dir.path());
    ModelConfig::from_dir(dir.path()).unwrap()
}

const LLAMA_7B_PARAMS: u64 = 6_738_415_616;

fn step(precision: &str, extra: &serde_json::Value) -> TrainSettings {
    let mut with = json!({"model": "m", "dataset": "d", "lr": 1e-5, "device": "cuda:0",
                          "precision": precision, "batch_size": 8, "max_seq_len": 512,
                          "gradient_checkpointing": true});
    for (key, value) in extra.as_object().unwrap() {
        with[key] = value.clone();
    }
    TrainSettings::parse(&with, TrainKind::Sft).unwrap()
}

#[test]
fn full_fine_tuning_of_7b_with_f32_master_weights_does_not_fit_80_gb() {
    let model = llama2_7b_config();
    let f32_full = footprint(&step("f32", &json!({})), TrainKind::Sft, &model);
    let estimate = f32_full.estimate(&model);
    // 4 (weights) + 4 (gradients) + 8 (AdamW) bytes per parameter = 107.8 GB before activations.
    assert_eq!(estimate.static_part(), 16 * LLAMA_7B_PARAMS);
    assert!(!fits(&estimate, 80e9));
    let mixed = footprint(&step("bf16-mixed", &json!({})), TrainKind::Sft, &model);
    let estimate = mixed.estimate(&model);
    // bf16 compute copy on top of the f32 master weights: 18 bytes per parameter.
    assert_eq!(estimate.static_part(), 18 * LLAMA_7B_PARAMS);
    assert!(!fits(&estimate, 80e9), "{estimate}");
    // Pure bf16: 2 (weights) + 2 (gradients) + 2 · 2 (AdamW moments).
    let pure = footprint(&step("bf16", &json!({})), TrainKind::Sft, &model);
    assert_eq!(pure.estimate(&model).static_part(), 8 * LLAMA_7B_PARAMS);
}

#[test]
fn lora_with_gradient_checkpointing_on_7b_fits_80_gb() {
    let model = llama2_7b_config();
    let lora = step("bf16-mixed", &json!({"lora": {"rank": 16}}));
    let footprint = footprint(&lora, TrainKind::Preference, &model);
    // The default targets q/k/v/o: 32 layers · 4 · 16 · (4096 + 4096) adapter parameters; a
    // preference step puts chosen and rejected through the model: 2 · 8 rows.
    assert_eq!(footprint.plan.trainable, Trainable::Adapters(16_777_216));
    assert_eq!(
        (footprint.plan.batch_size, footprint.plan.seq_len),
        (16, 512)
    );
    // On cuda:0 attention is torch's fused SDPA: no score matrices kept.
    assert_eq!(footprint.attention, TrainingAttention::Fused);
    let estimate = footprint.estimate(&model);
    // erebor-model's hand-checked total for this run (its memory tests).
    assert_eq!(estimate.total(), 38_424_422_400);
    assert!(fits(&estimate, 80e9), "{estimate}");
    // 10% headroom: 38.4 GB does not fit a 42 GB budget.
    assert!(!fits(&estimate, 42e9));
    assert!(fits(&estimate, 43e9));
}

#[test]
fn the_description_names_the_run_and_every_part() {
    let model = llama2_7b_config();
    let footprint = footprint(&step("bf16-mixed", &json!({})), TrainKind::Sft, &model);
    let text = describe(
        &footprint,
        &footprint.estimate(&model),
        80e9,
        "80 GB of cuda:0",
    );
    assert!(
        text.starts_with(
            "memory (6.74B params, full fine-tune, bf16-mixed, gradient checkpointing, 8 rows x \
             512 tokens): weights 13.5 + f32 master 27.0 + gradients 27.0 + optimizer 53.9"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "does NOT fit 80 GB of cuda:0 (with 10% headroom): use `lora:` with \
             `gradient_checkpointing: true`, or a bigger device"
        ),
        "{text}"
    );
}
