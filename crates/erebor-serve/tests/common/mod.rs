//! Helpers: a random model with SmolLM2's tokenizer written as a checkpoint folder, the server
//! started on 127.0.0.1 in this process, ../shared and the Python venv located.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use erebor_model::burn::tensor::DType;
use erebor_model::config::{Architecture, DecoderDims};
use erebor_model::{CausalLm, ModelConfig, SaveOptions, Tokenizer, save_pretrained};
use erebor_serve::{Limits, ServeOptions};

/// `../shared` beside the checkout (or `$EREBOR_SHARED`); `None` with a message when absent,
/// a failure under `CI=true`.
pub(crate) fn shared(rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("EREBOR_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let p = dir.join(rel);
    if p.exists() {
        return Some(p);
    }
    missing(&format!("{} not found (set EREBOR_SHARED)", p.display()));
    None
}

/// A skip message locally, a failure under `CI=true`.
pub(crate) fn missing(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}, and CI=true: required on CI"
    );
    eprintln!("skipping: {what}");
}

/// The Python of the evaluation venv (`$EREBOR_EVAL_VENV` or `.venv-eval` at the repository
/// root), if it exists.
pub(crate) fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("EREBOR_EVAL_VENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-eval"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    if python.is_file() {
        return Some(python);
    }
    missing(&format!(
        "no Python venv at {} (set EREBOR_EVAL_VENV)",
        venv.display()
    ));
    None
}

/// Writes a random 2-layer Llama with SmolLM2's tokenizer and chat template, a 512-token
/// window, to `dir`.
pub(crate) fn random_checkpoint(dir: &Path) -> Option<()> {
    let tok_dir = shared("tokenizers/smollm2")?;
    let tokenizer = Tokenizer::from_dir(&tok_dir).unwrap();
    let dims = DecoderDims {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: 64,
        intermediate_size: 128,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
    };
    let mut config = ModelConfig::synthetic(Architecture::Llama, dims, true);
    config.max_position_embeddings = 512;
    let device = "cpu"
        .parse::<erebor_model::DeviceSpec>()
        .unwrap()
        .device()
        .unwrap();
    let model = CausalLm::random(&config, 11, 0.5, &device, DType::F32);
    save_pretrained(&model, dir, Some(&tokenizer), None, &SaveOptions::default()).unwrap();
    Some(())
}

/// A running server.
pub(crate) struct Server {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `path` on 127.0.0.1 (a free port) with these limits and key, under the name `name`.
pub(crate) async fn start(
    path: &Path,
    name: &str,
    limits: Limits,
    api_key: Option<&str>,
) -> Server {
    let options = ServeOptions {
        model_name: name.into(),
        limits,
        api_key: api_key.map(str::to_owned),
    };
    let device = "cpu"
        .parse::<erebor_model::DeviceSpec>()
        .unwrap()
        .device()
        .unwrap();
    let path = path.to_path_buf();
    let app = tokio::task::spawn_blocking(move || {
        erebor_serve::load(&path, device, DType::F32, options).unwrap()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        erebor_serve::serve(listener, app).await.unwrap();
    });
    Server { base, task }
}
