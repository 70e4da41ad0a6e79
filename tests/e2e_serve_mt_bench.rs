//! `erebor model serve` as the answer endpoint of `erebor mt-bench` (issue 12): SmolLM2-135M
//! (the `Q4_1` GGUF in `../shared`) served with `--port 0`, then `erebor mt-bench
//! --answers-from-url` without a judge on two greedy MT-Bench questions (a reasoning and a math
//! one, temperature 0 in FastChat). The answers file must hold both turns of each question, and
//! each turn must be exactly what the server answers, asked directly, for the conversation
//! mt-bench sends. The server is killed when the test ends, a panic included.
//! Needs `../shared` (or `EREBOR_SHARED`): skipped when absent, a failure under `CI=true`.

mod common;

use common::{Backend, Sandbox, repo_root};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const MODEL_NAME: &str = "smollm2";
const MAX_NEW_TOKENS: usize = 16;

/// `../shared` (or `$EREBOR_SHARED`) when it has the GGUF and the MT-Bench data, or None (a
/// failure under `CI=true`).
fn shared() -> Option<PathBuf> {
    let dir = std::env::var_os("EREBOR_SHARED")
        .map_or_else(|| repo_root().join("../shared"), PathBuf::from);
    let needed = [gguf_path(&dir), dir.join("data/mt_bench/question.jsonl")];
    if needed.iter().all(|p| p.exists()) {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{needed:?} missing and CI=true"
    );
    eprintln!("skipping: {needed:?} not found (set EREBOR_SHARED)");
    None
}

fn gguf_path(shared: &Path) -> PathBuf {
    shared.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// A running `erebor model serve`, killed (SIGKILL) and reaped on drop.
struct Server {
    child: Child,
    /// `host:port` it listens on.
    addr: String,
    log: PathBuf,
}

impl Server {
    /// Starts the server on a free port and waits (up to five minutes) for its
    /// `{"listening": URL, "model": NAME}` line.
    fn start(sandbox: &Sandbox, gguf: &Path) -> Server {
        let log = sandbox.path().join("serve.log");
        let mut child = sandbox
            .erebor()
            .args(["model", "serve", gguf.to_str().unwrap()])
            .args([
                "--port",
                "0",
                "--model-name",
                MODEL_NAME,
                "--max-batch",
                "4",
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Own the child before anything can panic, so the guard kills it.
        let mut server = Server {
            child,
            addr: String::new(),
            log,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_mins(5))
            .unwrap_or_else(|_| panic!("no listening line in 300 s\n{}", server.log_text()));
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{e}: {line:?}\n{}", server.log_text()));
        assert_eq!(ready["model"], MODEL_NAME, "{ready}");
        let url = ready["listening"].as_str().expect("a listening URL");
        let addr = url.strip_prefix("http://").expect("an http URL");
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "a real port on 127.0.0.1: {url}"
        );
        addr.clone_into(&mut server.addr);
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs `body` as JSON to `path` (HTTP/1.0, so the reply is not chunked); returns the
    /// status code and the parsed body.
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_mins(5)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let (head, text) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status: {head}"));
        let parsed = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {reply}"));
        (status, parsed)
    }

    /// The server's reply to the request mt-bench sends for `messages` at temperature 0
    /// (`request_body` in erebor-eval's `mt_bench` client), trimmed as mt-bench trims it.
    fn greedy_reply(&self, messages: &[(&str, &str)]) -> String {
        let messages: Vec<Value> = messages
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let body = json!({"model": MODEL_NAME, "messages": messages, "n": 1,
            "temperature": 0.0, "max_tokens": MAX_NEW_TOKENS});
        let (status, reply) = self.post("/v1/chat/completions", &body);
        assert_eq!(status, 200, "{reply}");
        assert!(
            reply["usage"]["completion_tokens"].as_u64().unwrap() <= MAX_NEW_TOKENS as u64 + 1,
            "max_tokens honoured: {reply}"
        );
        reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no content: {reply}"))
            .trim()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data folder with the first reasoning and the first math question of MT-Bench (both
/// answered greedily) and the judge files beside them.
fn greedy_data(sandbox: &Sandbox, shared: &Path) -> (PathBuf, Vec<Value>) {
    let source = shared.join("data/mt_bench");
    let all = std::fs::read_to_string(source.join("question.jsonl")).unwrap();
    let mut picked: Vec<Value> = Vec::new();
    for category in ["reasoning", "math"] {
        let question = all
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|q| q["category"] == category)
            .unwrap_or_else(|| panic!("no {category} question"));
        picked.push(question);
    }
    let mut lines = String::new();
    for question in &picked {
        lines.push_str(&format!("{question}\n"));
    }
    let dir = sandbox.path().join("mt_bench_data");
    sandbox.write("mt_bench_data/question.jsonl", &lines);
    std::fs::copy(
        source.join("judge_prompts.jsonl"),
        dir.join("judge_prompts.jsonl"),
    )
    .unwrap();
    (dir, picked)
}

#[test]
fn mt_bench_takes_its_answers_from_erebor_model_serve() {
    let Some(shared) = shared() else { return };
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    let (data, questions) = greedy_data(&sandbox, &shared);
    let server = Server::start(&sandbox, &gguf_path(&shared));
    let url = format!("http://{}/v1", server.addr);
    let out_dir = sandbox.path().join("mt");
    let max_new = MAX_NEW_TOKENS.to_string();
    let args = [
        "mt-bench",
        "--answers-from-url",
        &url,
        "--answers-from-model",
        MODEL_NAME,
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "2",
        "--max-new-tokens",
        &max_new,
        "--output",
        out_dir.to_str().unwrap(),
    ];
    let output = sandbox.run(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "erebor {args:?}\n{stderr}\nserver:\n{}",
        server.log_text()
    );
    let answers_file = stderr
        .lines()
        .find_map(|l| l.strip_prefix("answers: "))
        .unwrap_or_else(|| panic!("no answers line: {stderr}"));
    assert_eq!(
        Path::new(answers_file),
        out_dir.join(format!("{MODEL_NAME}/model_answer/{MODEL_NAME}.jsonl"))
    );
    let records: Vec<Value> = std::fs::read_to_string(answers_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    for (record, question) in records.iter().zip(&questions) {
        check_record(&server, record, question);
    }
}

/// One FastChat answer record: the question's id, the served model's name, two non-empty turns,
/// each the server's own greedy reply to the conversation so far.
fn check_record(server: &Server, record: &Value, question: &Value) {
    assert_eq!(record["question_id"], question["question_id"], "{record}");
    assert_eq!(record["model_id"], MODEL_NAME, "{record}");
    let turns: Vec<&str> = record["choices"][0]["turns"]
        .as_array()
        .unwrap_or_else(|| panic!("no turns: {record}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(turns.len(), 2, "{record}");
    assert!(turns.iter().all(|t| !t.is_empty()), "empty turn: {record}");
    let asked: Vec<&str> = question["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let first = server.greedy_reply(&[("user", asked[0])]);
    assert_eq!(turns[0], first, "turn 1 of {}", question["question_id"]);
    let second = server.greedy_reply(&[
        ("user", asked[0]),
        ("assistant", turns[0]),
        ("user", asked[1]),
    ]);
    assert_eq!(turns[1], second, "turn 2 of {}", question["question_id"]);
}
