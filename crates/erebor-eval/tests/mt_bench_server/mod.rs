//! A test judge: an OpenAI-compatible chat-completions server on 127.0.0.1 that can answer
//! normally, answer without a rating, return 429 (with `Retry-After`) then succeed, storm 500s,
//! reply with a body that is not JSON, hang past the client's timeout, or answer slowly; it
//! counts every request (in total and per body).
//!
//! Normal replies are fixed by the prompt, so tests know the scores: a single-grading prompt
//! gets `[[8]]` for turn 1 and `[[4]]` for turn 2 (multi-turn prompts show `### User:`); a
//! pairwise prompt gets `[[A]]` when assistant A's text contains `PREFERRED`, `[[B]]` when
//! B's does, `[[C]]` otherwise. An answer request (no judge prompt) gets "answer N" back.
//! Used by crates/erebor-eval/tests/mt_bench*.rs and `tests/e2e_mt_bench.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server does with the next requests.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Behaviour {
    /// Replies as described in the module docs.
    Normal,
    /// Replies without any rating or verdict.
    NoRating,
    /// 429 with this `Retry-After` (seconds) for the next `n` requests, then normal.
    RateLimited {
        n: usize,
        retry_after: Option<String>,
    },
    /// 500 for the next `n` requests (`usize::MAX`: always), then normal.
    ServerError { n: usize },
    /// An HTML body with status 200 for the next `n` requests, then normal.
    NotJson { n: usize },
    /// Never answers the next `n` requests (hangs past any timeout), then normal.
    Hang { n: usize },
    /// Normal replies after this delay.
    Slow(Duration),
}

/// What the server saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Requests in arrival order: (time, sha256 of the body, the Authorization header).
    pub(crate) requests: Vec<(Instant, String, Option<String>)>,
    /// Requests answered with a normal reply, per body sha256.
    pub(crate) answered: HashMap<String, usize>,
}

/// A running judge server.
pub(crate) struct JudgeServer {
    /// Its address.
    pub(crate) addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Seen>>,
}

impl JudgeServer {
    /// Starts a server on a free port (its own thread and runtime; lives as long as the test).
    pub(crate) fn start(behaviour: Behaviour) -> Self {
        let behaviour = Arc::new(Mutex::new(behaviour));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (b, s) = (behaviour.clone(), seen.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (b, s) = (b.clone(), s.clone());
                    tokio::spawn(async move {
                        let _ = serve(stream, b, s).await;
                    });
                }
            });
        });
        JudgeServer {
            addr,
            behaviour,
            seen,
        }
    }

    /// The base URL (`http://127.0.0.1:PORT/v1`).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Changes what the next requests get.
    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.seen.lock().unwrap().requests.len()
    }

    /// Normal replies sent so far.
    pub(crate) fn answered(&self) -> usize {
        self.seen.lock().unwrap().answered.values().sum()
    }

    /// The largest number of normal replies sent for one body.
    pub(crate) fn max_answered_per_body(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .answered
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Runs `f` on what the server saw.
    pub(crate) fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }
}

/// What to do with one request, consuming one count of a limited behaviour.
fn next_action(behaviour: &Mutex<Behaviour>) -> Behaviour {
    let mut b = behaviour.lock().unwrap();
    let current = b.clone();
    let (Behaviour::RateLimited { n: remaining, .. }
    | Behaviour::ServerError { n: remaining }
    | Behaviour::NotJson { n: remaining }
    | Behaviour::Hang { n: remaining }) = &mut *b
    else {
        return current;
    };
    if *remaining == 0 {
        *b = Behaviour::Normal;
        return Behaviour::Normal;
    }
    if *remaining != usize::MAX {
        *remaining -= 1;
    }
    current
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Seen>>,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut stream).await?;
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_owned());
    let sha = hex::encode(Sha256::digest(&body));
    seen.lock()
        .unwrap()
        .requests
        .push((Instant::now(), sha.clone(), auth));
    let (status, extra, text) = match next_action(&behaviour) {
        Behaviour::Normal => normal(&body),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            normal(&body)
        }
        Behaviour::NoRating => (200, String::new(), completion("I would rather not say.")),
        Behaviour::RateLimited { retry_after, .. } => (
            429,
            retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default(),
            r#"{"error":{"message":"Rate limit reached"}}"#.to_owned(),
        ),
        Behaviour::ServerError { .. } => (500, String::new(), "internal error".to_owned()),
        Behaviour::NotJson { .. } => (
            200,
            String::new(),
            "<html>502 Bad Gateway</html>".to_owned(),
        ),
        Behaviour::Hang { .. } => {
            tokio::time::sleep(Duration::from_hours(1)).await;
            return Ok(());
        }
    };
    if status == 200 && text.starts_with('{') && !text.contains("rather not") {
        *seen.lock().unwrap().answered.entry(sha).or_default() += 1;
    }
    let reason = match status {
        200 => "OK",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((head, buf[header_end..].to_vec()))
}

fn completion(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-judge-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    })
    .to_string()
}

/// Assistant `x`'s text in a pairwise prompt (both answer layouts).
fn assistant_text<'a>(prompt: &'a str, x: &str) -> &'a str {
    for (start, end) in [
        (
            format!("[The Start of Assistant {x}'s Answer]"),
            format!("[The End of Assistant {x}'s Answer]"),
        ),
        (
            format!("<|The Start of Assistant {x}'s Conversation with User|>"),
            format!("<|The End of Assistant {x}'s Conversation with User|>"),
        ),
    ] {
        if let (Some(s), Some(e)) = (prompt.find(&start), prompt.find(&end)) {
            return &prompt[s..e];
        }
    }
    ""
}

fn normal(body: &[u8]) -> (u16, String, String) {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let system = messages[0]["content"].as_str().unwrap_or("");
    let content = if user.contains("Assistant B") {
        let a = assistant_text(&user, "A").contains("PREFERRED");
        let b = assistant_text(&user, "B").contains("PREFERRED");
        match (a, b) {
            (true, false) => "Assistant A is better. [[A]]",
            (false, true) => "Assistant B is better. [[B]]",
            _ => "Equally good. [[C]]",
        }
        .to_owned()
    } else if user.contains("[Instruction]") || system.contains("impartial judge") {
        if user.contains("### User:") {
            "The second answer is weak. Rating: [[4]]".to_owned()
        } else {
            "A good answer. Rating: [[8]]".to_owned()
        }
    } else {
        format!("answer {}", messages.len())
    };
    (200, String::new(), completion(&content))
}
