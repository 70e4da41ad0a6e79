//! Parity with lm-eval itself: lm-eval 0.4.13's `--log_samples` output for SmolLM2-135M-Instruct
//! (HF backend, float32, CPU; 0-shot, the first documents of the shared ARC-Easy test and
//! HellaSwag validation files; tests/fixtures/README.md says how it was made) against erebor
//! evaluating the same documents with `Harness::V04` from the shared GGUF dequantised to f32:
//! the same request strings, every loglikelihood within 1e-3, the same `is_greedy`, and the
//! same predictions (acc, `acc_norm`) wherever the top two choices differ by more than 2e-3.

// acc and acc_norm are exactly 0 or 1 wherever the top choices differ clearly: equality with
// lm-eval's samples is the check.
#![allow(clippy::float_cmp)]

mod common;

use std::path::PathBuf;

use erebor_core::NullProgress;
use erebor_eval::evaluator::{EvalModel, Hooks};
use erebor_eval::output::pyjson::PyValue;
use erebor_eval::output::{doc_hash, sample_line};
use erebor_eval::{EvalSettings, Evaluator, Harness, Request, Response, TaskOptions};
use erebor_model::burn::tensor::DType;
use erebor_model::{Checkpoint, DeviceSpec};
use serde_json::Value;

/// Documents compared per task (the fixture has 40; 24 keep the test near a minute).
const DOCS: usize = 24;

fn fixture(task: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/lm_eval_samples_{task}.jsonl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The loglikelihood and `is_greedy` lm-eval wrote for request `i` of a sample.
fn lm_eval_response(sample: &Value, i: usize) -> (f64, bool) {
    let pair = &sample["filtered_resps"][i];
    (
        pair[0].as_str().unwrap().parse().unwrap(),
        pair[1].as_str().unwrap() == "True",
    )
}

/// Whether the best two of `values` are more than `margin` apart.
fn clear_winner(values: &[f64], margin: f64) -> bool {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted.len() < 2 || sorted[0] - sorted[1] > margin
}

/// `doc` and `doc_hash` without a model: every document of the fixtures, keys in lm-eval's
/// order (the file's, then what HellaSwag's `process_docs` adds), hashed to lm-eval's value.
#[test]
fn samples_docs_and_doc_hashes_equal_lm_evals() {
    let Some(data) = common::shared("data/leaderboard") else {
        return;
    };
    let options = TaskOptions {
        data_dir: data,
        num_fewshot: Some(0),
        harness: Harness::V04,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    let tasks = erebor_eval::leaderboard_tasks(&["arc_easy", "hellaswag"], &options).unwrap();
    for (task, name) in tasks.iter().zip(["arc_easy", "hellaswag"]) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/lm_eval_samples_{name}.jsonl"));
        let lines = std::fs::read_to_string(path).unwrap();
        let instances = task.instances(Some(lines.lines().count())).unwrap();
        for (instance, line) in instances.iter().zip(lines.lines()) {
            let sample = PyValue::parse(line).unwrap();
            let id = instance.doc_id;
            assert_eq!(Some(&instance.doc), sample.get("doc"), "{name} doc {id}");
            let Some(PyValue::Str(expected)) = sample.get("doc_hash") else {
                panic!("{name} doc {id}: no doc_hash")
            };
            assert_eq!(&doc_hash(&instance.doc), expected, "{name} doc {id}");
        }
    }
}

#[test]
fn erebor_matches_lm_eval_0_4_on_arc_easy_and_hellaswag() {
    let (Some(gguf), Some(data)) = (
        common::shared("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
        common::shared("data/leaderboard"),
    ) else {
        return;
    };
    let device = DeviceSpec::Cpu.device().unwrap();
    let checkpoint = Checkpoint::load(&gguf, &device, DType::F32).unwrap();
    let tokenizer = checkpoint.tokenizer.clone().unwrap();
    let model = EvalModel {
        model: &checkpoint.model,
        tokenizer: &tokenizer,
    };
    let options = TaskOptions {
        data_dir: data,
        num_fewshot: Some(0),
        harness: Harness::V04,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    let settings = EvalSettings {
        limit: Some(DOCS),
        ..EvalSettings::default()
    };
    let hooks = Hooks {
        progress: &NullProgress,
        cancel: None,
    };
    let tasks = erebor_eval::leaderboard_tasks(&["arc_easy", "hellaswag"], &options).unwrap();
    let report = Evaluator::new(model, settings, hooks)
        .evaluate(&tasks)
        .unwrap();
    let mut worst: f64 = 0.0;
    for (task, name) in report.tasks.iter().zip(["arc_easy", "hellaswag"]) {
        let expected = fixture(name);
        assert_eq!(task.docs.len(), DOCS);
        for (doc, sample) in task.docs.iter().zip(&expected) {
            worst = worst.max(compare_doc(name, doc, sample));
        }
    }
    println!("largest loglikelihood difference from lm-eval 0.4.13: {worst:.2e}");
}

/// Checks one document against lm-eval's sample; returns the largest loglikelihood difference.
fn compare_doc(task: &str, doc: &erebor_eval::evaluator::DocResult, sample: &Value) -> f64 {
    let id = doc.instance.doc_id;
    assert_eq!(
        usize::try_from(sample["doc_id"].as_u64().unwrap()).unwrap(),
        id,
        "{task}"
    );
    assert_eq!(
        sample["target"].as_str().unwrap(),
        doc.instance.target,
        "{task} {id}"
    );
    let ours: Value = serde_json::from_str(&sample_line(doc, "none")).unwrap();
    for key in [
        "doc",
        "arguments",
        "doc_hash",
        "prompt_hash",
        "target_hash",
        "filter",
    ] {
        assert_eq!(ours[key], sample[key], "{task} doc {id}: {key}");
    }
    // The same metric names (erebor lists the leaderboard's first: acc_norm, acc).
    let names = |v: &Value| {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&ours["metrics"]),
        names(&sample["metrics"]),
        "{task} doc {id}"
    );
    let mut worst: f64 = 0.0;
    let mut theirs = Vec::new();
    for (i, (response, request)) in doc.responses.iter().zip(&doc.instance.requests).enumerate() {
        let Request::Loglikelihood { .. } = request else {
            panic!("{task}: loglikelihood requests expected")
        };
        let Response::Loglikelihood { logprob, is_greedy } = response else {
            panic!("{task}: loglikelihood responses expected")
        };
        let (ll, greedy) = lm_eval_response(sample, i);
        let diff = (logprob - ll).abs();
        assert!(
            diff < 1e-3,
            "{task} doc {id} request {i}: erebor {logprob}, lm-eval {ll}"
        );
        assert_eq!(*is_greedy, greedy, "{task} doc {id} request {i}");
        worst = worst.max(diff);
        theirs.push(ll);
    }
    // Predictions: acc where the top two log-likelihoods are clearly apart; acc_norm where the
    // top two length-normalised ones are (lm-eval's per-document values decide).
    let lengths: Vec<f64> = doc
        .instance
        .requests
        .iter()
        .map(|r| match r {
            Request::Loglikelihood { continuation, .. } => continuation.chars().count() as f64,
            Request::GenerateUntil { .. } => 1.0,
        })
        .collect();
    let normed: Vec<f64> = theirs.iter().zip(&lengths).map(|(l, n)| l / n).collect();
    for (metric, values) in [("acc", &theirs), ("acc_norm", &normed)] {
        if clear_winner(values, 2e-3) {
            let value = doc.metrics.iter().find(|(m, _)| m == metric).unwrap().1;
            assert_eq!(
                value,
                sample[metric].as_f64().unwrap(),
                "{task} doc {id} {metric}"
            );
        }
    }
    worst
}
