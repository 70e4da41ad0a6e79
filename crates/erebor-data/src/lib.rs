//! erebor-data: turns labelled or raw datasets into the SFT and preference sets that training
//! reads, and records what it did. The `convert` step kind ([`ConvertKind`]) ties it together.
//!
//! - [`read`]: JSON lines, JSON arrays, CSV/TSV, Parquet, gzip, globs; rows with their
//!   `file:line` (or Parquet row group and row).
//! - [`hub`]: `hf://datasets/...` sources through the Hugging Face Hub HTTP API, cached.
//! - [`fields`]: typed field access with errors naming the row and field.
//! - [`mappers`]: Orca-DPO, UltraFeedback, Truthy-DPO, messages, ShareGPT, Alpaca, GSM8K and
//!   generic field mappings.
//! - [`builders`]: the DPOP paper's ARC/HellaSwag pairs, MetaMath-style low-edit pairs, the
//!   synthetic arithmetic task.
//! - [`contamination`]: exact and 13-gram overlap with evaluation sets.
//! - [`ops`]: de-duplication and the deterministic, prompt-grouped train/eval split.
//! - [`tokenise`]: chat-template rendering and tokenisation with prompt/target spans.
//! - [`stats`]: edit distances, first differing position, lengths.
//! - [`convert`]: the step: config, pipeline, dataset folder, report.
//! - [`error`]: [`DataError`] and [`RowError`], naming `file:line` and field.
//! - [`stable`]: stable hashes and per-row seeded randomness.

pub mod builders;
pub mod contamination;
pub mod convert;
pub mod error;
pub mod fields;
pub mod hub;
pub mod mappers;
pub mod ops;
pub mod read;
pub mod stable;
pub mod stats;
pub mod tokenise;

pub use convert::{ConvertConfig, ConvertKind};
pub use error::{DataError, RowError, RowLocation};
