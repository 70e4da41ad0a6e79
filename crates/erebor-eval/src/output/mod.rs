//! Files that existing tools read: lm-evaluation-harness 0.4's results JSON and samples JSONL,
//! and the results table printed to stdout.
//!
//! - [`pyjson`]: JSON written as Python's `json.dumps` writes it (separators, float reprs, key
//!   order), so files and hashes match lm-eval's byte for byte.
//! - [`write_outputs`]: `results_<date>.json` and one `samples_<task>_<date>.jsonl` per task.
//! - [`results_table`]: the table `erebor eval` prints.

mod files;
pub mod pyjson;
mod results;
mod samples;
mod table;

pub use files::{OutputFiles, date_id, sanitize_model_name, write_outputs};
pub use results::RunInfo;
pub use samples::{doc_hash, sample_line};
pub use table::results_table;
