//! The `hf://` reader against a local HTTP server that answers like the Hugging Face Hub:
//! tree listing with pagination, downloads, a 404, a truncated download that is retried, a
//! persistent 503, a checksum mismatch, a token, and the cache that makes a second run offline.

use erebor_data::hub::{HubClient, HubError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server sends for one request.
enum Reply {
    Json(String, Option<String>),
    Bytes(Vec<u8>),
    Truncated(Vec<u8>),
    Status(u16),
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// A one-thread HTTP/1.1 server on 127.0.0.1 that counts requests per path and records the
/// Authorization headers it saw. It stops when dropped.
struct FakeHub {
    address: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    auth: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeHub {
    fn start(handler: Box<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let auth = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (hits_in, auth_in, stop_in) = (hits.clone(), auth.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(200) {
                if stop_in.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &*handler, &hits_in, &auth_in);
            }
        });
        Self {
            address,
            hits,
            auth,
            stop,
        }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address.trim_start_matches("http://"));
    }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    hits: &Mutex<HashMap<String, usize>>,
    auth: &Mutex<Vec<String>>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some(value) = header
            .strip_prefix("authorization: ")
            .or_else(|| header.strip_prefix("Authorization: "))
        {
            auth.lock().unwrap().push(value.trim().to_owned());
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    let attempt = {
        let mut hits = hits.lock().unwrap();
        let count = hits.entry(path.clone()).or_default();
        *count += 1;
        *count
    };
    let mut out = stream;
    let head = |status: u16, length: usize, extra: &str| {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    let _ = match handler(&path, attempt) {
        Reply::Json(body, link) => {
            let extra = link
                .map(|link| {
                    format!("Link: <{link}>; rel=\"next\"\r\nContent-Type: application/json\r\n")
                })
                .unwrap_or_default();
            out.write_all(format!("{}{body}", head(200, body.len(), &extra)).as_bytes())
        }
        Reply::Bytes(body) => out
            .write_all(head(200, body.len(), "").as_bytes())
            .and_then(|()| out.write_all(&body)),
        Reply::Truncated(body) => out
            .write_all(head(200, body.len(), "").as_bytes())
            .and_then(|()| out.write_all(&body[..body.len() / 2])),
        Reply::Status(status) => out.write_all(head(status, 0, "").as_bytes()),
    };
    let _ = out.flush();
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn client(hub: &FakeHub, cache: &std::path::Path) -> HubClient {
    let mut client = HubClient::new(&hub.address, cache);
    client.backoff = Duration::from_millis(10);
    client.retries = 2;
    client
}

const FILE_A: &[u8] = b"{\"question\": \"a\"}\n{\"question\": \"b\"}\n";
const FILE_B: &[u8] = b"{\"question\": \"c\"}\n";

fn listing(with_b: bool, sha_a: &str) -> String {
    let mut entries = vec![
        format!(
            r#"{{"type":"file","oid":"1a","size":{},"path":"data/train-0.jsonl","lfs":{{"oid":"{sha_a}","size":{},"pointerSize":130}}}}"#,
            FILE_A.len(),
            FILE_A.len()
        ),
        r#"{"type":"directory","oid":"2b","size":0,"path":"data/sub"}"#.to_owned(),
        r#"{"type":"file","oid":"3c","size":5,"path":"data/README.md"}"#.to_owned(),
    ];
    if with_b {
        entries.push(format!(
            r#"{{"type":"file","oid":"4d","size":{},"path":"data/train-1.jsonl"}}"#,
            FILE_B.len()
        ));
    }
    format!("[{}]", entries.join(","))
}

#[test]
fn a_glob_downloads_once_retries_a_truncated_body_and_is_cached() {
    let sha_a = sha(FILE_A);
    let listing_page = listing(true, &sha_a);
    let hub = FakeHub::start(Box::new(move |path, attempt| match path {
        "/api/datasets/org/ds/tree/main/data?recursive=true" => {
            Reply::Json(listing_page.clone(), None)
        }
        "/datasets/org/ds/resolve/main/data/train-0.jsonl" if attempt == 1 => {
            Reply::Truncated(FILE_A.to_vec())
        }
        "/datasets/org/ds/resolve/main/data/train-0.jsonl" => Reply::Bytes(FILE_A.to_vec()),
        "/datasets/org/ds/resolve/main/data/train-1.jsonl" => Reply::Bytes(FILE_B.to_vec()),
        _ => Reply::Status(404),
    }));
    let cache = tempfile::tempdir().unwrap();
    let files = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds/data/train-*.jsonl")
        .unwrap();
    assert_eq!(
        files.len(),
        2,
        "README.md and the folder do not match the glob"
    );
    assert_eq!(files[0].uri, "hf://datasets/org/ds@main/data/train-0.jsonl");
    assert_eq!(std::fs::read(&files[0].local_path).unwrap(), FILE_A);
    assert_eq!(files[0].sha256, sha_a);
    assert_eq!(files[1].sha256, sha(FILE_B));
    let sidecar =
        std::fs::read_to_string(format!("{}.sha256", files[0].local_path.display())).unwrap();
    assert_eq!(sidecar.trim(), sha_a);
    assert_eq!(
        hub.hits("/datasets/org/ds/resolve/main/data/train-0.jsonl"),
        2,
        "the truncated download was retried"
    );
    assert_eq!(
        hub.hits("/datasets/org/ds/resolve/main/data/train-1.jsonl"),
        1
    );

    let before = hub.total_hits();
    let again = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds/data/train-*.jsonl")
        .unwrap();
    assert_eq!(again, files);
    assert_eq!(
        hub.total_hits(),
        before,
        "the second fetch is served from the cache"
    );
}

#[test]
fn a_missing_repository_is_a_404_and_is_not_retried() {
    let hub = FakeHub::start(Box::new(|_, _| Reply::Status(404)));
    let cache = tempfile::tempdir().unwrap();
    let error = client(&hub, cache.path())
        .fetch("hf://datasets/org/missing/x.jsonl")
        .unwrap_err();
    assert!(matches!(error, HubError::NotFound { .. }), "{error:?}");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(
        text.starts_with("hf://datasets/org/missing/x.jsonl: not found on the Hub (HTTP 404 from "),
        "{text}"
    );
    assert_eq!(hub.total_hits(), 1);
}

#[test]
fn a_file_absent_from_the_listing_is_not_found() {
    let listing_page = listing(false, &sha(FILE_A));
    let hub = FakeHub::start(Box::new(move |_, _| {
        Reply::Json(listing_page.clone(), None)
    }));
    let cache = tempfile::tempdir().unwrap();
    let error = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds/data/train-1.jsonl")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "hf://datasets/org/ds/data/train-1.jsonl: not found on the Hub (no file matches `data/train-1.jsonl` at revision `main`)"
    );
}

#[test]
fn a_persistent_503_gives_up_after_the_retries_and_is_transient() {
    let hub = FakeHub::start(Box::new(|_, _| Reply::Status(503)));
    let cache = tempfile::tempdir().unwrap();
    let error = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds/a.jsonl")
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("HTTP 503"), "{error}");
    assert!(error.to_string().ends_with("(after 3 attempts)"), "{error}");
    assert_eq!(hub.total_hits(), 3);
}

#[test]
fn a_checksum_mismatch_is_retried_then_reported() {
    let listing_page = listing(false, &"0".repeat(64));
    let hub = FakeHub::start(Box::new(move |path, _| {
        if path.starts_with("/api/") {
            Reply::Json(listing_page.clone(), None)
        } else {
            Reply::Bytes(FILE_A.to_vec())
        }
    }));
    let cache = tempfile::tempdir().unwrap();
    let error = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds/data/train-0.jsonl")
        .unwrap_err();
    assert!(error.to_string().contains("the Hub lists 0000"), "{error}");
    assert_eq!(
        hub.hits("/datasets/org/ds/resolve/main/data/train-0.jsonl"),
        3
    );
}

#[test]
fn the_token_is_sent_as_a_bearer_and_a_refusal_mentions_hf_token_not_the_token() {
    let hub = FakeHub::start(Box::new(|_, _| Reply::Status(401)));
    let cache = tempfile::tempdir().unwrap();
    let error = client(&hub, cache.path())
        .with_token(Some("hf_secret_123".into()))
        .fetch("hf://datasets/org/gated/a.jsonl")
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("HTTP 401") && text.contains("HF_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("hf_secret_123"));
    assert_eq!(
        hub.auth.lock().unwrap().as_slice(),
        ["Bearer hf_secret_123"]
    );
}

#[test]
fn listings_follow_link_pages_and_revisions_are_encoded() {
    let hub_address = Arc::new(Mutex::new(String::new()));
    let address = hub_address.clone();
    let hub = FakeHub::start(Box::new(move |path, _| match path {
        "/api/datasets/org/ds/tree/refs%2Fconvert%2Fparquet/default?recursive=true" => Reply::Json(
            r#"[{"type":"file","oid":"1","size":3,"path":"default/a.jsonl"}]"#.into(),
            Some(format!("{}/api/page2", address.lock().unwrap())),
        ),
        "/api/page2" => Reply::Json(
            r#"[{"type":"file","oid":"2","size":3,"path":"default/b.jsonl"}]"#.into(),
            None,
        ),
        p if p.starts_with("/datasets/org/ds/resolve/refs%2Fconvert%2Fparquet/default/") => {
            Reply::Bytes(b"{}\n".to_vec())
        }
        _ => Reply::Status(404),
    }));
    *hub_address.lock().unwrap() = hub.address.clone();
    let cache = tempfile::tempdir().unwrap();
    let files = client(&hub, cache.path())
        .fetch("hf://datasets/org/ds@refs/convert/parquet/default/*.jsonl")
        .unwrap();
    let uris: Vec<_> = files.iter().map(|file| file.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "hf://datasets/org/ds@refs/convert/parquet/default/a.jsonl",
            "hf://datasets/org/ds@refs/convert/parquet/default/b.jsonl"
        ]
    );
}

#[test]
fn a_convert_step_reads_an_hf_source_and_reports_its_sha256() {
    let sha_a = sha(FILE_A);
    let listing_page = listing(true, &sha_a);
    let hub = FakeHub::start(Box::new(move |path, _| match path {
        "/api/datasets/org/ds/tree/main/data?recursive=true" => {
            Reply::Json(listing_page.clone(), None)
        }
        "/datasets/org/ds/resolve/main/data/train-0.jsonl" => Reply::Bytes(FILE_A.to_vec()),
        "/datasets/org/ds/resolve/main/data/train-1.jsonl" => Reply::Bytes(FILE_B.to_vec()),
        _ => Reply::Status(404),
    }));
    let dir = tempfile::tempdir().unwrap();
    let config = erebor_data::ConvertConfig::parse(&serde_json::json!({
        "sources": [{"path": "hf://datasets/org/ds/data/train-*.jsonl",
                     "map": {"type": "sft_fields", "prompt": "question", "response": "question"}}],
        "hub": {"endpoint": hub.address, "retries": 1, "backoff_ms": 10},
    }))
    .unwrap();
    let sink = erebor_core::MemorySink::new();
    let env = erebor_data::convert::ConvertEnv {
        base_dir: dir.path(),
        work_dir: &dir.path().join("work"),
        cache_dir: &dir.path().join("cache"),
        metrics: &sink,
        progress: &sink,
        cancel: erebor_core::CancelToken::new(),
    };
    let output = erebor_data::convert::run_convert(&config, &env).unwrap();
    let report = serde_json::to_value(&output.report).unwrap();
    assert_eq!(report["sources"][0]["rows_read"], 3);
    assert_eq!(
        report["sources"][0]["files"][0]["name"],
        "hf://datasets/org/ds@main/data/train-0.jsonl"
    );
    assert_eq!(report["sources"][0]["files"][0]["sha256"], sha_a.as_str());
    assert_eq!(report["splits"]["train"]["rows"], 3);
    let ids: Vec<String> = std::fs::read_to_string(output.dataset_dir.join("train.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["train-0/1", "train-0/2", "train-1/1"]);
}
