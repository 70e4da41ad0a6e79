//! MT-Bench end to end with FastChat's `llm_judge` semantics (`fastchat/llm_judge`: common.py,
//! `gen_model_answer.py`, `gen_judgment.py`, `show_result.py`), without its known faults: judgments
//! are cached and resumable, failures are counted, the chat template is the model's own.
//!
//! - [`data`]: questions, answers, reference answers and judge prompts (FastChat's JSONL).
//! - [`answers`]: both turns from a local model (erebor-model's batched generator) or an
//!   OpenAI-compatible endpoint.
//! - [`client`]: [`ChatClient`], chat completions with a concurrency limit, timeouts and retries.
//! - [`cache`]: [`JudgmentCache`], replies by (endpoint, request sha256, repeat).
//! - [`judging`]: which prompt each question and turn gets, the request bodies, running them.
//! - [`scoring`]: ratings and verdicts, judgment records, scores and win rates.
//! - [`config`]: [`MtBenchConfig`], the settings; [`run`](mod@run): one run; [`kind`]: the
//!   `mt-bench` step kind.
//! - [`pyformat`]: Python's `str.format` for the judge templates; [`error`]: [`MtBenchError`].

pub mod answers;
pub mod cache;
pub mod client;
pub mod config;
pub mod data;
pub mod error;
pub mod judging;
pub mod kind;
pub mod pyformat;
pub mod run;
pub mod scoring;

pub use cache::{CacheKey, CacheProvider, CachedReply, JudgmentCache, MemoryCache, MemoryProvider};
pub use client::{ChatClient, Endpoint, RetryPolicy};
pub use config::{EndpointConfig, Mode, MtBenchConfig};
pub use error::MtBenchError;
pub use kind::MtBenchKind;
pub use run::{RunContext, RunOutcome, record_metrics, run};
