//! SmolLM2-135M-Instruct (the `Q4_1` GGUF in ../shared) served on the CPU: answers "What is the
//! capital of France?" with Paris through the official `openai` Python client (the evaluation
//! venv; skipped outside CI when absent, a failure under CI=true), streamed and whole alike,
//! and through raw HTTP.

mod common;

use std::process::Command;

use erebor_serve::Limits;
use serde_json::Value;

const NAME: &str = "smollm2-135m-instruct";
const GGUF: &str = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_answers_paris_over_raw_http() {
    let Some(gguf) = common::shared(GGUF) else {
        return;
    };
    let server = common::start(
        &gguf,
        NAME,
        Limits {
            max_batch: 4,
            max_queue: 4,
        },
        None,
    )
    .await;
    let body = serde_json::json!({"model": NAME, "temperature": 0, "max_tokens": 24,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_client_works_against_the_server() {
    let (Some(gguf), Some(python)) = (common::shared(GGUF), common::venv_python()) else {
        return;
    };
    let key = "sk-erebor-test";
    let server = common::start(
        &gguf,
        NAME,
        Limits {
            max_batch: 4,
            max_queue: 4,
        },
        Some(key),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/openai_client.py");
    let base = format!("{}/v1", server.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &base, NAME, key])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["models"], serde_json::json!([NAME]));
    assert!(r["whole"].as_str().unwrap().contains("Paris"), "{r}");
    assert_eq!(r["streamed"], r["whole"], "{r}");
    assert_eq!(r["stream_usage"], r["usage"], "{r}");
    assert_eq!(r["finish"], "stop");
    assert_eq!(r["completion_tokens"], 5);
    assert_eq!(r["unknown_model_error"], "NotFoundError");
}
