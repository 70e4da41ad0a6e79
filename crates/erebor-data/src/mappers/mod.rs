//! Mappings from the rows of common dataset formats to SFT conversations and preference pairs.
//!
//! A source's `map:` is a name (`map: arc`) or a table with a `type` and options
//! (`map: {type: fields, prompt: question, chosen: good, rejected: bad}`).
//!
//! | `type` | rows | makes |
//! | --- | --- | --- |
//! | `arc` | `question`, `choices`, `gold` (or HF `choices.{text,label}`, `answerKey`) | one pair per wrong choice |
//! | `hellaswag` | `query`, `choices`, `gold` (or raw `ctx_a`, `ctx_b`, `endings`, `label`) | one pair per wrong ending |
//! | `multiple_choice` | fields named in the options | one pair per wrong choice |
//! | `low_edit` | GSM8K `question`/`answer` or MetaMathQA `query`/`response` | one pair: one intermediate result changed |
//! | `orca_dpo` | `system`, `question`, `chosen`, `rejected` | one pair |
//! | `ultrafeedback` | `chosen`/`rejected` message lists (prompt = all but the last message) | one pair |
//! | `truthy_dpo` | `system`, `prompt`, `chosen`, `rejected` | one pair |
//! | `preference_fields` | fields named in the options | one pair |
//! | `messages` | `messages: [{role, content}]` | one conversation |
//! | `sharegpt` | `conversations: [{from, value}]` | one conversation |
//! | `alpaca` | `instruction`, `input`, `output` | one conversation |
//! | `gsm8k` | `question`, `answer` (annotations stripped) | one conversation |
//! | `sft_fields` | fields named in the options | one conversation |
//!
//! `spec` holds what `map:` says, `apply` maps one row, `preference` and `sft` are the
//! mappings themselves.

mod apply;
mod preference;
mod sft;
mod spec;

pub use apply::apply;
pub(crate) use spec::deserialize_map_spec;
pub use spec::{LowEditOptions, MapSpec, Mapped, Record};
