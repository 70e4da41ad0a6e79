//! `hf://datasets/OWNER/NAME[@REVISION]/PATH` sources, resolved through the Hugging Face Hub
//! HTTP API and downloaded once into a cache.
//!
//! - The path may be a glob (`data/train-*.parquet`, `**/*.jsonl`): the repository tree under
//!   the glob's literal prefix is listed (`GET /api/datasets/OWNER/NAME/tree/REV/DIR?recursive=true`,
//!   following `Link: rel="next"` pages) and matched.
//! - Each file is fetched from `/datasets/OWNER/NAME/resolve/REV/PATH`, streamed to a `.part`
//!   file while hashed, checked against the listed size and (for LFS files) the listed sha256,
//!   then renamed into place with a `.sha256` file beside it.
//! - 429, 5xx, dropped connections and truncated bodies are retried with exponential backoff;
//!   404 and 401/403 are not.
//! - The resolved file list of each URI is cached too, so a second run needs no network. Pin a
//!   commit (`@<sha>`) for reproducible data; a branch is resolved once, then reused until
//!   [`HubClient::refresh`] is set.
//! - `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) is read from the environment and sent as a bearer
//!   token; it is never logged or written anywhere. `HF_ENDPOINT` overrides the Hub's address.
//!
//! `client` holds [`HubClient`] and [`HubFile`], `error` [`HubError`].

mod cache;
mod client;
mod error;
mod http;
mod uri;

pub use client::{HubClient, HubFile};
pub use error::HubError;
pub(crate) use uri::HubUri;
