//! End-to-end MT-Bench with the `erebor` binary and the test judge server
//! (crates/erebor-eval/tests/mt_bench_server): a workflow SFTs the quickstart's tiny model,
//! trains DPO and DPOP arms, answers two questions with each (`limit: 2`) and grades them,
//! single and pairwise, results per arm in the store; a second workflow over the same answers
//! sends the judge nothing; `erebor mt-bench` killed with SIGKILL mid-judging and run again
//! asks no finished judgment twice.

// MT-Bench scores here are means of a few integer ratings, exact in binary: equality is the
// check.
#![allow(clippy::float_cmp)]

mod common;
#[path = "../crates/erebor-eval/tests/mt_bench_server/mod.rs"]
mod mt_bench_server;

use common::{Backend, Sandbox};
use mt_bench_server::{Behaviour, JudgeServer};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `../shared/data/mt_bench`, or None (a failure under `CI=true`).
fn mt_bench_data() -> Option<PathBuf> {
    common::shared_path("data/mt_bench")
}

const WORKFLOW: &str = r#"
name: mt-bench-arms
params:
  judge_url: http://127.0.0.1:9/v1
  data: ../shared/data/mt_bench
steps:
  - id: sft-data
    uses: convert
    with:
      sources:
        - name: arith
          synthetic: {count: 200, seed: 1, steps: [2, 2], start: [2, 20], operand: [1, 9], max_value: 30, operations: [add, sub]}
          map: gsm8k
      tokenizer: models/tiny-arith
      split: {eval_rows: 16, seed: 0}
  - id: sft
    uses: sft
    with: {model: models/tiny-arith, init: random, seed: 1, dataset: "${{ steps.sft-data.outputs.dataset }}", eval_split: eval, lr: 3.0e-3, batch_size: 16, epochs: 1}
  - id: pairs
    uses: convert
    with:
      sources:
        - name: arith-pairs
          synthetic: {count: 64, seed: 2, steps: [2, 2], start: [2, 20], operand: [1, 9], max_value: 30, operations: [add, sub]}
          map: {type: low_edit, seed: 3}
      tokenizer: models/tiny-arith
      split: {eval_rows: 16, seed: 0}
  - id: train
    uses: preference
    matrix: {loss: [dpo, dpop]}
    with: {model: "${{ steps.sft.outputs.model }}", dataset: "${{ steps.pairs.outputs.dataset }}", loss: "${{ matrix.loss }}", beta: 0.2, lr: 1.0e-3, batch_size: 16, epochs: 1, seed: 4}
  - id: mt
    uses: mt-bench
    matrix: {loss: [dpo, dpop]}
    with:
      model: "${{ steps.train.outputs.model }}"
      model_id: "${{ matrix.loss }}"
      template: chatml
      data_dir: "${{ params.data }}"
      limit: 2
      max_new_tokens: 16
      judge: {url: "${{ params.judge_url }}", model: gpt-4, retry_base_s: 0.05}
    expect: {mt_bench/judge_errors: "== 0"}
  - id: mt-pair
    uses: mt-bench
    with:
      answers: "${{ steps.mt[dpop].outputs.answers }}"
      against: "${{ steps.mt[dpo].outputs.answers }}"
      mode: pairwise
      data_dir: "${{ params.data }}"
      limit: 2
      judge: {url: "${{ params.judge_url }}", model: gpt-4}
"#;

const SECOND: &str = r#"
name: mt-bench-again
params:
  judge_url: http://127.0.0.1:9/v1
  data: ../shared/data/mt_bench
  answers: answers.jsonl
steps:
  - id: judge-again
    uses: mt-bench
    with:
      answers: "${{ params.answers }}"
      model_id: dpop
      data_dir: "${{ params.data }}"
      limit: 2
      judge: {url: "${{ params.judge_url }}", model: gpt-4}
"#;

fn metric(sandbox: &Sandbox, run: &str, step: &str, key: &str) -> f64 {
    let out = sandbox.expect(
        &[
            "metrics", run, "--step", step, "--key", key, "--format", "csv",
        ],
        0,
    );
    let line = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no {key} for {step}: {out}"));
    line.split(',').nth(3).unwrap().parse().unwrap()
}

#[test]
fn arms_are_answered_and_judged_single_and_pairwise_and_a_second_workflow_pays_nothing() {
    let Some(data) = mt_bench_data() else { return };
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    sandbox.copy_ml_workflows();
    let workflow = sandbox.write("workflows/mt-bench-arms.yaml", WORKFLOW);
    let server = JudgeServer::start(Behaviour::Normal);
    let judge = format!("judge_url={}", server.url());
    let data_set = format!("data={}", data.display());
    sandbox.expect(
        &[
            "run",
            workflow.to_str().unwrap(),
            "--set",
            &judge,
            "--set",
            &data_set,
            "-q",
        ],
        0,
    );
    let run = sandbox.latest_run().unwrap();
    // Two arms x 2 questions x 2 turns single, then 2 questions x 2 turns x 2 orders pairwise:
    // 16 judgments (two arms that answer a turn alike ask the same request).
    let distinct = server.seen(|s| {
        s.requests
            .iter()
            .map(|r| r.1.clone())
            .collect::<std::collections::HashSet<_>>()
            .len()
    });
    // The arms run at once, so a request both ask may be in flight twice; never more often.
    assert!(server.requests() <= 16, "{}", server.requests());
    assert!(distinct > 8, "{distinct}");
    assert_arm_and_pair_scores(&sandbox, &run);
    let stored = sandbox.with_store(async |store| store.judgment_count(None).await.unwrap());
    assert_eq!(
        usize::try_from(stored).unwrap(),
        distinct,
        "every judgment is in the store"
    );

    // Another workflow grading the DPOP arm's answers again: all from the store.
    let answers = find_file(&sandbox.home().join("runs").join(&run), "dpop.jsonl")
        .expect("the DPOP arm's answers file");
    let asked = server.requests();
    let second = sandbox.write("workflows/again.yaml", SECOND);
    let answers_set = format!("answers={}", answers.display());
    sandbox.expect(
        &[
            "run",
            second.to_str().unwrap(),
            "--set",
            &judge,
            "--set",
            &data_set,
            "--set",
            &answers_set,
            "-q",
        ],
        0,
    );
    assert_eq!(
        server.requests(),
        asked,
        "the second workflow sent the judge nothing"
    );
    let again = sandbox.latest_run().unwrap();
    assert_eq!(
        metric(&sandbox, &again, "judge-again", "mt_bench/cached_judgments"),
        4.0
    );
    assert_eq!(
        metric(&sandbox, &again, "judge-again", "mt_bench/score"),
        6.0
    );
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().and_then(|n| n.to_str()) == Some(name) {
            return Some(path);
        }
    }
    None
}

/// The request hashes stored in the sandbox's SQLite store.
fn stored_hashes(sandbox: &Sandbox) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&sandbox.db_url()).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar("SELECT request_sha256 FROM judgments")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    })
}

#[test]
fn a_run_killed_mid_judging_resumes_without_asking_twice() {
    let Some(data) = mt_bench_data() else { return };
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    // Answers for the first five questions, written as FastChat's JSONL.
    let questions = std::fs::read_to_string(data.join("question.jsonl")).unwrap();
    let answers: String = questions
        .lines()
        .take(5)
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = q["question_id"].as_u64().unwrap();
            serde_json::json!({"question_id": id, "answer_id": format!("a{id}"), "model_id": "m",
                "choices": [{"index": 0, "turns": [format!("one {id}"), format!("two {id}")]}], "tstamp": 0.0})
                .to_string()
                + "\n"
        })
        .collect();
    let answers_file = sandbox.write("m.jsonl", &answers);
    let server = JudgeServer::start(Behaviour::Slow(Duration::from_millis(400)));
    let url = server.url();
    let args = [
        "mt-bench",
        "--answers",
        answers_file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--judge-url",
        &url,
        "--limit",
        "5",
        "--concurrency",
        "1",
    ];
    let mut child = sandbox
        .erebor()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.answered() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "no judgment arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = server.answered();
    assert!(before < 10, "killed mid-judging: {before} of 10");
    let finished = stored_hashes(&sandbox);
    assert!(
        finished.len() + 1 >= before,
        "judgments are stored as they arrive: {} of {before}",
        finished.len()
    );

    server.set(Behaviour::Normal);
    let table = sandbox.expect(&args, 0);
    assert!(table.contains("mt_bench/score"), "{table}");
    let asked = |sha: &str| server.seen(|s| s.requests.iter().filter(|r| r.1 == sha).count());
    for sha in &finished {
        assert_eq!(
            asked(sha),
            1,
            "a judgment finished before the kill was asked again"
        );
    }
    assert_eq!(stored_hashes(&sandbox).len(), 10);
}

/// The test judge's scores as each arm and the pairwise step of `run` recorded them: 8 for
/// every first turn, 4 for every second, every pair a tie.
fn assert_arm_and_pair_scores(sandbox: &Sandbox, run: &str) {
    assert_eq!(metric(sandbox, run, "mt[dpo]", "mt_bench/judgments"), 4.0);
    assert_eq!(metric(sandbox, run, "mt-pair", "mt_bench/judgments"), 8.0);
    for arm in ["mt[dpo]", "mt[dpop]"] {
        assert_eq!(metric(sandbox, run, arm, "mt_bench/turn1"), 8.0);
        assert_eq!(metric(sandbox, run, arm, "mt_bench/turn2"), 4.0);
        assert_eq!(metric(sandbox, run, arm, "mt_bench/score"), 6.0);
        assert_eq!(metric(sandbox, run, arm, "mt_bench/category/writing"), 6.0);
        assert_eq!(metric(sandbox, run, arm, "mt_bench/judge_errors"), 0.0);
    }
    // The test judge prefers neither arm: every pair is a tie.
    assert_eq!(
        metric(sandbox, run, "mt-pair", "mt_bench/pairwise/ties"),
        4.0
    );
    assert_eq!(
        metric(
            sandbox,
            run,
            "mt-pair",
            "mt_bench/pairwise/win_rate_adjusted"
        ),
        0.5
    );
}
