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

pub mod chat;
pub mod error;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, RenderedChat};
pub use error::{Result, TextError};
pub use tokenizer::{Encoding, SpecialToken, Tokenizer};
