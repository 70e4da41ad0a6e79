use super::*;
use serde_json::json;

fn minimal() -> serde_json::Value {
    json!({"model": "m", "dataset": "d", "lr": 1e-4})
}

#[test]
fn defaults_follow_the_trainer_conventions() {
    let config = TrainConfig::parse(&minimal(), TrainKind::Sft).unwrap();
    assert_eq!(config.split, "train");
    assert_eq!(config.device, erebor_model::DeviceSpec::Cpu);
    assert_eq!(config.batch_size, 8);
    assert_eq!(config.grad_accum, 1);
    assert_eq!(config.max_grad_norm, 1.0);
    assert_eq!(config.adamw(), AdamWConfig::default());
    assert_eq!(config.lr_schedule, LrDecay::Cosine);
    assert_eq!(config.keep_checkpoints, 2);
}

#[test]
fn steps_come_from_epochs_or_max_steps() {
    let mut with = minimal();
    with["batch_size"] = json!(4);
    with["grad_accum"] = json!(2);
    with["epochs"] = json!(3);
    with["warmup_ratio"] = json!(0.1);
    let config = TrainConfig::parse(&with, TrainKind::Sft).unwrap();
    // 17 examples, 8 per step: 3 steps per epoch (the last one short).
    assert_eq!(config.total_steps(17), 9);
    // ceil(0.1 · 9) = 1 warmup step, as transformers rounds it.
    assert_eq!(config.schedule(9).warmup_steps, 1);
    with["max_steps"] = json!(5);
    assert_eq!(
        TrainConfig::parse(&with, TrainKind::Sft)
            .unwrap()
            .total_steps(17),
        5
    );
}

#[test]
fn preference_keys_are_refused_in_sft_and_required_in_preference() {
    let mut with = minimal();
    with["beta"] = json!(0.3);
    let error = TrainConfig::parse(&with, TrainKind::Sft).unwrap_err();
    assert_eq!(error.path_string(), "beta");
    assert!(error.message.contains("belongs to `preference` steps"));

    let error = TrainConfig::parse(&with, TrainKind::Preference).unwrap_err();
    assert_eq!(error.path_string(), "loss");
    with["loss"] = json!("dpop");
    let config = TrainConfig::parse(&with, TrainKind::Preference).unwrap();
    let objective = config.objective().unwrap();
    assert_eq!(objective.kind, PreferenceLossKind::Dpop);
    assert_eq!(objective.lambda, 50.0);

    with["loss"] = json!("dpo");
    with["lambda"] = json!(10);
    let error = TrainConfig::parse(&with, TrainKind::Preference).unwrap_err();
    assert_eq!(error.path_string(), "lambda");
}

#[test]
fn bad_values_name_their_field() {
    for (key, value, path) in [
        ("lr", json!(0), "lr"),
        ("batch_size", json!(0), "batch_size"),
        ("warmup_ratio", json!(1.5), "warmup_ratio"),
        ("lora", json!({"rank": 0}), "lora.rank"),
        ("loss", json!("kto"), "loss"),
        ("lr_schedule", json!("step"), "lr_schedule"),
        ("lamda", json!(50), "lamda"),
    ] {
        let mut with = minimal();
        with[key] = value;
        let error = TrainConfig::parse(&with, TrainKind::Sft).unwrap_err();
        assert_eq!(error.path_string(), path, "{key}: {error}");
    }
}
