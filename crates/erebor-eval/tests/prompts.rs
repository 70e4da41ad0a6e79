//! Prompts byte for byte: against the requests lm-evaluation-harness b281b09 itself built
//! (`tests/fixtures/harness_b281b09_prompts.jsonl`, `scripts/harness_goldens.py`), and against
//! strings built here by hand for lm-eval 0.4's sampler. Tests that read ../shared skip with a
//! message when it is absent.

// mc1 is exactly 0 or 1: equality with the harness's value is the check (mc2 has a margin).
#![allow(clippy::float_cmp)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use erebor_eval::pyrandom::PyRandom;
use erebor_eval::{DocInstance, Harness, Request, Response, TaskOptions, leaderboard_tasks};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/leaderboard");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

fn options(data_dir: &Path, num_fewshot: usize, harness: Harness) -> TaskOptions {
    TaskOptions {
        data_dir: data_dir.to_path_buf(),
        num_fewshot: Some(num_fewshot),
        harness,
        gsm8k_exemplars: Some(data_dir.join("gsm8k_test.jsonl")),
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Every request of `instances`, in construction order, with its document.
fn flatten(instances: &[DocInstance]) -> Vec<(usize, usize, &Request)> {
    instances
        .iter()
        .flat_map(|i| {
            i.requests
                .iter()
                .enumerate()
                .map(move |(n, r)| (i.doc_id, n, r))
        })
        .collect()
}

fn assert_request(golden: &Value, doc_id: usize, index: usize, request: &Request) {
    let what = format!(
        "{} {}-shot, doc {}, request {}",
        golden["task"], golden["num_fewshot"], golden["doc_index"], index
    );
    assert_eq!(
        doc_id as u64,
        golden["doc_index"].as_u64().unwrap(),
        "{what}: document"
    );
    assert_eq!(
        index as u64,
        golden["request_index"].as_u64().unwrap(),
        "{what}: request index"
    );
    match request {
        Request::Loglikelihood {
            context,
            continuation,
        } => {
            assert_eq!(golden["request_type"], "loglikelihood", "{what}");
            assert_eq!(
                context,
                golden["context"].as_str().unwrap(),
                "{what}: context"
            );
            assert_eq!(
                continuation,
                golden["continuation"].as_str().unwrap(),
                "{what}: continuation"
            );
        }
        Request::GenerateUntil {
            context,
            until,
            max_gen_toks,
        } => {
            assert_eq!(golden["request_type"], "greedy_until", "{what}");
            assert_eq!(
                context,
                golden["context"].as_str().unwrap(),
                "{what}: context"
            );
            let want: Vec<String> =
                serde_json::from_value(golden["generation_args"]["until"].clone()).unwrap();
            assert_eq!(until, &want, "{what}: until");
            assert_eq!(*max_gen_toks, 256, "{what}");
        }
    }
}

#[test]
fn every_leaderboard_prompt_equals_harness_b281b09s() {
    let Some(data) = shared_data() else { return };
    let goldens = read_jsonl(&fixtures().join("harness_b281b09_prompts.jsonl"));
    let mut groups: BTreeMap<(String, u64), Vec<&Value>> = BTreeMap::new();
    for row in &goldens {
        let key = (
            row["task"].as_str().unwrap().to_string(),
            row["num_fewshot"].as_u64().unwrap(),
        );
        groups.entry(key).or_default().push(row);
    }
    assert!(groups.len() >= 10, "the golden file covers every task");
    for ((task, shots), rows) in &groups {
        let options = options(&data, usize::try_from(*shots).unwrap(), Harness::B281b09);
        let tasks = leaderboard_tasks(&[task.as_str()], &options).unwrap();
        let instances = tasks[0].instances(Some(5)).unwrap();
        let requests = flatten(&instances);
        assert_eq!(
            requests.len(),
            rows.len(),
            "{task} {shots}-shot: number of requests"
        );
        for (golden, (doc_id, index, request)) in rows.iter().zip(requests) {
            assert_request(golden, doc_id, index, request);
        }
    }
}

#[test]
fn truthfulqa_with_both_label_sets_matches_the_harness_requests_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("truthfulqa_mc_small.jsonl"),
        dir.path().join("truthfulqa_mc_validation.jsonl"),
    )
    .unwrap();
    let options = options(dir.path(), 0, Harness::B281b09);
    let task = leaderboard_tasks(&["truthfulqa"], &options)
        .unwrap()
        .remove(0);
    assert_eq!(
        task.metrics().iter().map(|m| m.name).collect::<Vec<_>>(),
        ["mc2", "mc1"]
    );
    assert!(task.notes().is_empty());
    let instances = task.instances(None).unwrap();
    let goldens = read_jsonl(&fixtures().join("truthfulqa_mc_small_requests_b281b09.jsonl"));
    let requests = flatten(&instances);
    assert_eq!(requests.len(), goldens.len());
    for (golden, (doc_id, index, request)) in goldens.iter().zip(requests) {
        assert_request(golden, doc_id, index, request);
    }
    let metrics: Value = serde_json::from_str(
        &std::fs::read_to_string(
            fixtures().join("truthfulqa_mc_small_requests_b281b09_metrics.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for want in metrics["docs"].as_array().unwrap() {
        let doc = usize::try_from(want["doc_index"].as_u64().unwrap()).unwrap();
        let instance = instances.iter().find(|i| i.doc_id == doc).unwrap();
        let responses: Vec<Response> = instance
            .requests
            .iter()
            .map(|r| match r {
                Request::Loglikelihood { continuation, .. } => Response::Loglikelihood {
                    logprob: -(((continuation.chars().count() * 7919) % 97) as f64) / 10.0,
                    is_greedy: false,
                },
                other @ Request::GenerateUntil { .. } => panic!("unexpected {other:?}"),
            })
            .collect();
        let got: BTreeMap<String, f64> = task
            .process_results(instance, &responses)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(got["mc1"], want["mc1"].as_f64().unwrap(), "doc {doc} mc1");
        assert!(
            (got["mc2"] - want["mc2"].as_f64().unwrap()).abs() < 1e-12,
            "doc {doc} mc2 {} vs {}",
            got["mc2"],
            want["mc2"]
        );
    }
}

fn rows(path: &Path) -> Vec<Value> {
    read_jsonl(path)
}

#[test]
fn arc_v04_draws_with_the_sampler_seed_1234_in_file_order() {
    let Some(data) = shared_data() else { return };
    let options = options(&data, 3, Harness::V04);
    let task = leaderboard_tasks(&["arc_easy"], &options)
        .unwrap()
        .remove(0);
    let instances = task.instances(Some(3)).unwrap();
    let test_rows = rows(&data.join("arc_easy_test.jsonl"));
    let train = rows(&data.join("arc_easy_train.jsonl"));
    let mut rnd = PyRandom::new(1234);
    let text = |row: &Value| format!("Question: {}\nAnswer:", row["question"].as_str().unwrap());
    let answer = |row: &Value| {
        row["choices"][usize::try_from(row["gold"].as_u64().unwrap()).unwrap()]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (doc, instance) in instances.iter().enumerate() {
        assert_eq!(instance.doc_id, doc, "lm-eval 0.4 does not shuffle");
        let mut shots = String::new();
        for i in rnd.sample_indices(train.len(), 3) {
            shots.push_str(&format!("{} {}\n\n", text(&train[i]), answer(&train[i])));
        }
        let want = format!("{shots}{}", text(&test_rows[doc]));
        let choices = test_rows[doc]["choices"].as_array().unwrap();
        assert_eq!(instance.requests.len(), choices.len());
        for (request, choice) in instance.requests.iter().zip(choices) {
            assert_eq!(
                request,
                &Request::Loglikelihood {
                    context: want.clone(),
                    continuation: format!(" {}", choice.as_str().unwrap())
                }
            );
        }
        assert_eq!(instance.target, test_rows[doc]["gold"].to_string());
    }
}

#[test]
fn hellaswag_preprocess_and_v04_order() {
    let Some(data) = shared_data() else { return };
    let options = options(&data, 0, Harness::V04);
    let task = leaderboard_tasks(&["hellaswag"], &options)
        .unwrap()
        .remove(0);
    let instance = &task.instances(Some(1)).unwrap()[0];
    let row = &rows(&data.join("hellaswag_validation.jsonl"))[0];
    assert_eq!(row["ctx_b"], "he");
    assert_eq!(
        instance.requests[0],
        Request::Loglikelihood {
            context: "Roof shingle removal: A man is sitting on a roof. He".into(),
            continuation: " is using wrap to wrap a pair of skis.".into(),
        }
    );
    assert_eq!(
        erebor_eval::tasks::hellaswag_preprocess("  a [title] b [step] c  d "),
        "a. b c d"
    );
    assert_eq!(
        erebor_eval::tasks::hellaswag_preprocess("x   y"),
        "x  y",
        "one pass of \"  \" -> \" \", as the harness"
    );
}

#[test]
fn gsm8k_v04_stop_strings_and_exemplar_note() {
    let Some(data) = shared_data() else { return };
    let task = leaderboard_tasks(&["gsm8k"], &options(&data, 5, Harness::V04))
        .unwrap()
        .remove(0);
    let instances = task.instances(Some(2)).unwrap();
    assert_eq!(
        instances[0].doc_id, 5,
        "the five exemplar rows are not scored; lm-eval 0.4 keeps file order"
    );
    let Request::GenerateUntil { until, context, .. } = &instances[0].requests[0] else {
        panic!("generation")
    };
    assert_eq!(until, &["Question:", "</s>", "<|im_end|>"]);
    assert_eq!(
        context.matches("\nAnswer: ").count(),
        5,
        "five worked exemplars"
    );
    assert!(
        task.notes()[0].contains("first 5 rows"),
        "{:?}",
        task.notes()
    );
    assert_eq!(task.metrics()[0].name, "exact_match,strict-match");
}

#[test]
fn the_registry_expands_groups() {
    let Some(data) = shared_data() else { return };
    let tasks = leaderboard_tasks(&["leaderboard"], &options(&data, 0, Harness::B281b09)).unwrap();
    assert_eq!(tasks.len(), 5 + 57);
    let mmlu: Vec<_> = tasks.iter().filter(|t| t.group() == Some("mmlu")).collect();
    assert_eq!(mmlu.len(), 57);
    assert_eq!(mmlu[0].name(), "mmlu_abstract_algebra");
    let truthfulqa = tasks.iter().find(|t| t.name() == "truthfulqa_mc").unwrap();
    assert_eq!(
        truthfulqa
            .metrics()
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>(),
        ["mc1"]
    );
    assert!(truthfulqa.notes()[0].contains("MC1 in for MC2"));
    let error = leaderboard_tasks(&["arc_hard"], &options(&data, 0, Harness::B281b09))
        .err()
        .unwrap();
    assert!(error.to_string().contains("unknown task"), "{error}");
}
