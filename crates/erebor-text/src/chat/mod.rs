//! Chat templates rendered as transformers' `apply_chat_template(..., tokenize=False)` renders them.
//!
//! # API in brief
//! - [`ChatTemplate::from_jinja`]: any Jinja source (the checkpoint's comes from
//!   [`crate::Tokenizer::chat_template`]); [`ChatTemplate::builtin`]: `chatml`, `llama-2`,
//!   `mistral`, `llama-3`; [`ChatTemplate::from_spec`]: `checkpoint`, a built-in name or a path
//!   to a `.jinja` file, resolved against a tokenizer.
//! - [`ChatTemplate::with_system_prompt`]: an override that replaces the conversation's system
//!   message or inserts one (e.g. the llama-2 template with Qwen's system prompt).
//! - [`ChatTemplate::render`]`(messages, add_generation_prompt)` → the prompt text. Encode it with
//!   `Tokenizer::encode(text, false)`: the template already wrote BOS where the model wants it.
//! - [`ChatTemplate::render_with_assistant_spans`] → the text plus the byte range of every
//!   assistant turn (from `{% generation %}` tags when the template has them, otherwise by
//!   rendering prefixes of the conversation), for SFT target masks.
//!
//! Rendering matches jinja2 with `trim_blocks`, `lstrip_blocks`, loop controls, Python string
//! methods, `raise_exception` (an error naming the template), `strftime_now` and transformers'
//! `tojson`. Variables: `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and
//! `tools`/`documents` set to none.
//!
//! `template` holds [`ChatTemplate`], `builtin` the named templates, `env` the Jinja
//! environment (filters and functions as transformers defines them).

mod builtin;
mod env;
mod template;

pub use builtin::{BUILTINS, BuiltinTemplate};
/// One message of a conversation (the type of erebor-core's dataset rows).
pub use erebor_core::dataset::ChatMessage;
pub use template::{ChatTemplate, RenderedChat};
