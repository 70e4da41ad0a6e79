//! Prompt and target spans: rows rendered with the model's chat template and tokenised with its
//! tokenizer (both from erebor-text).
//!
//! - SFT: the conversation is rendered once; the template reports the byte range of every
//!   assistant turn (content plus end-of-turn marker), and the tokens overlapping those ranges
//!   are the targets, as transformers' `return_assistant_tokens_mask` marks them.
//! - Preference: as TRL's `maybe_apply_chat_template`, the prompt is the rendering of the prompt
//!   messages with the generation prompt, cut back to the text it shares with the renderings of
//!   prompt + chosen and prompt + rejected; each completion is the rest of its rendering (answer
//!   and end-of-turn marker). Prompt and completion are tokenised so that `prompt_ids ++
//!   completion_ids` equals the tokenisation of the whole text whenever the tokenizer does not
//!   merge across the boundary; where it does, the completion is tokenised on its own (counted as
//!   `boundary_retokenised`).
//!
//! Templates write BOS themselves, so texts are encoded without adding special tokens.

use crate::error::DataError;
use erebor_core::dataset::{
    ChatMessage, PreferenceRecord, SftRecord, TokenisedPreference, TokenisedSft, TokenizerRef,
};
use erebor_text::{ChatTemplate, TextError, Tokenizer};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A tokenizer and chat template, ready to tokenise rows.
#[derive(Clone, Debug)]
pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    reference: TokenizerRef,
}

/// Whether a preference row's completions had to be tokenised apart from the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundaryRetokenised(pub bool);

impl ChatTokenizer {
    /// Loads the tokenizer of a checkpoint folder (or a `tokenizer.json`) and resolves the chat
    /// template spec: `checkpoint` (the folder's own), a built-in name (`chatml`, `llama-2`,
    /// `mistral`, `llama-3`) or a path to a Jinja file.
    pub fn load(
        source: &Path,
        source_as_given: &str,
        template_spec: &str,
    ) -> Result<Self, DataError> {
        let model_error = |error: TextError| {
            DataError::Invalid(format!("tokenizer `{source_as_given}`: {error}"))
        };
        let tokenizer = if source.is_dir() {
            Tokenizer::from_dir(source)
        } else {
            Tokenizer::from_file(source)
        }
        .map_err(model_error)?;
        let template = ChatTemplate::from_spec(template_spec, &tokenizer).map_err(model_error)?;
        let tokenizer_sha256 = erebor_core::content::hash_file(tokenizer.path())
            .map_err(|error| DataError::io(tokenizer.path(), error.source))?
            .sha256;
        let reference = TokenizerRef {
            source: source_as_given.to_owned(),
            tokenizer_sha256,
            chat_template: template_spec.to_owned(),
            chat_template_sha256: hex::encode(Sha256::digest(template.source().as_bytes())),
        };
        Ok(Self {
            tokenizer,
            template,
            reference,
        })
    }

    /// The tokens the template writes after an assistant answer (ChatML: `<|im_end|>` and a
    /// newline): found by rendering a sentinel answer and encoding what follows it. Empty when
    /// the template rewrites the answer so that the sentinel cannot be found.
    pub(crate) fn turn_end_ids(&self) -> Result<Vec<u32>, DataError> {
        // Plain text that no template rewrites (the private-use characters are taken: they mark
        // assistant spans inside erebor-text).
        const SENTINEL: &str = "EREBOR_ANSWER_SENTINEL";
        let messages = [
            ChatMessage::user("question"),
            ChatMessage::assistant(SENTINEL),
        ];
        let fail = |error: TextError| {
            DataError::Invalid(format!("finding the end-of-turn tokens: {error}"))
        };
        let text = self.template.render(&messages, false).map_err(fail)?;
        match text.rfind(SENTINEL) {
            Some(at) => self
                .tokenizer
                .encode_ids(&text[at + SENTINEL.len()..], false)
                .map_err(fail),
            None => Ok(Vec::new()),
        }
    }

    /// What goes into the dataset manifest.
    pub fn reference(&self) -> &TokenizerRef {
        &self.reference
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn fail(id: &str, error: impl std::fmt::Display) -> DataError {
        DataError::Invalid(format!("row `{id}`: {error}"))
    }

    /// Tokenises a conversation and marks its assistant turns as targets.
    pub fn sft(&self, record: &SftRecord) -> Result<TokenisedSft, DataError> {
        let rendered = self
            .template
            .render_with_assistant_spans(&record.messages)
            .map_err(|error| Self::fail(&record.id, error))?;
        let encoding = self
            .tokenizer
            .encode(&rendered.text, false)
            .map_err(|error| Self::fail(&record.id, error))?;
        let token_count = u32::try_from(encoding.offsets.len())
            .map_err(|_| Self::fail(&record.id, "more tokens than a u32 position can number"))?;
        let mut target_spans: Vec<[u32; 2]> = Vec::new();
        for span in &rendered.assistant_spans {
            let mut covered = encoding
                .offsets
                .iter()
                .zip(0..token_count)
                .filter(|((start, end), _)| *start < span.end && *end > span.start)
                .map(|(_, index)| index);
            let Some(first) = covered.next() else {
                continue;
            };
            let last = covered.next_back().unwrap_or(first);
            match target_spans.last_mut() {
                Some(previous) if previous[1] >= first => previous[1] = previous[1].max(last + 1),
                _ => target_spans.push([first, last + 1]),
            }
        }
        if target_spans.is_empty() {
            return Err(Self::fail(
                &record.id,
                "the rendered conversation has no assistant tokens",
            ));
        }
        Ok(TokenisedSft {
            id: record.id.clone(),
            input_ids: encoding.ids,
            target_spans,
        })
    }

    /// Tokenises a preference pair into prompt and completion ids.
    pub fn preference(
        &self,
        record: &PreferenceRecord,
    ) -> Result<(TokenisedPreference, BoundaryRetokenised), DataError> {
        let render = |answer: Option<&str>| {
            let mut messages = record.prompt.clone();
            if let Some(answer) = answer {
                messages.push(ChatMessage::assistant(answer));
            }
            self.template
                .render(&messages, answer.is_none())
                .map_err(|error| Self::fail(&record.id, error))
        };
        let prompt = render(None)?;
        let chosen = render(Some(&record.chosen))?;
        let rejected = render(Some(&record.rejected))?;
        let shared = common_char_prefix(common_char_prefix(&prompt, &chosen), &rejected).len();
        let encode = |text: &str| {
            self.tokenizer
                .encode_ids(text, false)
                .map_err(|error| Self::fail(&record.id, error))
        };
        let prompt_ids = encode(&prompt[..shared])?;
        let mut retokenised = false;
        let mut completion = |full: &str| -> Result<Vec<u32>, DataError> {
            let full_ids = encode(full)?;
            if full_ids.starts_with(&prompt_ids) {
                Ok(full_ids[prompt_ids.len()..].to_vec())
            } else {
                retokenised = true;
                encode(&full[shared..])
            }
        };
        let chosen_ids = completion(&chosen)?;
        let rejected_ids = completion(&rejected)?;
        if chosen_ids.is_empty() || rejected_ids.is_empty() {
            return Err(Self::fail(&record.id, "a completion renders to no tokens"));
        }
        Ok((
            TokenisedPreference {
                id: record.id.clone(),
                prompt_ids,
                chosen_ids,
                rejected_ids,
            },
            BoundaryRetokenised(retokenised),
        ))
    }
}

/// The longest common prefix of two strings, cut at a character boundary.
fn common_char_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((index, _), _)| index);
    &a[..end]
}

#[cfg(test)]
mod tests {
    use super::{ChatTokenizer, common_char_prefix};
    use std::path::Path;

    #[test]
    fn the_turn_end_is_what_chatml_writes_after_an_answer() {
        let folder =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/models/tiny-arith");
        let chat = ChatTokenizer::load(&folder, "tiny-arith", "checkpoint").unwrap();
        let expected = chat.tokenizer().encode_ids("<|im_end|>\n", false).unwrap();
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert_eq!(chat.turn_end_ids().unwrap(), expected);
    }

    #[test]
    fn the_common_prefix_stops_at_a_character_boundary() {
        assert_eq!(common_char_prefix("abcé", "abcè"), "abc");
        assert_eq!(common_char_prefix("ab", "abc"), "ab");
        assert_eq!(common_char_prefix("abc", "ab"), "ab");
    }
}
