//! End-to-end: `erebor eval` as a user runs it. A random-weight model (the tiny-arith config
//! and tokenizer, weights saved from a seed) is evaluated on an ARC-Easy-format data folder the
//! test writes: the results table on stdout, lm-eval's files on disk; then an evaluation killed
//! with SIGKILL part-way is run again and scores only the documents it had not finished
//! (counted in the results' `documents_scored` / `documents_from_cache`), with the same scores
//! as an uninterrupted run.

mod common;

use common::{Backend, Sandbox, repo_root};
use erebor_model::burn::tensor::DType;
use erebor_model::{CausalLm, ModelConfig, SaveOptions, Tokenizer, save_pretrained};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Saves a random tiny-arith model (config, safetensors, tokenizer) into `dir`.
fn save_random_model(dir: &Path) {
    let source = repo_root().join("workflows/models/tiny-arith");
    let config = ModelConfig::from_dir(&source).unwrap();
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    let model = CausalLm::random(&config, 5, 0.3, &device, DType::F32);
    let tokenizer = Tokenizer::from_dir(&source).unwrap();
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    save_pretrained(
        &model,
        dir,
        Some(&tokenizer),
        Some(&raw),
        &SaveOptions::default(),
    )
    .unwrap();
}

/// `arc_easy_{test,train}.jsonl` in the shared layout (`id`, `question`, `choices`, `gold`),
/// over the tiny-arith vocabulary.
fn write_arc_easy(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names = ["Ann", "Bob", "Mia", "Sam"];
    let rows = |n: usize, offset: usize| -> String {
        (0..n)
            .map(|i| {
                let a = 2 + (i + offset) % 7;
                let b = 1 + (i * 3) % 5;
                let row = json!({
                    "id": format!("q{}", i + offset),
                    "question": format!("{} has {a} apples. She gets {b} more. How many apples does {} have now?",
                                        names[i % 4], names[i % 4]),
                    "choices": [(a + b).to_string(), (a + b + 1).to_string(), (a * b).to_string(), a.to_string()],
                    "gold": i % 4,
                });
                row.to_string() + "\n"
            })
            .collect()
    };
    std::fs::write(dir.join("arc_easy_test.jsonl"), rows(n, 0)).unwrap();
    std::fs::write(dir.join("arc_easy_train.jsonl"), rows(20, 1000)).unwrap();
}

fn results_in(dir: &Path) -> Value {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("results_")
        })
        .unwrap();
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn eval_args<'a>(model: &'a str, data: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        model,
        "--tasks",
        "arc_easy",
        "--num-fewshot",
        "2",
        "--data-dir",
        data,
        "--output",
        output,
        "--batch-size",
        "4",
    ]
}

#[test]
fn erebor_eval_prints_a_table_writes_lm_eval_files_and_resumes_after_sigkill() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let model = sandbox.path().join("model");
    save_random_model(&model);
    let data = sandbox.path().join("data");
    write_arc_easy(&data, 600);
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());

    // An uninterrupted run without the cache: the reference scores.
    let reference_out = sandbox.path().join("reference");
    let mut args = eval_args(m, d, reference_out.to_str().unwrap());
    args.push("--no-cache");
    let table = sandbox.expect(&args, 0);
    assert!(
        table.contains("|arc_easy") && table.contains("acc_norm"),
        "{table}"
    );
    let out_dir = only_subdir(&reference_out);
    let reference = results_in(&out_dir);
    assert_eq!(
        reference["n-samples"]["arc_easy"],
        json!({"original": 600, "effective": 600})
    );
    let samples = samples_file(&out_dir, "arc_easy");
    assert_eq!(
        std::fs::read_to_string(samples).unwrap().lines().count(),
        600
    );

    // Killed part-way: the cache holds the finished documents.
    let out = sandbox.path().join("resumed");
    let args = eval_args(m, d, out.to_str().unwrap());
    let cache = sandbox.home().join("cache/eval");
    let mut child = sandbox
        .erebor()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_at = loop {
        let lines = cached_lines(&cache);
        if lines >= 8 {
            child.kill().unwrap(); // SIGKILL
            break lines;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "no document finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let finished = cached_lines(&cache);
    assert!(finished >= killed_at && finished < 600, "{finished}");

    sandbox.expect(&args, 0);
    let resumed = results_in(&only_subdir(&out));
    let task = &resumed["erebor"]["tasks"]["arc_easy"];
    let from_cache = usize::try_from(task["documents_from_cache"].as_u64().unwrap()).unwrap();
    assert_eq!(from_cache, finished);
    assert_eq!(
        usize::try_from(task["documents_scored"].as_u64().unwrap()).unwrap(),
        600 - finished
    );
    for key in ["acc,none", "acc_norm,none"] {
        let (a, b) = (
            reference["results"]["arc_easy"][key].as_f64().unwrap(),
            resumed["results"]["arc_easy"][key].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{key}: {a} vs {b}");
    }
    // A third run scores nothing.
    sandbox.expect(&args, 0);
}

/// The samples file lm-eval names `samples_<task>_<time>.jsonl` in `out_dir`.
fn samples_file(out_dir: &Path, task: &str) -> PathBuf {
    let prefix = format!("samples_{task}_");
    std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .unwrap()
}

fn only_subdir(dir: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Complete lines in every resume-cache file under `root`.
fn cached_lines(root: &Path) -> usize {
    let Ok(models) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut lines = 0;
    for model in models.flatten() {
        for file in std::fs::read_dir(model.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read(file.path()).unwrap_or_default();
            lines += bytecount_newlines(&text);
        }
    }
    lines
}

/// Newlines in `bytes`.
// A test helper over a few files: not worth the `bytecount` crate.
#[allow(clippy::naive_bytecount)]
fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The quickstart's task (workflows/tasks/arith.yaml) on a model with random weights: exact
/// match 0, the baseline the quickstart's trained models are compared with.
#[test]
// The random model answers no document right: its score is exactly 0.
#[allow(clippy::float_cmp)]
fn a_random_model_scores_zero_on_the_quickstart_task() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let model = sandbox.path().join("model");
    save_random_model(&model);
    let data = sandbox.path().join("dataset");
    std::fs::create_dir_all(&data).unwrap();
    let rows: String = (0..16)
        .map(|i| {
            let (a, b) = (3 + i % 9, 1 + i % 5);
            let row = json!({"id": format!("p{i}"), "messages": [
                {"role": "user", "content": format!("Ann has {a} coins. She gets {b} more. How many coins does Ann have now?")},
                {"role": "assistant", "content": format!("{a} + {b} = {}\n#### {}", a + b, a + b)},
            ]});
            row.to_string() + "\n"
        })
        .collect();
    std::fs::write(data.join("eval.jsonl"), rows).unwrap();
    let task = repo_root().join("workflows/tasks/arith.yaml");
    let out = sandbox.path().join("out");
    let table = sandbox.expect(
        &[
            "eval",
            model.to_str().unwrap(),
            "--tasks",
            task.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        0,
    );
    let results = results_in(&only_subdir(&out));
    let score = results["results"]["arith_heldout"]["exact_match,none"]
        .as_f64()
        .unwrap();
    println!("random model, quickstart task: exact_match {score}\n{table}");
    assert_eq!(score, 0.0, "{table}");
    assert_eq!(
        results["n-samples"]["arith_heldout"]["effective"],
        json!(16)
    );
}
