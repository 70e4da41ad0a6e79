//! Tokenizer over Hugging Face `tokenizer.json`, with special tokens resolved as transformers does.
//!
//! # API in brief
//! - [`Tokenizer::from_dir`] (a checkpoint folder) or [`Tokenizer::from_file`] (a tokenizer.json; the
//!   companion files beside it are read too).
//! - [`Tokenizer::encode`] → [`Encoding`] (ids, byte offsets into the input, special-token flags);
//!   `add_special_tokens = true` adds BOS/EOS the way `tokenizer(text)` does in transformers,
//!   `false` is what `apply_chat_template(tokenize=True)` and continuation scoring use.
//! - [`Tokenizer::decode`] with or without special tokens.
//! - [`Tokenizer::bos`], [`Tokenizer::eos`], [`Tokenizer::pad`]: from `tokenizer_config.json`
//!   (or `special_tokens_map.json`), falling back to the ids in `config.json`;
//!   [`Tokenizer::stop_token_ids`]: `generation_config.json`'s `eos_token_id` (int or list), else
//!   config.json's, else the tokenizer's EOS, as `generate` uses them.
//! - [`Tokenizer::chat_template`]: the checkpoint's template ready to render (see [`crate::chat`]).
//!
//! `add_bos_token` / `add_eos_token` in `tokenizer_config.json` are honoured for the tokenizer
//! classes whose transformers implementation rebuilds its post-processor from them (Llama,
//! CodeLlama, Gemma, Cohere); for other classes tokenizer.json's post-processor decides.

//!
//! `encoder` holds the [`Tokenizer`], `tokens` what it gives back, `config` the companion
//! files, `post` transformers' post-processing rules.

mod config;
mod encoder;
mod post;
mod tokens;

pub use encoder::Tokenizer;
pub use tokens::{Encoding, SpecialToken};
