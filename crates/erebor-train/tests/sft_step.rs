//! The `sft` step end to end on the tiny-arith model: it learns, checkpoints, and a killed run
//! resumes to the same weights.

mod common;

use common::*;
use erebor_core::{CancelToken, MemorySink, StepKind};
use erebor_train::TrainStepKind;
use serde_json::json;

#[test]
fn the_tokenizer_round_trips_the_task_text() {
    let tokenizer = tokenizer();
    let (question, answer) = &addition_rows(1, 3)[0];
    let text = format!("{}{answer}<|im_end|>\n", prompt_text(question));
    let ids = tokenizer.encode_ids(&text, false).unwrap();
    assert!(!ids.contains(&0), "no unknown tokens: {ids:?}");
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
}

#[test]
fn sft_learns_the_task_and_reports_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(
        &data,
        &[
            ("train", addition_rows(64, 0)),
            ("eval", addition_rows(16, 100)),
        ],
    );
    let with = json!({
        "model": tiny_arith(), "init": "random", "dataset": data, "eval_split": "eval",
        "lr": 3e-3, "batch_size": 8, "grad_accum": 2, "max_steps": 40, "warmup_steps": 4,
        "seed": 1, "checkpoint_every": 20
    });
    let sink = MemorySink::new();
    let ctx = context(
        with,
        &dir.path().join("work"),
        &dir.path().join("cache"),
        &sink,
        CancelToken::new(),
    );
    let outputs = TrainStepKind::SFT.run(&ctx).unwrap();
    let losses = sink.series("train/loss");
    assert_eq!(losses.len(), 40);
    let first = losses[0].1;
    let last = losses[39].1;
    assert!(last < first * 0.5, "loss {first} -> {last}");
    for key in [
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_second",
        "train/epoch",
    ] {
        assert_eq!(sink.series(key).len(), 40, "{key}");
    }
    let eval = sink.series("eval/loss");
    assert_eq!(eval.first().unwrap().0, 0);
    assert_eq!(eval.last().unwrap().0, 40);
    assert!(eval.last().unwrap().1 < eval[0].1 * 0.5, "{eval:?}");
    let model = outputs.get("model").unwrap().to_template_string();
    assert!(
        std::path::Path::new(&model)
            .join("model.safetensors")
            .exists()
    );
    assert!(
        std::path::Path::new(&model)
            .join("tokenizer_config.json")
            .exists()
    );
    assert_eq!(
        outputs.get("precision").unwrap().to_template_string(),
        "f32"
    );
}

#[test]
fn lora_trains_only_the_adapters_and_checkpoints_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(&data, &[("train", addition_rows(24, 0))]);
    // A starting model with real weights: a short full fine-tune.
    let sink = MemorySink::new();
    let base = TrainStepKind::SFT
        .run(&context(
            json!({"model": tiny_arith(), "init": "random", "dataset": data, "lr": 3e-3,
                   "batch_size": 8, "max_steps": 3}),
            &dir.path().join("base"),
            &dir.path().join("cache"),
            &sink,
            CancelToken::new(),
        ))
        .unwrap();
    let base_model = base.get("model").unwrap().to_template_string();
    let with = json!({
        "model": base_model, "dataset": data, "lr": 1e-2, "batch_size": 8, "max_steps": 6,
        "lora": {"rank": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]}, "checkpoint_every": 3
    });
    let sink = MemorySink::new();
    let work = dir.path().join("lora");
    let outputs = TrainStepKind::SFT
        .run(&context(
            with,
            &work,
            &dir.path().join("cache"),
            &sink,
            CancelToken::new(),
        ))
        .unwrap();
    let losses = sink.series("train/loss");
    assert!(losses[5].1 < losses[0].1, "{losses:?}");

    let adapter = std::path::PathBuf::from(outputs.get("adapter").unwrap().to_template_string());
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["target_modules"], json!(["q_proj", "v_proj"]));

    // The checkpoint holds the 4 layers x 2 projections x (A, B) adapter tensors and nothing else.
    let (tensors, _) = erebor_train::tensor_io::read_safetensors(
        &work.join("checkpoints/step-00000006/params.safetensors"),
    )
    .unwrap();
    assert_eq!(
        tensors.len(),
        16,
        "{:?}",
        tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    assert!(
        tensors.iter().all(|t| t.name.contains(".lora.")),
        "{:?}",
        tensors[0].name
    );

    // Merged weights differ from the base only in the adapted projections.
    let read = |dir: &str| {
        let bytes = std::fs::read(std::path::Path::new(dir).join("model.safetensors")).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        file.tensors()
            .into_iter()
            .map(|(name, view)| (name, view.data().to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = read(&base_model);
    let after = read(&outputs.get("model").unwrap().to_template_string());
    for (name, bytes) in &before {
        let changed = after[name] != *bytes;
        let lora_target = name.ends_with("q_proj.weight") || name.ends_with("v_proj.weight");
        assert_eq!(changed, lora_target, "{name}");
    }
}

fn losses_and_weights(
    with: serde_json::Value,
    dir: &std::path::Path,
    name: &str,
) -> (Vec<f64>, Vec<f32>) {
    let sink = MemorySink::new();
    let outputs = TrainStepKind::SFT
        .run(&context(
            with,
            &dir.join(name),
            &dir.join("cache"),
            &sink,
            CancelToken::new(),
        ))
        .unwrap();
    let model = std::path::PathBuf::from(outputs.get("model").unwrap().to_template_string());
    let bytes = std::fs::read(model.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let weights = file
        .tensor("model.layers.0.self_attn.q_proj.weight")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (
        sink.series("train/loss")
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
        weights,
    )
}

fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tolerance * x.abs().max(1.0))
}

#[test]
fn splitting_a_step_into_micro_batches_does_not_change_it() {
    // Rows of different lengths: a per-micro-batch mean would weight tokens unequally.
    let mut rows = addition_rows(24, 0);
    for row in rows.iter_mut().step_by(3) {
        row.1 = format!("{}\n{}", row.1, row.1);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(&data, &[("train", rows)]);
    let base = json!({"model": tiny_arith(), "init": "random", "dataset": data, "lr": 3e-3,
                      "max_steps": 4, "seed": 8});
    let mut whole = base.clone();
    whole["batch_size"] = json!(8);
    let mut split = base.clone();
    split["batch_size"] = json!(2);
    split["grad_accum"] = json!(4);
    let (loss_a, weights_a) = losses_and_weights(whole, dir.path(), "whole");
    let (loss_b, weights_b) = losses_and_weights(split, dir.path(), "split");
    assert!(close(&loss_a, &loss_b, 1e-5), "{loss_a:?} vs {loss_b:?}");
    let a: Vec<f64> = weights_a.iter().map(|w| f64::from(*w)).collect();
    let b: Vec<f64> = weights_b.iter().map(|w| f64::from(*w)).collect();
    assert!(close(&a, &b, 1e-4));
}

#[test]
fn gradient_checkpointing_gives_the_same_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(&data, &[("train", addition_rows(16, 0))]);
    let base = json!({"model": tiny_arith(), "init": "random", "dataset": data, "lr": 3e-3,
                      "batch_size": 8, "max_steps": 3, "seed": 2});
    let mut checkpointed = base.clone();
    checkpointed["gradient_checkpointing"] = json!(true);
    let (loss_a, _) = losses_and_weights(base, dir.path(), "plain");
    let (loss_b, _) = losses_and_weights(checkpointed, dir.path(), "checkpointed");
    assert!(close(&loss_a, &loss_b, 1e-5), "{loss_a:?} vs {loss_b:?}");
}
