//! erebor-text: tokenizers and chat templates, without a tensor library.
//!
//! - [`tokenizer`]: [`Tokenizer`] over tokenizer.json with special tokens as transformers sets them.
//! - [`chat`]: [`ChatTemplate`], the checkpoint's Jinja chat template and named built-ins.
//! - [`error`]: [`TextError`], naming the file, field or template involved.
//!
//! Data preparation (erebor-data) needs these and nothing of the model, so it builds without
//! Burn; erebor-model re-exports them for model code.
//!
//! # Who calls what
//!
//! `Tokenizer::from_dir(dir)` or `Tokenizer::from_file(tokenizer_json)`;
//! `ChatTemplate::from_spec("checkpoint" | "chatml" | "llama-2" | "mistral" | "llama-3" | path,
//! &tokenizer)`, optionally `.with_system_prompt(..)`; `template.render(&messages,
//! add_generation_prompt)` for prompts, `template.render_with_assistant_spans(&messages)` for SFT
//! targets (byte ranges); then `tokenizer.encode(&text, false)` (ids + byte offsets) to map the
//! spans onto tokens. `tokenizer.eos()`, `bos()`, `pad_id_or_fallback()`, `stop_token_ids()`.

// Clippy's pedantic group, less the lints the project allows everywhere (issue 13):
// - must_use_candidate: would mark nearly every getter; `#[must_use]` goes where dropping the
//   value is a likely bug.
// - missing_errors_doc: fallible functions return a typed error whose variants say what failed.
// - single_match_else: a one-arm `match` with a fallback reads as well as `if let ... else`.
// - format_push_string: `push_str(&format!(..))` reads better than `write!` with an ignored
//   `fmt::Result`.
// - cast_precision_loss: counts and indexes turned into `f64` stay far below 2^52.
// - module_name_repetitions: `TextError`-style names read better at call sites than `Error`.
#![warn(clippy::pedantic)]
#![allow(
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    clippy::single_match_else,
    clippy::format_push_string,
    clippy::cast_precision_loss,
    clippy::module_name_repetitions
)]

pub mod chat;
pub mod error;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, RenderedChat};
pub use error::{Result, TextError};
pub use tokenizer::{Encoding, SpecialToken, Tokenizer};
