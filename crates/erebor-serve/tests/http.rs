//! `erebor model serve` over raw HTTP on 127.0.0.1 (reqwest), with a random model carrying
//! SmolLM2's tokenizer and chat template: streamed chunks concatenate to the whole answer at
//! temperature 0 and equal erebor-model's `generate`; stop strings; OpenAI-shaped 4xx for
//! unknown model, invalid JSON and `max_tokens` over the window; 429 with Retry-After over the
//! queue bound; the API key on every route; a client that disconnects mid-stream frees its
//! slot for the next request.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use erebor_model::burn::tensor::DType;
use erebor_model::{ChatMessage, Checkpoint, GenerationConfig, generate};
use erebor_serve::Limits;
use serde_json::{Value, json};

const NAME: &str = "tiny";

fn limits(max_batch: usize, max_queue: usize) -> Limits {
    Limits {
        max_batch,
        max_queue,
    }
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

async fn post(base: &str, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Concatenated content of a streamed chat reply and its finish reason.
fn streamed_chat(body: &str) -> (String, String, Value) {
    let data = sse_data(body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    let mut finish = String::new();
    let mut usage = Value::Null;
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        if let Some(choice) = c["choices"].get(0) {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                f.clone_into(&mut finish);
            }
        }
        if !c["usage"].is_null() {
            usage = c["usage"].clone();
        }
    }
    (text, finish, usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_equals_whole_and_generate_with_stop_strings() {
    let dir = tempfile::tempdir().unwrap();
    if common::random_checkpoint(dir.path()).is_none() {
        return;
    }
    let server = common::start(dir.path(), NAME, limits(4, 8), None).await;
    let question = "Name three colours.";
    let request = json!({"model": NAME, "messages": [{"role": "user", "content": question}],
                         "temperature": 0, "max_tokens": 40, "seed": 1});
    let whole: Value = post(&server.base, "/v1/chat/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["object"], "chat.completion");
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let response = post(&server.base, "/v1/chat/completions", streaming).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (streamed, finish, usage) = streamed_chat(&response.text().await.unwrap());
    assert_eq!(streamed, text, "chunks concatenate to the whole answer");
    assert_eq!(finish, whole["choices"][0]["finish_reason"]);
    assert_eq!(usage, whole["usage"]);

    assert_generate_gives_the_same_answer(dir.path(), question, &text, &whole);
    stop_strings_cut_the_answer(&server.base, request, &text).await;
    completions_streamed_and_whole_agree(&server.base).await;

    let models: Value = reqwest::get(format!("{}/v1/models", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], NAME);
}

/// The chat answer `text` (with `whole`'s token counts) is what erebor-model's `generate`
/// gives for the chat-templated `question`.
fn assert_generate_gives_the_same_answer(dir: &Path, question: &str, text: &str, whole: &Value) {
    let ckpt = Checkpoint::load(
        dir,
        &"cpu"
            .parse::<erebor_model::DeviceSpec>()
            .unwrap()
            .device()
            .unwrap(),
        DType::F32,
    )
    .unwrap();
    let tok = ckpt.tokenizer.as_ref().unwrap();
    let prompt = tok
        .chat_template()
        .unwrap()
        .unwrap()
        .render(&[ChatMessage::user(question)], true)
        .unwrap();
    let ids = tok.encode_ids(&prompt, false).unwrap();
    let config = GenerationConfig {
        max_new_tokens: 40,
        stop_token_ids: tok.stop_token_ids().to_vec(),
        ..GenerationConfig::default()
    };
    let want = generate(&ckpt.model, Some(tok), std::slice::from_ref(&ids), &config).unwrap();
    assert_eq!(text, want[0].text);
    assert_eq!(whole["usage"]["prompt_tokens"], ids.len());
    assert_eq!(whole["usage"]["completion_tokens"], want[0].token_ids.len());
    assert_eq!(
        whole["usage"]["total_tokens"],
        ids.len() + want[0].token_ids.len()
    );
}

/// A stop string from the middle of `text` (the answer to `request`) cuts it, streamed and
/// whole.
async fn stop_strings_cut_the_answer(base: &str, request: Value, text: &str) {
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() > 15, "{text:?}");
    let stop: String = chars[10..13].iter().collect();
    let cut_at = text.find(&stop).unwrap();
    let mut stopped = request;
    stopped["stop"] = json!([stop, "never-appears-xyz"]);
    let whole: Value = post(base, "/v1/chat/completions", stopped.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], text[..cut_at]);
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    stopped["stream"] = json!(true);
    let body = post(base, "/v1/chat/completions", stopped)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(streamed_chat(&body).0, text[..cut_at]);
}

/// `/v1/completions`: the raw prompt, streamed and whole agree.
async fn completions_streamed_and_whole_agree(base: &str) {
    let request = json!({"model": NAME, "prompt": "Once upon a time", "temperature": 0,
                         "max_tokens": 24});
    let whole: Value = post(base, "/v1/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["object"], "text_completion");
    let mut streaming = request;
    streaming["stream"] = json!(true);
    let body = post(base, "/v1/completions", streaming)
        .await
        .text()
        .await
        .unwrap();
    let data = sse_data(&body);
    let streamed: String = data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(streamed, whole["choices"][0]["text"].as_str().unwrap());
    assert_eq!(whole["usage"]["completion_tokens"], 24);
}

async fn assert_error(
    response: reqwest::Response,
    status: u16,
    param: Option<&str>,
    code: Option<&str>,
) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_shaped_errors_and_the_key_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    if common::random_checkpoint(dir.path()).is_none() {
        return;
    }
    let server = common::start(dir.path(), NAME, limits(2, 2), Some("sk-test-123")).await;
    let client = reqwest::Client::new();
    let chat = format!("{}/v1/chat/completions", server.base);
    let ok_body =
        json!({"model": NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    // No key, a wrong key: 401 everywhere, /health included.
    for path in ["/health", "/v1/models"] {
        let r = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_error(r, 401, None, Some("invalid_api_key")).await;
    }
    let r = client
        .post(&chat)
        .bearer_auth("sk-wrong")
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, None, Some("invalid_api_key")).await;
    let r = client
        .post(&chat)
        .bearer_auth("sk-test-123")
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let with_key = |body: &str| {
        client
            .post(&chat)
            .bearer_auth("sk-test-123")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let r = with_key(r#"{"model": "tiny", "messages": [}"#)
        .await
        .unwrap();
    assert_error(r, 400, None, None).await;
    let r = with_key(r#"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#)
        .await
        .unwrap();
    assert_error(r, 404, Some("model"), Some("model_not_found")).await;
    let r = with_key(
        r#"{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 600}"#,
    )
    .await
    .unwrap();
    assert_error(r, 400, Some("max_tokens"), Some("context_length_exceeded")).await;
    let r = with_key(
        r#"{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": 0}"#,
    )
    .await
    .unwrap();
    assert_error(r, 400, Some("top_p"), None).await;
    let r = with_key(r#"{"model": "tiny", "messages": "hi"}"#)
        .await
        .unwrap();
    assert_error(r, 400, None, None).await;
}

/// Polls /health until `check` holds (or fails after 20 s).
async fn wait_health(base: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let h: Value = reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if check(&h) {
            return h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waiting for {what}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bound_gives_429_and_a_disconnect_frees_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    if common::random_checkpoint(dir.path()).is_none() {
        return;
    }
    let server = common::start(dir.path(), NAME, limits(1, 1), None).await;
    let long = json!({"model": NAME, "prompt": "The", "temperature": 0, "max_tokens": 500,
                      "stream": true});
    // A streams and holds the only slot.
    let mut a = post(&server.base, "/v1/completions", long.clone()).await;
    assert_eq!(a.status().as_u16(), 200);
    let first = a.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    wait_health(&server.base, "A running", |h| h["running"] == 1).await;
    // B waits in the queue.
    let base = server.base.clone();
    let b = tokio::spawn(async move {
        let body = json!({"model": NAME, "prompt": "Hello", "temperature": 0, "max_tokens": 5});
        post(&base, "/v1/completions", body)
            .await
            .json::<Value>()
            .await
            .unwrap()
    });
    wait_health(&server.base, "B waiting", |h| h["waiting"] == 1).await;
    // C finds the queue full.
    let c = post(
        &server.base,
        "/v1/completions",
        json!({"model": NAME, "prompt": "x", "max_tokens": 2}),
    )
    .await;
    assert_eq!(c.headers()["retry-after"], "1");
    assert_error(c, 429, None, Some("rate_limit_exceeded")).await;

    // A disconnects mid-stream: its slot goes to B long before A's 500 tokens would end.
    let dropped = Instant::now();
    drop(a);
    let b = tokio::time::timeout(Duration::from_mins(1), b)
        .await
        .expect("B answered")
        .unwrap();
    assert_eq!(b["usage"]["completion_tokens"], 5);
    let h = wait_health(&server.base, "idle", |h| {
        h["running"] == 0 && h["waiting"] == 0
    })
    .await;
    assert_eq!(h["status"], "ok");
    let freed_in = dropped.elapsed();

    // The time A's request takes to run to its end, for comparison.
    let start = Instant::now();
    let mut whole = long;
    whole["stream"] = json!(false);
    let full: Value = post(&server.base, "/v1/completions", whole)
        .await
        .json()
        .await
        .unwrap();
    let full_time = start.elapsed();
    assert_eq!(full["usage"]["completion_tokens"], 500, "{full}");
    assert!(
        freed_in < full_time / 2,
        "slot freed after {freed_in:?}; the whole request takes {full_time:?}"
    );
}
