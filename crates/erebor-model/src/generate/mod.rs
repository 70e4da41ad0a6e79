//! Text generation with a KV cache: greedy or sampled (temperature, top-p, top-k), max new
//! tokens, stop token ids and stop strings, batched with left padding.
//!
//! [`generate`] takes prompts as token ids (render chat prompts with [`crate::ChatTemplate`]
//! and encode them with `add_special_tokens = false`), and returns the new tokens and their text.
//! Sampling draws from a `ChaCha` stream seeded with [`GenerationConfig::seed`], so a seed gives
//! the same text on every run.

mod config;
mod decode;
mod sampling;
mod sequence;

pub(crate) use config::validate;
pub use config::{FinishReason, Generation, GenerationConfig};
pub use decode::generate;
pub(crate) use decode::last_logits;
pub(crate) use sampling::{pick, sample};
pub(crate) use sequence::SequenceState;
