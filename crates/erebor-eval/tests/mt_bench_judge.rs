//! MT-Bench judging against a test judge server on 127.0.0.1 (`tests/mt_bench_server`): every
//! server behaviour (normal, no rating, 429 then success, a 500 storm, a body that is not JSON,
//! a hang past the timeout, a refused connection), the cache (a second run sends nothing),
//! repeats, pairwise grading in both orders, and bad input that names the item.

// MT-Bench scores are means of a few integer ratings, exact in binary: equality is the check.
#![allow(clippy::float_cmp)]

mod common;
mod mt_bench_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erebor_core::{CancelToken, MemorySink, NullProgress, StepEvent};
use erebor_eval::mt_bench::data::{AnswerRecord, write_answers};
use erebor_eval::mt_bench::{
    ChatClient, Endpoint, EndpointConfig, MemoryCache, MemoryProvider, Mode, MtBenchConfig,
    MtBenchError, RetryPolicy, RunContext, RunOutcome, record_metrics, run,
};
use mt_bench_server::{Behaviour, JudgeServer};
use serde_json::Value;

/// Questions 81 (writing), 101 (reasoning) and 111 (math) of the real file, with the real
/// judge prompts and GPT-4 references, in a temp data folder.
fn data_dir(tmp: &Path) -> Option<PathBuf> {
    let shared = common::shared("data/mt_bench")?;
    let dir = tmp.join("mt_bench");
    std::fs::create_dir_all(dir.join("reference_answer")).unwrap();
    let questions: String = std::fs::read_to_string(shared.join("question.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            [81, 101, 111].contains(
                &serde_json::from_str::<Value>(l).unwrap()["question_id"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    std::fs::write(dir.join("question.jsonl"), questions).unwrap();
    std::fs::copy(
        shared.join("judge_prompts.jsonl"),
        dir.join("judge_prompts.jsonl"),
    )
    .unwrap();
    std::fs::copy(
        shared.join("reference_answer/gpt-4.jsonl"),
        dir.join("reference_answer/gpt-4.jsonl"),
    )
    .unwrap();
    Some(dir)
}

/// An answers file for the three questions; `preferred` marks the answers of those questions.
fn answers_file(dir: &Path, model_id: &str, preferred: &[u64]) -> PathBuf {
    let answers: BTreeMap<u64, AnswerRecord> = [81u64, 101, 111]
        .into_iter()
        .map(|q| {
            let mark = if preferred.contains(&q) {
                " PREFERRED"
            } else {
                ""
            };
            let turns = vec![
                format!("{model_id} first {q}{mark}"),
                format!("{model_id} second {q}{mark}"),
            ];
            (q, AnswerRecord::new(q, model_id, turns))
        })
        .collect();
    let path = dir.join(format!("{model_id}.jsonl"));
    write_answers(&path, &answers).unwrap();
    path
}

fn judge(url: String) -> EndpointConfig {
    EndpointConfig {
        url,
        model: "gpt-4".into(),
        api_key_env: None,
        timeout_s: 5.0,
        max_retries: 3,
        retry_base_s: 0.01,
        retry_max_s: 0.05,
    }
}

fn config(data: &Path, answers: &Path, judge_url: String) -> MtBenchConfig {
    MtBenchConfig {
        model: None,
        answers_from: None,
        answers: Some(answers.display().to_string()),
        model_id: None,
        data_dir: data.display().to_string(),
        reference_answers: None,
        template: None,
        system_prompt: None,
        judge: Some(judge(judge_url)),
        mode: Mode::Single,
        against: None,
        repeats: 1,
        limit: None,
        max_new_tokens: 16,
        concurrency: 4,
        temperature: None,
        seed: 0,
        device: erebor_model::DeviceSpec::Cpu,
        dtype: None,
        batch_size: 8,
    }
}

fn run_with(
    config: &MtBenchConfig,
    work: &Path,
    cache: &Arc<MemoryCache>,
) -> Result<RunOutcome, MtBenchError> {
    let provider = MemoryProvider(cache.clone());
    let cancel = CancelToken::new();
    let ctx = RunContext {
        base_dir: work,
        work_dir: work,
        default_model_id: "m1".into(),
        provider: &provider,
        progress: &NullProgress,
        cancel: &cancel,
    };
    run(config, &ctx)
}

fn metrics(outcome: &RunOutcome) -> BTreeMap<String, f64> {
    let sink = MemorySink::new();
    record_metrics(outcome, &sink);
    sink.events()
        .into_iter()
        .filter_map(|e| match e {
            StepEvent::Metric {
                key,
                index: 0,
                value,
            } => Some((key, value)),
            _ => None,
        })
        .collect()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn normal_judgments_score_as_fastchat_and_a_second_run_sends_none() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    let answers = answers_file(tmp.path(), "m1", &[]);
    let server = JudgeServer::start(Behaviour::Normal);
    let cache = Arc::new(MemoryCache::default());
    let config = config(&data, &answers, server.url());
    let outcome = run_with(&config, tmp.path(), &cache).unwrap();
    assert_eq!(server.requests(), 6, "3 questions x 2 turns");
    let m = metrics(&outcome);
    assert_eq!(m["mt_bench/turn1"], 8.0);
    assert_eq!(m["mt_bench/turn2"], 4.0);
    assert_eq!(m["mt_bench/score"], 6.0);
    assert_eq!(m["mt_bench/category/math"], 6.0);
    assert_eq!(m["mt_bench/judge_errors"], 0.0);
    let records = jsonl(outcome.judgments_file.as_ref().unwrap());
    assert_eq!(records.len(), 6);
    let mut keys: Vec<&str> = records[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut fastchat = [
        "question_id",
        "model",
        "judge",
        "user_prompt",
        "judgment",
        "score",
        "turn",
        "tstamp",
    ];
    fastchat.sort_unstable();
    assert_eq!(keys, fastchat, "FastChat's single judgment keys");
    let prompt = |q: u64, turn: u64| {
        records
            .iter()
            .find(|r| r["question_id"] == q && r["turn"] == turn)
            .unwrap()
            .clone()
    };
    assert_eq!(
        prompt(81, 1)["judge"],
        serde_json::json!(["gpt-4", "single-v1"])
    );
    assert_eq!(prompt(81, 2)["judge"][1], "single-v1-multi-turn");
    assert_eq!(prompt(101, 1)["judge"][1], "single-math-v1");
    assert_eq!(prompt(111, 2)["judge"][1], "single-math-v1-multi-turn");
    // The math prompt shows GPT-4's reference; turn 2 shows both turns of both.
    let math = prompt(111, 2)["user_prompt"].as_str().unwrap().to_owned();
    assert!(
        math.contains("### Reference answer:")
            && math.contains("m1 first 111")
            && math.contains("m1 second 111"),
        "{math}"
    );
    assert_eq!(prompt(81, 1)["score"], 8);

    // Another run over the same answers: everything from the cache, the same scores.
    let again = run_with(&config, tmp.path(), &cache).unwrap();
    assert_eq!(server.requests(), 6, "the second run sent nothing");
    assert_eq!(again.from_cache, 6);
    assert_eq!(metrics(&again)["mt_bench/score"], 6.0);
}

#[test]
fn a_reply_without_rating_is_counted_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    let answers = answers_file(tmp.path(), "m1", &[]);
    let server = JudgeServer::start(Behaviour::NoRating);
    let cache = Arc::new(MemoryCache::default());
    let outcome = run_with(&config(&data, &answers, server.url()), tmp.path(), &cache).unwrap();
    let m = metrics(&outcome);
    assert_eq!(m["mt_bench/judge_errors"], 6.0);
    assert!(
        !m.contains_key("mt_bench/score"),
        "no score from no ratings: {m:?}"
    );
    let records = jsonl(outcome.judgments_file.as_ref().unwrap());
    assert!(
        records.iter().all(|r| r["score"] == -1),
        "FastChat's -1 in the file"
    );
}

fn client(server: &JudgeServer, policy: RetryPolicy, key: Option<&str>) -> ChatClient {
    let endpoint = Endpoint {
        url: server.url(),
        model: "gpt-4".into(),
        api_key: key.map(str::to_owned),
    };
    ChatClient::new(endpoint, policy, 4).unwrap()
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
    }
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

const BODY: &str = r#"{"model":"gpt-4","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"[Instruction] rate it"}],"n":1,"temperature":0.0,"max_tokens":2048}"#;

#[test]
fn rate_limits_are_retried_after_retry_after() {
    let server = JudgeServer::start(Behaviour::RateLimited {
        n: 2,
        retry_after: Some("1".into()),
    });
    let c = client(&server, fast_policy(), Some("sk-test-key"));
    let started = Instant::now();
    let reply = block(c.complete(BODY)).unwrap();
    assert_eq!(reply.content, "A good answer. Rating: [[8]]");
    assert_eq!(reply.model.as_deref(), Some("test-judge-0613"));
    assert_eq!(server.requests(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited Retry-After twice: {:?}",
        started.elapsed()
    );
    let auth = server.seen(|s| s.requests[0].2.clone());
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-key"));
}

#[test]
fn server_errors_and_bad_bodies_are_retried_then_given_up() {
    let server = JudgeServer::start(Behaviour::ServerError { n: 2 });
    let c = client(&server, fast_policy(), None);
    assert!(block(c.complete(BODY)).is_ok());
    assert_eq!(server.requests(), 3, "two 500s then a reply");

    server.set(Behaviour::NotJson { n: 1 });
    assert!(block(c.complete(BODY)).is_ok());
    assert_eq!(server.requests(), 5, "an HTML body then a reply");

    server.set(Behaviour::ServerError { n: usize::MAX });
    let error = block(c.complete(BODY)).unwrap_err().to_string();
    assert!(
        error.contains("HTTP 500") && error.contains("gave up after 4 attempts"),
        "{error}"
    );
    assert_eq!(
        server.requests(),
        9,
        "a storm: the first attempt and 3 retries"
    );
}

#[test]
fn a_hang_past_the_timeout_is_retried() {
    let server = JudgeServer::start(Behaviour::Hang { n: 1 });
    let policy = RetryPolicy {
        timeout: Duration::from_millis(500),
        ..fast_policy()
    };
    let c = client(&server, policy.clone(), None);
    let started = Instant::now();
    assert!(block(c.complete(BODY)).is_ok());
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(server.requests(), 2);

    server.set(Behaviour::Hang { n: usize::MAX });
    let c = client(
        &server,
        RetryPolicy {
            max_retries: 1,
            ..policy
        },
        None,
    );
    let error = block(c.complete(BODY)).unwrap_err().to_string();
    assert!(error.contains("no reply within the timeout"), "{error}");
}

#[test]
fn the_concurrency_limit_holds() {
    let server = JudgeServer::start(Behaviour::Slow(Duration::from_millis(200)));
    let endpoint = Endpoint {
        url: server.url(),
        model: "gpt-4".into(),
        api_key: None,
    };
    let c = ChatClient::new(endpoint, fast_policy(), 2).unwrap();
    let started = Instant::now();
    block(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let c = c.clone();
            tasks.spawn(async move { c.complete(BODY).await.unwrap() });
        }
        while tasks.join_next().await.is_some() {}
    });
    assert!(
        started.elapsed() >= Duration::from_millis(790),
        "8 x 200 ms two at a time: {:?}",
        started.elapsed()
    );
}

#[test]
fn repeats_give_the_median_and_the_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    let answers = answers_file(tmp.path(), "m1", &[]);
    let server = JudgeServer::start(Behaviour::Normal);
    let cache = Arc::new(MemoryCache::default());
    let mut config = config(&data, &answers, server.url());
    config.repeats = 3;
    let outcome = run_with(&config, tmp.path(), &cache).unwrap();
    assert_eq!(
        server.requests(),
        18,
        "each request three times, the repeat index in the key"
    );
    assert_eq!(server.max_answered_per_body(), 3);
    assert_eq!(cache.len(), 18);
    let m = metrics(&outcome);
    assert_eq!(m["mt_bench/score"], 6.0);
    assert_eq!(m["mt_bench/score_spread"], 0.0);
    assert!(
        jsonl(outcome.judgments_file.as_ref().unwrap())
            .iter()
            .all(|r| r["repeat"].is_u64())
    );
}

#[test]
fn pairwise_judges_both_orders_and_disagreement_is_a_tie() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    // m1 is preferred on 81, m2 on 101, neither on 111.
    let first = answers_file(tmp.path(), "m1", &[81]);
    let second = answers_file(tmp.path(), "m2", &[101]);
    let server = JudgeServer::start(Behaviour::Normal);
    let cache = Arc::new(MemoryCache::default());
    let mut config = config(&data, &first, server.url());
    config.mode = Mode::Pairwise;
    config.against = Some(second.display().to_string());
    let outcome = run_with(&config, tmp.path(), &cache).unwrap();
    assert_eq!(server.requests(), 12, "3 questions x 2 turns x 2 orders");
    let m = metrics(&outcome);
    assert_eq!(m["mt_bench/pairwise/wins"], 2.0);
    assert_eq!(m["mt_bench/pairwise/losses"], 2.0);
    assert_eq!(m["mt_bench/pairwise/ties"], 2.0);
    assert_eq!(m["mt_bench/pairwise/win_rate_adjusted"], 0.5);
    let records = jsonl(outcome.judgments_file.as_ref().unwrap());
    let r81 = records
        .iter()
        .find(|r| r["question_id"] == 81 && r["turn"] == 1)
        .unwrap();
    assert_eq!(
        (r81["g1_winner"].as_str(), r81["g2_winner"].as_str()),
        (Some("model_1"), Some("model_1"))
    );
    assert_eq!(r81["model_2"], "m2");
    assert_eq!(r81["judge"][1], "pair-v2");
    let r111 = records
        .iter()
        .find(|r| r["question_id"] == 111 && r["turn"] == 2)
        .unwrap();
    assert_eq!(r111["judge"][1], "pair-math-v1-multi-turn");
    assert_eq!(r111["g1_winner"], "tie");
}

#[test]
fn a_refused_connection_fails_naming_the_item_and_url() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    let answers = answers_file(tmp.path(), "m1", &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let cache = Arc::new(MemoryCache::default());
    let error = run_with(&config(&data, &answers, url), tmp.path(), &cache)
        .unwrap_err()
        .to_string();
    assert!(error.contains("question 81 turn 1"), "{error}");
    assert!(
        error.contains(&format!("127.0.0.1:{port}/v1/chat/completions")),
        "{error}"
    );
    assert!(error.contains("cannot connect"), "{error}");
}

#[test]
fn bad_input_names_the_line_and_item() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(data) = data_dir(tmp.path()) else {
        return;
    };
    let answers = answers_file(tmp.path(), "m1", &[]);
    let cache = Arc::new(MemoryCache::default());
    let config = config(&data, &answers, "http://127.0.0.1:9/v1".into());

    // A question with one turn.
    let questions = data.join("question.jsonl");
    let good = std::fs::read_to_string(&questions).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let mut q: Value = serde_json::from_str(&lines[1]).unwrap();
    q["turns"] = serde_json::json!([q["turns"][0]]);
    lines[1] = q.to_string();
    std::fs::write(&questions, lines.join("\n")).unwrap();
    let error = run_with(&config, tmp.path(), &cache)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("question.jsonl:2: question 101: has 1 turn(s)"),
        "{error}"
    );
    std::fs::write(&questions, good).unwrap();

    // A judge prompt without its rating instruction.
    let prompts = data.join("judge_prompts.jsonl");
    let text = std::fs::read_to_string(&prompts).unwrap();
    let broken: Vec<String> = text
        .lines()
        .map(|l| {
            let mut p: Value = serde_json::from_str(l).unwrap();
            if p["name"] == "single-v1" {
                let t = p["prompt_template"]
                    .as_str()
                    .unwrap()
                    .replace("\"[[rating]]\", for example: \"Rating: [[5]]\"", "a number");
                p["prompt_template"] = Value::String(t);
            }
            p.to_string()
        })
        .collect();
    std::fs::write(&prompts, broken.join("\n")).unwrap();
    let error = run_with(&config, tmp.path(), &cache)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("judge_prompts.jsonl:")
            && error.contains("judge prompt `single-v1`")
            && error.contains("[[rating]]"),
        "{error}"
    );
}
