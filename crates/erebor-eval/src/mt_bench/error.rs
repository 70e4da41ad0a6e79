//! MT-Bench errors, naming the file and line, the question, the judge prompt or the endpoint.

use std::path::PathBuf;

/// What can go wrong in MT-Bench answering, judging or scoring.
#[derive(Debug, thiserror::Error)]
pub enum MtBenchError {
    /// A questions, answers, reference or judge-prompt file has a bad line.
    #[error("{}:{line}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the whole file is at fault).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A judge prompt that cannot be used as given.
    #[error("judge prompt `{name}`: {message}")]
    Prompt {
        /// The prompt's name (`single-v1`, …).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A question that cannot be answered or judged (missing answer, reference, turn).
    #[error("question {question_id}: {message}")]
    Question {
        /// The question's id.
        question_id: u64,
        /// What is wrong.
        message: String,
    },
    /// A request to a chat-completions endpoint failed for good (after the retries).
    #[error("{item}: {url}: {message}")]
    Endpoint {
        /// The judgment or answer it was for (`question 81 turn 2 repeat 0`).
        item: String,
        /// The endpoint URL.
        url: String,
        /// The last failure.
        message: String,
    },
    /// The judgment cache (the run store) failed.
    #[error("judgment cache: {0}")]
    Cache(#[from] crate::mt_bench::cache::CacheError),
    /// A judging task panicked or was aborted (a bug, not an endpoint failure).
    #[error("a judge task failed: {0}")]
    JudgeTask(#[source] tokio::task::JoinError),
    /// A judging task ended without handing back its judgment (a bug).
    #[error("a judge task ended without a result")]
    JudgeTaskLost,
    /// The HTTP client for an endpoint could not be built (TLS setup).
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// Bad settings.
    #[error("{0}")]
    Config(String),
    /// The environment variable that should hold an endpoint's API key is not set.
    #[error("the API key variable `{variable}` is not set in the environment")]
    ApiKeyMissing {
        /// The variable's name (never its value).
        variable: String,
    },
    /// Model loading, templating or generation failed.
    #[error(transparent)]
    Model(#[from] erebor_model::ModelError),
    /// Evaluation's model loader failed.
    #[error(transparent)]
    Eval(#[from] crate::error::EvalError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The step was asked to stop.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

/// Result with [`MtBenchError`].
pub type Result<T, E = MtBenchError> = std::result::Result<T, E>;

/// An I/O error on `path`.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MtBenchError {
    let path = path.into();
    move |source| MtBenchError::Io { path, source }
}

/// Tokenizer and chat-template failures (erebor-text) arrive as the model error they are
/// within erebor-model.
impl From<erebor_model::TextError> for MtBenchError {
    fn from(error: erebor_model::TextError) -> Self {
        MtBenchError::Model(error.into())
    }
}
