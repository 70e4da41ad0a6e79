//! GSM8K under `harness: v0.4`: lm-eval 0.4.13's two filters (`strict-match`,
//! `flexible-extract`) and its `exact_match` settings, checked against what lm-eval's own
//! filter and metric code returns on hand-made generations
//! (`tests/fixtures/lm_eval_gsm8k_filters.json`, written by `scripts/gsm8k_v04_filters.py`);
//! then the whole path through the evaluator: samples with one line per document per filter,
//! results keys `exact_match,strict-match` / `exact_match,flexible-extract`, store keys and
//! the leaderboard average on strict-match. b281b09's GSM8K stays one `acc` with no filter.

// Exact-match scores are 0 or 1 and their means over three documents are computed the same
// way on both sides: equality is the check.
#![allow(clippy::float_cmp)]

mod common;

use std::path::Path;

use common::tiny_arith_dir;
use erebor_core::NullProgress;
use erebor_eval::evaluator::{EvalModel, Hooks};
use erebor_eval::kind::record_metrics;
use erebor_eval::output::write_outputs;
use erebor_eval::{
    EvalReport, EvalSettings, Evaluator, Harness, Response, Task, TaskOptions, leaderboard_tasks,
};
use erebor_model::burn::tensor::DType;
use erebor_model::{CausalLm, ModelConfig, Tokenizer};
use serde_json::{Value, json};

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lm_eval_gsm8k_filters.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `gsm8k_test.jsonl` whose answers are the fixture's targets, and the 0-shot task over it.
fn gsm8k_task(dir: &Path, answers: &[&str], harness: Harness) -> Box<dyn Task> {
    let lines: Vec<String> = answers
        .iter()
        .enumerate()
        .map(|(i, answer)| json!({"question": format!("q{i}"), "answer": answer}).to_string())
        .collect();
    std::fs::write(dir.join("gsm8k_test.jsonl"), lines.join("\n") + "\n").unwrap();
    let options = TaskOptions {
        data_dir: dir.to_owned(),
        num_fewshot: Some(0),
        harness,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    leaderboard_tasks(&["gsm8k"], &options).unwrap().remove(0)
}

#[test]
fn v04_filters_and_exact_match_equal_lm_evals_own_code() {
    let fixture = fixture();
    assert_eq!(fixture["lm_eval_version"], "0.4.13");
    let cases = fixture["cases"].as_array().unwrap();
    let answers: Vec<&str> = cases
        .iter()
        .map(|c| c["target"].as_str().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let task = gsm8k_task(dir.path(), &answers, Harness::V04);
    assert_eq!(task.filters(), ["strict-match", "flexible-extract"]);
    let names: Vec<&str> = task.metrics().iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        ["exact_match,strict-match", "exact_match,flexible-extract"]
    );
    let instances = task.instances(None).unwrap();
    assert_eq!(instances.len(), cases.len());
    let mut flexible_differs = 0;
    for (instance, case) in instances.iter().zip(cases) {
        let generation = case["generation"].as_str().unwrap();
        let responses = [Response::Generated(generation.to_owned())];
        for filter in ["strict-match", "flexible-extract"] {
            let filtered = task.filtered_responses(filter, instance, &responses);
            assert_eq!(
                filtered,
                [case["filtered"][filter].clone()],
                "{filter} of {generation:?}"
            );
        }
        let metrics = task.process_results(instance, &responses).unwrap();
        let expected = [
            (
                "exact_match,strict-match".to_owned(),
                case["exact_match"]["strict-match"].as_f64().unwrap(),
            ),
            (
                "exact_match,flexible-extract".to_owned(),
                case["exact_match"]["flexible-extract"].as_f64().unwrap(),
            ),
        ];
        assert_eq!(metrics, expected, "{generation:?} against {instance:?}");
        flexible_differs += usize::from(expected[0].1 != expected[1].1);
    }
    assert!(
        flexible_differs >= 4,
        "the cases tell the two filters apart ({flexible_differs})"
    );
}

#[test]
fn b281b09_gsm8k_keeps_one_acc_without_filters() {
    let dir = tempfile::tempdir().unwrap();
    let task = gsm8k_task(dir.path(), &["#### 3", "#### 1200"], Harness::B281b09);
    assert_eq!(task.filters(), ["none"]);
    let instances = task.instances(None).unwrap();
    let doc = instances.iter().find(|i| i.doc_id == 1).unwrap();
    // flexible-extract would take "$1,200." and count it right; b281b09 needs `#### N`.
    let responses = [Response::Generated("The answer is $1,200.".into())];
    let metrics = task.process_results(doc, &responses).unwrap();
    assert_eq!(metrics, [("acc".to_owned(), 0.0)]);
    assert_eq!(
        task.filtered_responses("none", doc, &responses),
        [json!("[invalid]")]
    );
}

/// A random tiny-arith model with a 512-token window: GSM8K's 256 new tokens do not fit in
/// tiny-arith's 256.
fn long_window_model(dir: &Path) -> (CausalLm, Tokenizer) {
    let model_dir = dir.join("model");
    std::fs::create_dir_all(&model_dir).unwrap();
    let source = tiny_arith_dir();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    config["max_position_embeddings"] = json!(512);
    std::fs::write(model_dir.join("config.json"), config.to_string()).unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(source.join(file), model_dir.join(file)).unwrap();
    }
    let config = ModelConfig::from_dir(&model_dir).unwrap();
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    let model = CausalLm::random(&config, 3, 0.2, &device, DType::F32);
    (model, Tokenizer::from_dir(&model_dir).unwrap())
}

struct Recorder(std::sync::Mutex<Vec<(String, f64)>>);

impl erebor_core::MetricsSink for Recorder {
    fn record(&self, key: &str, _index: u64, value: f64) {
        self.0.lock().unwrap().push((key.to_owned(), value));
    }
}

#[test]
fn v04_samples_results_and_store_keys_carry_both_filters() {
    let dir = tempfile::tempdir().unwrap();
    let answers = ["#### 3", "so\n#### 12", "#### 7"];
    let tasks = vec![gsm8k_task(dir.path(), &answers, Harness::V04)];
    let (model, tok) = long_window_model(dir.path());
    let model = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let hooks = Hooks {
        progress: &NullProgress,
        cancel: None,
    };
    let report = Evaluator::new(model, EvalSettings::default(), hooks)
        .evaluate(&tasks)
        .unwrap();
    let out = dir.path().join("out");
    let files = write_outputs(&report, &common::run_info(Harness::V04), &out).unwrap();

    assert_samples_carry_both_filters(&files.samples[0], &report, tasks[0].as_ref(), answers.len());

    // Results: lm-eval's keys for both filters; higher_is_better once per metric.
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.results).unwrap()).unwrap();
    let gsm8k = &results["results"]["gsm8k"];
    for filter in ["strict-match", "flexible-extract"] {
        let key = format!("exact_match,{filter}");
        let mean = report.tasks[0]
            .docs
            .iter()
            .map(|d| d.metrics.iter().find(|(k, _)| *k == key).unwrap().1);
        let mean = mean.sum::<f64>() / answers.len() as f64;
        assert_eq!(gsm8k[&key], json!(mean), "{key}");
        assert!(gsm8k[format!("exact_match_stderr,{filter}")].is_number());
    }
    assert!(gsm8k.get("exact_match,none").is_none());
    assert_eq!(
        results["higher_is_better"]["gsm8k"],
        json!({"exact_match": true})
    );
    let filters = &results["configs"]["gsm8k"]["filter_list"];
    assert_eq!(filters[1]["filter"][0]["group_select"], -1);

    // Leaderboard: strict-match, as the leaderboard's GSM8K.
    let lb = report.leaderboard.as_ref().unwrap();
    assert_eq!(lb.entries[0].metric, "exact_match,strict-match");
    assert_eq!(
        lb.value,
        gsm8k["exact_match,strict-match"].as_f64().unwrap()
    );

    // The run store: lm-eval's results key after `bench/<task>/`.
    let sink = Recorder(std::sync::Mutex::default());
    record_metrics(&report, &sink);
    let keys: Vec<String> = sink
        .0
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "bench/gsm8k/exact_match,strict-match",
            "bench/gsm8k/exact_match_stderr,strict-match",
            "bench/gsm8k/exact_match,flexible-extract",
            "bench/gsm8k/exact_match_stderr,flexible-extract",
            "bench/leaderboard/average",
        ]
    );
}

/// The samples file holds every document under strict-match, then every document under
/// flexible-extract, in lm-eval's key order, each with its filter's responses and metric.
fn assert_samples_carry_both_filters(
    samples: &Path,
    report: &EvalReport,
    task: &dyn Task,
    n_docs: usize,
) {
    let text = std::fs::read_to_string(samples).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 * n_docs);
    for (i, line) in lines.iter().enumerate() {
        let filter = if i < n_docs {
            "strict-match"
        } else {
            "flexible-extract"
        };
        let doc = &report.tasks[0].docs[i % n_docs];
        assert_eq!(line["doc_id"], json!(doc.instance.doc_id));
        assert_eq!(line["filter"], filter);
        assert_eq!(line["metrics"], json!(["exact_match"]));
        let raw = text.lines().nth(i).unwrap();
        assert!(
            raw.contains(&format!(
                "\"filter\": \"{filter}\", \"metrics\": [\"exact_match\"], \"doc_hash\""
            )),
            "lm-eval's key order: {raw}"
        );
        assert_eq!(
            line["filtered_resps"],
            json!(task.filtered_responses(filter, &doc.instance, &doc.responses))
        );
        let key = format!("exact_match,{filter}");
        let value = doc.metrics.iter().find(|(k, _)| *k == key).unwrap().1;
        assert_eq!(line["exact_match"], json!(value));
        assert_eq!(line["resps"], lines[i % n_docs]["resps"]);
    }
}
