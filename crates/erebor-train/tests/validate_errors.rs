//! The closed sets of a training step's `with:` block (device, loss, precision, lr schedule, LoRA targets) are
//! checked when the workflow is loaded, as `erebor validate`, `plan` and `run` load it: a wrong
//! value is an error at its line and column listing the supported values, before any step runs.

use erebor_train::TrainStepKind;
use erebor_workflow::{ErrorKind, KindRegistry, LoadOptions, MissingParams, WorkflowErrors};
use std::path::Path;

fn registry() -> KindRegistry {
    KindRegistry::new()
        .with(TrainStepKind::SFT)
        .with(TrainStepKind::PREFERENCE)
}

fn load(text: &str) -> Result<(), WorkflowErrors> {
    let options = LoadOptions {
        overrides: Vec::new(),
        env: &|_| None,
        missing: MissingParams::Error,
    };
    erebor_workflow::load_str(
        Path::new("workflows/train.yaml"),
        text,
        Path::new("/nonexistent"),
        &registry(),
        &options,
    )
    .map(drop)
}

/// A workflow with one `uses:` step whose `with:` block has `extra` as its last line.
fn workflow(uses: &str, extra: &str) -> String {
    let objective = if uses == "preference" {
        "      loss: dpop\n      beta: 0.3\n"
    } else {
        ""
    };
    format!(
        "name: typed\nsteps:\n  - id: train\n    uses: {uses}\n    with:\n      model: m\n      \
         dataset: d\n      lr: 1.0e-5\n{objective}{extra}\n"
    )
}

fn rejected(name: &str, text: &str) {
    refused(name, ErrorKind::TypeMismatch, text);
}

/// `text` fails to load with exactly one error, of `kind`, which matches the snapshot `name`.
fn refused(name: &str, kind: ErrorKind, text: &str) {
    let errors = load(text).expect_err("the workflow should be rejected");
    assert!(
        errors.has(kind),
        "{name}: expected a {} error, got:\n{errors}",
        kind.as_str()
    );
    assert_eq!(errors.errors.len(), 1, "{name}: one error\n{errors}");
    insta::assert_snapshot!(name, errors.to_string());
}

#[test]
fn a_wrong_device_is_an_error_at_its_value() {
    rejected("device_gpu", &workflow("sft", "      device: gpu"));
}

#[test]
fn a_cuda_device_without_an_index_is_an_error_at_its_value() {
    rejected(
        "device_bad_index",
        &workflow("sft", "      device: cuda:zero"),
    );
}

#[test]
fn a_wrong_loss_is_an_error_at_its_value() {
    let text = workflow("preference", "").replace("loss: dpop", "loss: dpopp");
    rejected("loss_dpopp", &text);
}

#[test]
fn a_wrong_precision_is_an_error_at_its_value() {
    rejected(
        "precision_fp16",
        &workflow("preference", "      precision: fp16"),
    );
}

#[test]
fn a_wrong_schedule_is_an_error_at_its_value() {
    rejected(
        "schedule_cosin",
        &workflow("sft", "      lr_schedule: cosin"),
    );
}

#[test]
fn a_device_from_a_param_is_checked_after_substitution() {
    let text = "name: typed\nparams:\n  device: gpu\nsteps:\n  - id: train\n    uses: sft\n    \
                with:\n      model: m\n      dataset: d\n      lr: 1.0e-5\n      \
                device: ${{ params.device }}\n";
    rejected("device_from_param", text);
}

#[test]
fn every_supported_value_is_accepted() {
    let supported = [
        ("device", vec!["cpu"]),
        ("precision", vec!["auto", "f32", "bf16-mixed", "bf16"]),
        ("lr_schedule", vec!["constant", "linear", "cosine"]),
    ];
    for (key, values) in supported {
        for value in values {
            let text = workflow("preference", &format!("      {key}: {value}"));
            load(&text).unwrap_or_else(|e| panic!("{key}: {value}\n{e}"));
        }
    }
    for loss in ["dpop", "dpo", "ipo", "slic"] {
        let text = workflow("preference", "").replace("loss: dpop", &format!("loss: {loss}"));
        load(&text).unwrap_or_else(|e| panic!("loss: {loss}\n{e}"));
    }
}

/// Without LibTorch a CUDA device cannot run: the build says so at validate time.
#[cfg(not(feature = "tch"))]
#[test]
fn a_device_this_build_lacks_is_an_error_naming_the_feature() {
    let errors = load(&workflow("sft", "      device: cuda:0")).unwrap_err();
    assert!(errors.has(ErrorKind::StepConfig), "{errors}");
    insta::assert_snapshot!("device_not_compiled_in", errors.to_string());
}

#[cfg(feature = "tch")]
#[test]
fn a_tch_build_accepts_libtorch_devices() {
    for device in ["tch-cpu", "cuda:0", "cuda:7"] {
        let text = workflow("sft", &format!("      device: {device}"));
        load(&text).unwrap_or_else(|e| panic!("{device}\n{e}"));
    }
}

#[test]
fn an_unknown_lora_target_is_an_error_at_its_value() {
    rejected(
        "lora_target_qproj",
        &workflow(
            "sft",
            "      lora:\n        rank: 8\n        targets: [q_proj, qproj]",
        ),
    );
}

#[test]
fn a_preference_only_key_in_an_sft_step_is_an_error_at_its_line() {
    refused(
        "sft_beta",
        ErrorKind::StepConfig,
        &workflow("sft", "      beta: 0.3"),
    );
}

#[test]
fn packing_in_a_preference_step_is_an_error_at_its_line() {
    refused(
        "preference_packing",
        ErrorKind::StepConfig,
        &workflow("preference", "      packing: true"),
    );
}

#[test]
fn a_preference_step_without_a_loss_is_an_error() {
    let text = workflow("preference", "").replace("      loss: dpop\n", "");
    assert!(!text.contains("loss:"), "{text}");
    refused("preference_no_loss", ErrorKind::StepConfig, &text);
}
