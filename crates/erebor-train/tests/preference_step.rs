//! The `preference` step: step-0 invariants through the real model, reference log-probs shared
//! by concurrent arms, NaN handling, and refusal of a dataset made for another tokenizer.

mod common;

use common::*;
use erebor_core::{CancelToken, FailureClass, MemorySink, StepKind, StepOutputs};
use erebor_train::TrainStepKind;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A briefly SFT-trained starting model and a pair dataset with train and eval splits.
fn setup(dir: &Path) -> (String, PathBuf) {
    let sft_data = dir.join("sft");
    write_sft_dataset(&sft_data, &[("train", addition_rows(32, 0))]);
    let with = json!({
        "model": tiny_arith(), "init": "random", "dataset": sft_data, "lr": 3e-3,
        "batch_size": 8, "max_steps": 12, "seed": 2
    });
    let sink = MemorySink::new();
    let ctx = context(
        with,
        &dir.join("sft-work"),
        &dir.join("cache"),
        &sink,
        CancelToken::new(),
    );
    let model = TrainStepKind::SFT
        .run(&ctx)
        .unwrap()
        .get("model")
        .unwrap()
        .to_template_string();
    let pairs = |n, offset| {
        addition_rows(n, offset)
            .into_iter()
            .map(|(q, a)| {
                let wrong = a.replacen(" = ", " = 9", 1);
                (q, a, wrong)
            })
            .collect::<Vec<_>>()
    };
    let data = dir.join("pairs");
    write_preference_dataset(&data, &[("train", pairs(20, 40)), ("eval", pairs(8, 90))]);
    (model, data)
}

fn run(
    with: Value,
    work: &Path,
    cache: &Path,
    sink: &MemorySink,
) -> Result<StepOutputs, erebor_core::StepFailure> {
    let ctx = context(with, work, cache, sink, CancelToken::new());
    TrainStepKind::PREFERENCE.run(&ctx)
}

fn report(outputs: &StepOutputs) -> Value {
    let path = outputs.get("report").unwrap().to_template_string();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
#[allow(clippy::float_cmp)] // at step zero the penalty and the margins are exactly 0
fn at_step_zero_dpo_is_ln2_and_the_penalty_is_zero_through_the_real_model() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    for loss in ["dpo", "dpop"] {
        let with = json!({
            "model": model, "dataset": data, "eval_split": "eval", "loss": loss, "beta": 0.3,
            "lr": 1e-4, "batch_size": 4, "grad_accum": 2, "max_steps": 2, "seed": 3
        });
        let sink = MemorySink::new();
        run(
            with,
            &dir.path().join(loss),
            &dir.path().join("cache"),
            &sink,
        )
        .unwrap();
        // Step 1's statistics are computed on the policy before its first update.
        let first_loss = sink.series("train/loss")[0].1;
        assert!(
            (first_loss - std::f64::consts::LN_2).abs() < 1e-6,
            "{loss}: {first_loss}"
        );
        assert_eq!(sink.series("dpop/penalty")[0].1, 0.0, "{loss}");
        assert_eq!(sink.series("rewards/margins")[0].1, 0.0, "{loss}");
        let eval_loss = sink.series("eval/loss");
        assert_eq!(eval_loss[0].0, 0);
        assert!(
            (eval_loss[0].1 - std::f64::consts::LN_2).abs() < 1e-6,
            "{loss}: {eval_loss:?}"
        );
        assert_eq!(sink.series("eval/dpop/penalty")[0].1, 0.0);
        for key in [
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "logps/chosen",
            "logps/rejected",
        ] {
            assert_eq!(sink.series(key).len(), 2, "{key}");
        }
    }
}

#[test]
fn concurrent_arms_share_one_reference_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    let cache = dir.path().join("cache");
    let arms: Vec<_> = ["dpo", "dpop"]
        .into_iter()
        .map(|loss| {
            let with = json!({
                "model": model, "dataset": data, "eval_split": "eval", "loss": loss,
                "beta": 0.3, "lr": 1e-4, "batch_size": 4, "max_steps": 1
            });
            let work = dir.path().join(loss);
            let cache = cache.clone();
            std::thread::spawn(move || run(with, &work, &cache, &MemorySink::new()).unwrap())
        })
        .collect();
    let outputs: Vec<StepOutputs> = arms.into_iter().map(|t| t.join().unwrap()).collect();
    let reused: Vec<bool> = outputs
        .iter()
        .map(|o| report(o)["details"]["ref_logps_reused"].as_bool().unwrap())
        .collect();
    assert_eq!(
        reused.iter().filter(|r| **r).count(),
        1,
        "one arm computed, one reused: {reused:?}"
    );
    let files: Vec<String> = outputs
        .iter()
        .map(|o| std::fs::read_to_string(o.get("ref_logps").unwrap().to_template_string()).unwrap())
        .collect();
    assert_eq!(files[0], files[1]);
    let cached: Vec<_> = std::fs::read_dir(cache.join("ref_logps"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .collect();
    assert_eq!(cached.len(), 1);
}

#[test]
fn a_diverging_loss_stops_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    let with = json!({
        "model": model, "dataset": data, "loss": "ipo", "beta": 0.1, "lr": 1e30,
        "max_grad_norm": 0, "batch_size": 4, "max_steps": 5, "checkpoint_every": 1
    });
    let work = dir.path().join("nan");
    let failure = run(with, &work, &dir.path().join("cache"), &MemorySink::new()).unwrap_err();
    assert_eq!(failure.class, FailureClass::Fatal, "{}", failure.message);
    assert!(
        failure.message.contains("at optimizer step 2"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("is NaN") || failure.message.contains("is inf"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("step-00000001"),
        "{}",
        failure.message
    );
    assert!(
        work.join("checkpoints/step-00000001/params.safetensors")
            .exists()
    );
    assert!(!work.join("checkpoints/step-00000002").exists());
}

#[test]
fn a_dataset_made_with_another_tokenizer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    let manifest_path = data.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["tokenizer"]["tokenizer_sha256"] = json!("0".repeat(64));
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let with = json!({"model": model, "dataset": data, "loss": "dpo", "beta": 0.3, "lr": 1e-4});
    let failure = run(
        with,
        &dir.path().join("w"),
        &dir.path().join("cache"),
        &MemorySink::new(),
    )
    .unwrap_err();
    assert_eq!(failure.class, FailureClass::BadInput);
    assert!(
        failure.message.contains("was tokenised with"),
        "{}",
        failure.message
    );
}

#[test]
// The step-zero penalty is exactly 0, and the bf16 and f32 log-probs must differ at all.
#[allow(clippy::float_cmp)]
fn bf16_mixed_precision_trains_f32_master_weights_with_the_step_zero_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    let with = json!({
        "model": model, "dataset": data, "loss": "dpop", "beta": 0.3, "lr": 1e-3,
        "batch_size": 4, "max_steps": 3, "precision": "bf16-mixed"
    });
    let sink = MemorySink::new();
    let outputs = run(
        with,
        &dir.path().join("mixed"),
        &dir.path().join("cache"),
        &sink,
    )
    .unwrap();
    assert_eq!(
        outputs.get("precision").unwrap().to_template_string(),
        "bf16-mixed"
    );
    assert!(
        report(&outputs)["precision_policy"]
            .as_str()
            .unwrap()
            .contains("f32 master weights")
    );
    // Reference and policy go through the same bf16 forward: the invariants hold exactly.
    let first_loss = sink.series("train/loss")[0].1;
    assert!(
        (first_loss - std::f64::consts::LN_2).abs() < 1e-6,
        "{first_loss}"
    );
    assert_eq!(sink.series("dpop/penalty")[0].1, 0.0);
    // The bf16 forward differs from the f32 one (so the cast is real) by bf16 rounding only.
    let f32_with = json!({
        "model": model, "dataset": data, "loss": "dpop", "beta": 0.3, "lr": 1e-3,
        "batch_size": 4, "max_steps": 1
    });
    let f32_sink = MemorySink::new();
    run(
        f32_with,
        &dir.path().join("f32"),
        &dir.path().join("cache"),
        &f32_sink,
    )
    .unwrap();
    let (mixed, full) = (
        sink.series("logps/chosen")[0].1,
        f32_sink.series("logps/chosen")[0].1,
    );
    assert!(
        mixed != full && (mixed - full).abs() < 0.05 * full.abs(),
        "{mixed} vs {full}"
    );
    // Master weights stay f32 and move.
    let saved = std::fs::read(
        PathBuf::from(outputs.get("model").unwrap().to_template_string()).join("model.safetensors"),
    )
    .unwrap();
    let file = safetensors::SafeTensors::deserialize(&saved).unwrap();
    assert!(
        file.tensors()
            .iter()
            .all(|(_, t)| t.dtype() == safetensors::Dtype::F32)
    );
    assert!(
        sink.series("train/grad_norm")
            .iter()
            .all(|(_, g)| g.is_finite() && *g > 0.0)
    );
}

#[test]
fn a_separate_reference_model_is_scored_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = setup(dir.path());
    // Another starting point: the same SFT data, another seed and fewer steps.
    let sft_data = dir.path().join("sft");
    let sink = MemorySink::new();
    let other = TrainStepKind::SFT
        .run(&context(
            json!({"model": tiny_arith(), "init": "random", "dataset": sft_data, "lr": 3e-3,
                   "batch_size": 8, "max_steps": 4, "seed": 9}),
            &dir.path().join("other"),
            &dir.path().join("cache"),
            &sink,
            CancelToken::new(),
        ))
        .unwrap()
        .get("model")
        .unwrap()
        .to_template_string();
    let with = json!({"model": model, "reference": other, "dataset": data, "loss": "dpo",
                      "beta": 0.3, "lr": 1e-4, "batch_size": 4, "max_steps": 1});
    let sink = MemorySink::new();
    let outputs = run(
        with,
        &dir.path().join("w"),
        &dir.path().join("cache"),
        &sink,
    )
    .unwrap();
    // Policy and reference differ from the start: the first loss is not ln 2.
    let first = sink.series("train/loss")[0].1;
    assert!((first - std::f64::consts::LN_2).abs() > 1e-3, "{first}");
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(outputs.get("ref_logps").unwrap().to_template_string()).unwrap(),
    )
    .unwrap();
    assert_eq!(refs["splits"]["train"].as_array().unwrap().len(), 20);
    assert!(refs["key"]["reference_sha256"].as_str().unwrap().len() == 64);
}
