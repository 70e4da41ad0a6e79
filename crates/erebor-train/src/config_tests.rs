use super::wire::{PREFERENCE_ONLY, SFT_ONLY};
use super::*;
use crate::losses::PreferenceLossKind;
use serde_json::json;

fn minimal() -> serde_json::Value {
    json!({"model": "m", "dataset": "d", "lr": 1e-4})
}

fn preference() -> serde_json::Value {
    let mut with = minimal();
    with["loss"] = json!("dpop");
    with["beta"] = json!(0.3);
    with
}

#[test]
#[allow(clippy::float_cmp)] // defaults are exact literals, compared bit for bit on purpose
fn defaults_follow_the_trainer_conventions() {
    let sft = SftConfig::parse(&minimal()).unwrap();
    assert!(!sft.packing);
    let config = sft.settings;
    assert_eq!(config.split, "train");
    assert_eq!(config.device, erebor_model::DeviceSpec::Cpu);
    assert_eq!(config.batch_size, 8);
    assert_eq!(config.grad_accum, 1);
    assert_eq!(config.max_grad_norm, 1.0);
    assert_eq!(config.adamw, AdamWConfig::default());
    assert_eq!(config.lr_schedule, LrDecay::Cosine);
    assert_eq!(config.keep_checkpoints, 2);
    assert_eq!(config.length, TrainLength::Epochs(1));
    assert_eq!(config.warmup, Warmup::Ratio(0.0));
}

#[test]
fn steps_come_from_epochs_or_max_steps() {
    let mut with = minimal();
    with["batch_size"] = json!(4);
    with["grad_accum"] = json!(2);
    with["epochs"] = json!(3);
    with["warmup_ratio"] = json!(0.1);
    let config = TrainSettings::parse(&with, TrainKind::Sft).unwrap();
    // 17 examples, 8 per step: 3 steps per epoch (the last one short).
    assert_eq!(config.total_steps(17), 9);
    // ceil(0.1 · 9) = 1 warmup step, as transformers rounds it.
    assert_eq!(config.schedule(9).warmup_steps, 1);
    with["max_steps"] = json!(5);
    with["warmup_steps"] = json!(2);
    let config = TrainSettings::parse(&with, TrainKind::Sft).unwrap();
    assert_eq!(config.total_steps(17), 5);
    assert_eq!(config.schedule(5).warmup_steps, 2);
}

#[test]
fn preference_keys_in_an_sft_step_are_refused_naming_the_key_and_both_kinds() {
    for (key, value) in [
        ("loss", json!("dpop")),
        ("beta", json!(0.3)),
        ("lambda", json!(50)),
        ("reference", json!("r")),
        ("max_prompt_len", json!(64)),
    ] {
        let mut with = minimal();
        with[key] = value;
        let error = SftConfig::parse(&with).unwrap_err();
        assert_eq!(error.path_string(), key);
        assert_eq!(error.message, "belongs to `preference` steps, not `sft`");
        // Worded as a field error, not as serde's unknown key with its list of keys.
        assert!(error.expected_keys.is_empty(), "{key}");
    }
}

#[test]
fn packing_in_a_preference_step_is_refused_even_when_false() {
    for packing in [true, false] {
        let mut with = preference();
        with["packing"] = json!(packing);
        let error = PreferenceConfig::parse(&with).unwrap_err();
        assert_eq!(error.path_string(), "packing");
        assert!(
            error.message.contains("applies to `sft` steps only"),
            "{error}"
        );
    }
}

#[test]
fn a_misspelt_key_stays_an_unknown_key_with_the_accepted_ones() {
    let mut with = preference();
    with["lamda"] = json!(50);
    let error = PreferenceConfig::parse(&with).unwrap_err();
    assert_eq!(error.path_string(), "lamda");
    assert!(error.expected_keys.contains(&"lambda".to_owned()));
    let mut with = minimal();
    with["lamda"] = json!(50);
    let error = SftConfig::parse(&with).unwrap_err();
    assert!(!error.expected_keys.contains(&"lambda".to_owned()));
}

/// The accepted keys of a wire struct, as serde lists them for an unknown one.
fn accepted_keys(with_unknown: ConfigError) -> Vec<String> {
    let mut keys = with_unknown.expected_keys;
    keys.sort();
    keys
}

#[test]
fn the_kind_only_lists_are_exactly_where_the_wire_structs_differ() {
    let mut with = preference();
    with["not_a_key"] = json!(1);
    let preference_keys = accepted_keys(PreferenceConfig::parse(&with).unwrap_err());
    let mut with = minimal();
    with["not_a_key"] = json!(1);
    let sft_keys = accepted_keys(SftConfig::parse(&with).unwrap_err());
    let only_in = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|k| !b.contains(k)).cloned().collect()
    };
    let mut preference_only: Vec<String> =
        PREFERENCE_ONLY.0.iter().map(ToString::to_string).collect();
    preference_only.sort();
    assert_eq!(only_in(&preference_keys, &sft_keys), preference_only);
    assert_eq!(only_in(&sft_keys, &preference_keys), SFT_ONLY.0);
}

#[test]
#[allow(clippy::float_cmp)] // parsed literals must come back bit for bit
fn the_objective_is_required_and_typed() {
    let config = PreferenceConfig::parse(&preference()).unwrap();
    assert_eq!(config.objective.kind, PreferenceLossKind::Dpop);
    assert_eq!(config.objective.beta, 0.3);
    assert_eq!(config.objective.lambda, 50.0);
    assert_eq!(config.max_prompt_len, None);

    let mut with = minimal();
    with["beta"] = json!(0.3);
    let error = PreferenceConfig::parse(&with).unwrap_err();
    assert_eq!(error.path_string(), "loss");
    assert_eq!(error.message, "is required: one of dpop, dpo, ipo, slic");

    let mut with = preference();
    with.as_object_mut().unwrap().remove("beta");
    let error = PreferenceConfig::parse(&with).unwrap_err();
    assert_eq!(error.path_string(), "beta");
    assert!(error.message.contains("is required"), "{error}");

    for (key, value, loss, message) in [
        ("beta", json!(0), "dpo", "must be greater than 0"),
        ("lambda", json!(10), "dpo", "only the dpop loss uses lambda"),
        ("lambda", json!(-1), "dpop", "must be 0 or more"),
    ] {
        let mut with = preference();
        with["loss"] = json!(loss);
        with[key] = value;
        let error = PreferenceConfig::parse(&with).unwrap_err();
        assert_eq!(error.path_string(), key, "{error}");
        assert_eq!(error.message, message);
    }
}

/// `TryFrom` on a wire struct read by serde alone: the conversion is where the checks are.
#[test]
fn try_from_a_wire_struct_names_the_field() {
    let wire: PreferenceWire = serde_json::from_value(minimal()).unwrap();
    assert_eq!(
        PreferenceConfig::try_from(wire).unwrap_err().path_string(),
        "loss"
    );
    let mut with = minimal();
    with["lora"] = json!({"rank": 4, "targets": []});
    let wire: SftWire = serde_json::from_value(with).unwrap();
    assert_eq!(
        SftConfig::try_from(wire).unwrap_err().path_string(),
        "lora.targets"
    );
}

#[test]
fn bad_values_name_their_field() {
    for (key, value, path) in [
        ("lr", json!(0), "lr"),
        ("batch_size", json!(0), "batch_size"),
        ("grad_accum", json!(0), "grad_accum"),
        ("keep_checkpoints", json!(0), "keep_checkpoints"),
        ("max_seq_len", json!(1), "max_seq_len"),
        ("max_steps", json!(0), "max_steps"),
        ("epochs", json!(0), "epochs"),
        ("checkpoint_every", json!(0), "checkpoint_every"),
        ("eval_every", json!(0), "eval_every"),
        ("warmup_ratio", json!(1.5), "warmup_ratio"),
        ("adam_beta2", json!(1.0), "adam_beta2"),
        ("lora", json!({"rank": 0}), "lora.rank"),
        ("lr_schedule", json!("step"), "lr_schedule"),
        ("lamda", json!(50), "lamda"),
    ] {
        for kind in [TrainKind::Sft, TrainKind::Preference] {
            let mut with = preference();
            if kind == TrainKind::Sft {
                with = minimal();
            }
            with[key] = value.clone();
            let error = TrainSettings::parse(&with, kind).unwrap_err();
            assert_eq!(error.path_string(), path, "{key} ({kind:?}): {error}");
        }
    }
    let mut with = preference();
    with["loss"] = json!("kto");
    let error = PreferenceConfig::parse(&with).unwrap_err();
    assert_eq!(error.path_string(), "loss");
}
