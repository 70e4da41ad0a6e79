//! A training step killed (SIGKILL) or cancelled mid-run resumes from its last checkpoint and
//! ends with exactly the weights of an uninterrupted run on the same device and seed.

mod common;

use common::*;
use erebor_core::{CancelToken, MemorySink, MetricsSink, StepKind};
use erebor_train::TrainStepKind;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "EREBOR_TRAIN_RESUME_CHILD";

fn sft_with(data: &Path) -> Value {
    json!({
        "model": tiny_arith(), "init": "random", "dataset": data, "lr": 2e-3,
        "batch_size": 4, "grad_accum": 2, "epochs": 3, "warmup_steps": 3,
        "weight_decay": 0.01, "seed": 5, "checkpoint_every": 4
    })
}

fn weights(outputs: &erebor_core::StepOutputs) -> Vec<u8> {
    let model = PathBuf::from(outputs.get("model").unwrap().to_template_string());
    std::fs::read(model.join("model.safetensors")).unwrap()
}

fn run_sft(
    with: Value,
    work: &Path,
    cache: &Path,
    sink: &dyn MetricsSink,
    cancel: CancelToken,
) -> Result<erebor_core::StepOutputs, erebor_core::StepFailure> {
    let progress = MemorySink::new();
    let ctx = erebor_core::StepContext {
        run_id: "r".into(),
        step_id: "sft".into(),
        attempt_id: "a".into(),
        with,
        base_dir: PathBuf::from("/"),
        work_dir: work.to_owned(),
        cache_dir: cache.to_owned(),
        run_data: None,
        metrics: sink,
        progress: &progress,
        cancel,
    };
    TrainStepKind::SFT.run(&ctx)
}

/// Runs the SFT step when spawned by `a_killed_sft_step_resumes_to_the_same_weights`.
#[test]
fn child_training_run() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let sink = MemorySink::new();
    let work = PathBuf::from(spec["work"].as_str().unwrap());
    let cache = PathBuf::from(spec["cache"].as_str().unwrap());
    run_sft(
        spec["with"].clone(),
        &work,
        &cache,
        &sink,
        CancelToken::new(),
    )
    .unwrap();
}

#[test]
fn a_killed_sft_step_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(&data, &[("train", addition_rows(40, 0))]);
    let with = sft_with(&data);
    let cache = dir.path().join("cache");

    let straight = run_sft(
        with.clone(),
        &dir.path().join("straight"),
        &cache,
        &MemorySink::new(),
        CancelToken::new(),
    )
    .unwrap();
    assert_eq!(straight.get("steps").unwrap().to_template_string(), "15");

    let work = dir.path().join("killed");
    let spec = json!({"with": with, "work": work, "cache": cache});
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_training_run", "--nocapture"])
        .env(CHILD_ENV, spec.to_string())
        .spawn()
        .unwrap();
    let wanted = work.join("checkpoints/step-00000008");
    let started = Instant::now();
    while !wanted.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_mins(5),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!work.join("model").exists(), "killed before the end");

    let sink = MemorySink::new();
    let resumed = run_sft(with, &work, &cache, &sink, CancelToken::new()).unwrap();
    let first_step = sink.series("train/loss").first().unwrap().0;
    assert!(
        first_step >= 9,
        "resumed from a checkpoint at step 8 or later, ran {first_step}"
    );
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "same weights as the uninterrupted run"
    );
}

/// Cancels the step once it has recorded the loss of step `at`.
struct CancelAt {
    inner: MemorySink,
    at: u64,
    token: CancelToken,
}

impl MetricsSink for CancelAt {
    fn record(&self, key: &str, index: u64, value: f64) {
        self.inner.record(key, index, value);
        if key == "train/loss" && index == self.at {
            self.token.cancel();
        }
    }
}

#[test]
fn a_cancelled_preference_step_checkpoints_and_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    // A starting model: a short SFT run.
    let sft_data = dir.path().join("sft");
    write_sft_dataset(&sft_data, &[("train", addition_rows(16, 0))]);
    let mut with = sft_with(&sft_data);
    with["epochs"] = json!(1);
    let cache = dir.path().join("cache");
    let start = run_sft(
        with,
        &dir.path().join("start"),
        &cache,
        &MemorySink::new(),
        CancelToken::new(),
    )
    .unwrap();
    let model = start.get("model").unwrap().to_template_string();

    let pairs = addition_rows(24, 50)
        .into_iter()
        .map(|(q, a)| {
            let wrong = a.replacen(" = ", " = 1", 1);
            (q, a, wrong)
        })
        .collect();
    let data = dir.path().join("pairs");
    write_preference_dataset(&data, &[("train", pairs)]);
    let with = json!({
        "model": model, "dataset": data, "loss": "dpop", "beta": 0.3, "lr": 1e-3,
        "batch_size": 4, "max_steps": 6, "seed": 9, "checkpoint_every": 100
    });
    let run = |work: &Path, sink: &dyn MetricsSink, cancel: CancelToken| {
        let progress = MemorySink::new();
        let ctx = erebor_core::StepContext {
            run_id: "r".into(),
            step_id: "dpop".into(),
            attempt_id: "a".into(),
            with: with.clone(),
            base_dir: PathBuf::from("/"),
            work_dir: work.to_owned(),
            cache_dir: cache.clone(),
            run_data: None,
            metrics: sink,
            progress: &progress,
            cancel,
        };
        TrainStepKind::PREFERENCE.run(&ctx)
    };
    let straight = run(
        &dir.path().join("straight"),
        &MemorySink::new(),
        CancelToken::new(),
    )
    .unwrap();

    let work = dir.path().join("cancelled");
    let token = CancelToken::new();
    let cancelling = CancelAt {
        inner: MemorySink::new(),
        at: 3,
        token: token.clone(),
    };
    let failure = run(&work, &cancelling, token).unwrap_err();
    assert_eq!(failure.class, erebor_core::FailureClass::Cancelled);
    assert!(
        failure.message.contains("step-00000003"),
        "{}",
        failure.message
    );
    let resumed = run(&work, &MemorySink::new(), CancelToken::new()).unwrap();
    assert_eq!(weights(&resumed), weights(&straight));
}

#[test]
fn a_cancelled_pure_bf16_step_resumes_to_the_same_bf16_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sft");
    write_sft_dataset(&data, &[("train", addition_rows(24, 0))]);
    let mut with = sft_with(&data);
    with["precision"] = json!("bf16");
    with["epochs"] = json!(1);
    with["checkpoint_every"] = json!(100);
    let cache = dir.path().join("cache");
    let straight = run_sft(
        with.clone(),
        &dir.path().join("straight"),
        &cache,
        &MemorySink::new(),
        CancelToken::new(),
    )
    .unwrap();
    let work = dir.path().join("cancelled");
    let token = CancelToken::new();
    let cancelling = CancelAt {
        inner: MemorySink::new(),
        at: 2,
        token: token.clone(),
    };
    let failure = run_sft(with.clone(), &work, &cache, &cancelling, token).unwrap_err();
    assert_eq!(failure.class, erebor_core::FailureClass::Cancelled);
    // Resumed with the moments in the parameters' bf16: the same weights, still bf16.
    let resumed = run_sft(with, &work, &cache, &MemorySink::new(), CancelToken::new()).unwrap();
    // (Saved as f32: bf16 values have their low 16 bits zero; f32 updates would not.)
    let saved = weights(&resumed);
    let file = safetensors::SafeTensors::deserialize(&saved).unwrap();
    for (name, tensor) in file.tensors() {
        assert!(
            tensor
                .data()
                .chunks_exact(4)
                .all(|b| b[0] == 0 && b[1] == 0),
            "{name} is not bf16"
        );
    }
    assert_eq!(saved, weights(&straight));
}
