//! [`ChatTemplate`]: a Jinja chat template compiled, rendered, and rendered with the byte
//! ranges of its assistant turns ([`RenderedChat`]).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use minijinja::{Environment, Value, context};

use super::ChatMessage;
use super::builtin::{self, BUILTINS};
use super::env::{self, GEN_END, GEN_START, TEMPLATE_NAME};

use crate::error::{Result, TextError, read_to_string};
use crate::tokenizer::Tokenizer;

/// A rendered conversation with the byte ranges of the assistant turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChat {
    /// The rendered text.
    pub text: String,
    /// One byte range per assistant turn, in order. Each covers what the template writes for
    /// that turn after the assistant header: the content, the end-of-turn marker (e.g.
    /// `<|im_end|>`, `</s>`) and any separator the template puts after it.
    pub assistant_spans: Vec<Range<usize>>,
}

/// A compiled chat template with the BOS/EOS strings it is rendered with.
#[derive(Clone)]
pub struct ChatTemplate {
    name: String,
    source: String,
    env: Arc<Environment<'static>>,
    has_generation_tags: bool,
    bos_token: String,
    eos_token: String,
    system_prompt: Option<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("name", &self.name)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("system_prompt", &self.system_prompt)
            .field("has_generation_tags", &self.has_generation_tags)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a Jinja chat template. `name` appears in errors.
    pub fn from_jinja(name: &str, source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let (rewritten, has_generation_tags) = env::rewrite_generation_tags(source);
        let env = env::build_environment(rewritten).map_err(|e| template_error(name, &e))?;
        Ok(ChatTemplate {
            name: name.to_string(),
            source: source.to_string(),
            env: Arc::new(env),
            has_generation_tags,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            system_prompt: None,
        })
    }

    /// A built-in template by name, with the given BOS/EOS strings (`None`: the template family's
    /// defaults, e.g. `<s>`/`</s>` for llama-2).
    pub fn builtin(name: &str, bos_token: Option<&str>, eos_token: Option<&str>) -> Result<Self> {
        let b = builtin::find(name).ok_or_else(|| TextError::Template {
            name: name.to_string(),
            message: format!(
                "unknown built-in template; known: {}",
                BUILTINS
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        Self::from_jinja(
            b.name,
            b.source,
            bos_token.unwrap_or(b.default_bos),
            eos_token.unwrap_or(b.default_eos),
        )
    }

    /// Resolves a template spec against a tokenizer: `checkpoint` (or `default`) is the
    /// checkpoint's own template, a built-in name uses the tokenizer's BOS/EOS when it has them,
    /// anything else is read as a path to a Jinja file.
    pub fn from_spec(spec: &str, tokenizer: &Tokenizer) -> Result<Self> {
        let bos = tokenizer.bos().map(|t| t.text.as_str());
        let eos = tokenizer.eos().map(|t| t.text.as_str());
        match spec {
            "checkpoint" | "default" => {
                tokenizer
                    .chat_template()?
                    .ok_or_else(|| TextError::Template {
                        name: "checkpoint".into(),
                        message: format!(
                            "the tokenizer at {} has no chat_template; name a built-in ({}) or a .jinja file",
                            tokenizer.path().display(),
                            BUILTINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
                        ),
                    })
            }
            name if builtin::find(name).is_some() => Self::builtin(name, bos, eos),
            path => {
                let path = Path::new(path);
                let source = read_to_string(path)?;
                Self::from_jinja(
                    &path.display().to_string(),
                    &source,
                    tokenizer.bos_text(),
                    tokenizer.eos_text(),
                )
            }
        }
    }

    /// This template with a system prompt override: the first message, if it is a system
    /// message, gets this content; otherwise a system message is inserted first.
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// The template's name (`checkpoint`, a built-in name, or a file path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja source as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The system prompt override, if any.
    pub fn system_prompt(&self) -> Option<&str> {
        self.system_prompt.as_deref()
    }

    /// Renders `messages`; with `add_generation_prompt` the assistant header is appended.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let raw = self.render_raw(&self.effective(messages), add_generation_prompt)?;
        Ok(raw.replace([GEN_START, GEN_END], ""))
    }

    /// Renders the whole conversation (no generation prompt) and finds each assistant turn.
    pub fn render_with_assistant_spans(&self, messages: &[ChatMessage]) -> Result<RenderedChat> {
        let messages = self.effective(messages);
        if self.has_generation_tags {
            let raw = self.render_raw(&messages, false)?;
            return Ok(strip_generation_markers(&raw));
        }
        let text = self.render_raw(&messages, false)?;
        let mut spans = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            let prefix = self.render_raw(&messages[..i], true)?;
            let upto = self.render_raw(&messages[..=i], false)?;
            if !upto.starts_with(&prefix) || !text.starts_with(&upto) {
                return Err(TextError::Template {
                    name: self.name.clone(),
                    message: format!(
                        "cannot locate assistant message {i}: rendering the conversation up to it \
                         is not a prefix of the full rendering (the template changes earlier \
                         turns depending on later ones); add {{% generation %}} tags to the template"
                    ),
                });
            }
            spans.push(prefix.len()..upto.len());
        }
        Ok(RenderedChat {
            text,
            assistant_spans: spans,
        })
    }

    fn effective(&self, messages: &[ChatMessage]) -> Vec<ChatMessage> {
        let mut out = messages.to_vec();
        if let Some(prompt) = &self.system_prompt {
            match out.first_mut() {
                Some(first) if first.role == "system" => first.content.clone_from(prompt),
                _ => out.insert(0, ChatMessage::system(prompt.clone())),
            }
        }
        out
    }

    fn render_raw(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if messages
            .iter()
            .any(|m| m.content.contains([GEN_START, GEN_END]))
        {
            return Err(TextError::Template {
                name: self.name.clone(),
                message: "a message contains the private-use characters U+E000/U+E001 that \
                          mark assistant spans"
                    .into(),
            });
        }
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error(&self.name, &e))?;
        tmpl.render(context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            tools => Value::from(()),
            documents => Value::from(()),
        })
        .map_err(|e| template_error(&self.name, &e))
    }
}

/// Removes the generation markers and records the ranges they enclosed.
fn strip_generation_markers(raw: &str) -> RenderedChat {
    let mut text = String::with_capacity(raw.len());
    let mut spans = Vec::new();
    let mut open = None;
    for c in raw.chars() {
        match c {
            GEN_START => open = Some(text.len()),
            GEN_END => {
                if let Some(start) = open.take() {
                    spans.push(start..text.len());
                }
            }
            c => text.push(c),
        }
    }
    RenderedChat {
        text,
        assistant_spans: spans,
    }
}

fn template_error(name: &str, err: &minijinja::Error) -> TextError {
    let mut message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if let Some(line) = err.line() {
        message.push_str(&format!(" (template line {line})"));
    }
    TextError::Template {
        name: name.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::strftime_utc;

    #[test]
    fn strftime_formats_a_known_date() {
        // 2024-02-29 13:05:09 UTC was a Thursday (date -u -d @1709211909).
        assert_eq!(
            strftime_utc(1_709_211_909, "%Y-%m-%d %H:%M:%S %A %d %B %Y %b %a %%"),
            "2024-02-29 13:05:09 Thursday 29 February 2024 Feb Thu %"
        );
    }
}
