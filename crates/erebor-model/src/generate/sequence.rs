//! One sequence being generated: its new tokens, when it stops (stop token, stop string,
//! length) and its text, whole or as streamed pieces. One implementation for
//! [`crate::generate()`] and the continuous [`crate::batcher`].

use super::{FinishReason, Generation, GenerationConfig};
use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// The decode state of one sequence.
#[derive(Debug, Clone, Default)]
pub(crate) struct SequenceState {
    /// New token ids so far (a final stop token included).
    pub tokens: Vec<u32>,
    /// Text of `tokens` (kept up to date only while stop strings or streaming need it).
    text: String,
    /// Bytes of text already handed out by [`Self::take_delta`].
    emitted: usize,
    /// Why the sequence stopped, once it has.
    pub done: Option<FinishReason>,
}

/// The text of `ids` without special tokens (empty without a tokenizer).
fn decode(tokenizer: Option<&Tokenizer>, ids: &[u32]) -> Result<String> {
    tokenizer.map_or(Ok(String::new()), |t| Ok(t.decode(ids, true)?))
}

/// `text` cut before the earliest stop string.
fn cut_at_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

impl SequenceState {
    /// Appends a generated token and decides whether the sequence stops. With `track_text`
    /// (or stop strings) the text is decoded again, so stop strings and streaming see it.
    pub(crate) fn push(
        &mut self,
        token: u32,
        config: &GenerationConfig,
        tokenizer: Option<&Tokenizer>,
        track_text: bool,
    ) -> Result<Option<FinishReason>> {
        self.tokens.push(token);
        if config.stop_token_ids.contains(&token) {
            self.done = Some(FinishReason::StopToken);
        } else if track_text || !config.stop_strings.is_empty() {
            self.text = decode(tokenizer, &self.tokens)?;
            if cut_at_stop(&self.text, &config.stop_strings).is_some() {
                self.done = Some(FinishReason::StopString);
            }
        }
        if self.done.is_none() && self.tokens.len() >= config.max_new_tokens {
            self.done = Some(FinishReason::Length);
        }
        Ok(self.done)
    }

    /// The final text: every token decoded without special tokens, cut before a stop string.
    fn final_text(
        &self,
        config: &GenerationConfig,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<String> {
        let text = decode(tokenizer, &self.tokens)?;
        Ok(match cut_at_stop(&text, &config.stop_strings) {
            Some(cut) => text[..cut].to_string(),
            None => text,
        })
    }

    /// The text that became final since the last call, for streaming. While running it holds
    /// back a trailing incomplete character (U+FFFD from a partial UTF-8 token) and any tail
    /// that could start a stop string; once done it hands out the rest of the final text, so
    /// the pieces concatenate to [`Self::finish`]'s text.
    pub(crate) fn take_delta(
        &mut self,
        config: &GenerationConfig,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<String> {
        let (text, end) = if self.done.is_some() {
            let text = self.final_text(config, tokenizer)?;
            let end = text.len();
            (text, end)
        } else {
            let text = self.text.clone();
            let end = stable_end(&text, &config.stop_strings);
            (text, end)
        };
        if end <= self.emitted || !text.is_char_boundary(self.emitted) {
            return Ok(String::new());
        }
        let delta = text[self.emitted..end].to_string();
        self.emitted = end;
        Ok(delta)
    }

    /// The finished [`Generation`].
    pub(crate) fn finish(
        self,
        config: &GenerationConfig,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<Generation> {
        Ok(Generation {
            text: self.final_text(config, tokenizer)?,
            finish_reason: self.done.unwrap_or(FinishReason::Length),
            token_ids: self.tokens,
        })
    }
}

/// How much of a running sequence's text can be streamed: all of it but a trailing U+FFFD and
/// the longest tail that is a proper prefix of a stop string.
fn stable_end(text: &str, stops: &[String]) -> usize {
    let text = text.trim_end_matches('\u{FFFD}');
    let mut end = text.len();
    for stop in stops {
        for (i, _) in stop.char_indices().skip(1) {
            if text.ends_with(&stop[..i]) {
                end = end.min(text.len() - i);
            }
        }
    }
    end
}
