//! SFT mappings: message lists, ShareGPT, Alpaca, GSM8K and named fields.

use super::preference::{message_list, own_system, prompt_messages};
use crate::builders::low_edit::strip_annotations;
use crate::error::RowError;
use crate::fields::{Fields, describe};
use erebor_core::dataset::{ChatMessage, SftRecord};

/// Checks that a conversation can train: an assistant turn to learn from, a system message
/// only first. Adds the step's system prompt when the conversation has none.
fn finish(
    fields: &Fields<'_>,
    field: &str,
    id: String,
    system: Option<&str>,
    mut messages: Vec<ChatMessage>,
) -> Result<SftRecord, RowError> {
    if !messages.iter().any(|message| message.role == "assistant") {
        return Err(fields.error(
            Some(field),
            "the conversation has no assistant turn to train on",
        ));
    }
    if let Some(position) = messages.iter().skip(1).position(|m| m.role == "system") {
        return Err(fields.error(
            Some(&format!("{field}.{}", position + 1)),
            "a system message may only come first",
        ));
    }
    if let Some(system) = system.filter(|_| messages[0].role != "system") {
        messages.insert(0, ChatMessage::new("system", system));
    }
    Ok(SftRecord { id, messages })
}

/// `messages: [{role, content}]`.
pub(super) fn messages(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    field: &str,
) -> Result<SftRecord, RowError> {
    let messages = message_list(fields, field)?;
    finish(fields, field, id, system, messages)
}

/// ShareGPT: `conversations: [{from: human|gpt|system, value}]`, and an optional `system`.
pub(super) fn sharegpt(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    field: &str,
) -> Result<SftRecord, RowError> {
    let mut messages = Vec::new();
    if let Some(own) = fields.opt_str("system")? {
        messages.push(ChatMessage::new("system", own));
    }
    for (index, turn) in fields.array(field)?.iter().enumerate() {
        let at = |key: &str| format!("{field}.{index}.{key}");
        let text = |key: &str| match turn.get(key) {
            Some(serde_json::Value::String(text)) => Ok(text.as_str()),
            Some(other) => Err(fields.error(
                Some(&at(key)),
                format!("expected a string, found {}", describe(other)),
            )),
            None => Err(fields.error(Some(&at(key)), "missing")),
        };
        let from = text("from")?;
        let role = match from {
            "human" | "user" => "user",
            "gpt" | "assistant" | "chatgpt" | "bard" | "bing" | "model" => "assistant",
            "system" => "system",
            other => {
                return Err(fields.error(
                    Some(&at("from")),
                    format!("`{other}` is not a ShareGPT speaker (human, gpt, system)"),
                ));
            }
        };
        messages.push(ChatMessage::new(role, text("value")?));
    }
    if messages.is_empty() {
        return Err(fields.error(Some(field), "the conversation is empty"));
    }
    finish(fields, field, id, system, messages)
}

fn exchange(system: Option<&str>, user: &str, assistant: String) -> Vec<ChatMessage> {
    let mut messages = prompt_messages(system, user);
    messages.push(ChatMessage::assistant(assistant));
    messages
}

/// Alpaca: the user turn is `instruction`, then a blank line and `input` when there is one.
pub(super) fn alpaca(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
) -> Result<SftRecord, RowError> {
    let instruction = fields.str("instruction")?;
    let user = match fields.opt_str("input")? {
        Some(input) => format!("{instruction}\n\n{input}"),
        None => instruction.to_owned(),
    };
    let output = fields.str("output")?.to_owned();
    Ok(SftRecord {
        id,
        messages: exchange(system, &user, output),
    })
}

/// GSM8K: `question` → user, `answer` (calculator annotations stripped unless kept) → assistant.
pub(super) fn gsm8k(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    keep_annotations: bool,
) -> Result<SftRecord, RowError> {
    let answer = fields.str("answer")?;
    let answer = if keep_annotations {
        answer.to_owned()
    } else {
        strip_annotations(answer)
    };
    Ok(SftRecord {
        id,
        messages: exchange(system, fields.str("question")?, answer),
    })
}

/// Named prompt and response fields.
pub(super) fn named(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    prompt: &str,
    response: &str,
    system_field: Option<&str>,
) -> Result<SftRecord, RowError> {
    let own_system = own_system(fields, system_field)?;
    Ok(SftRecord {
        id,
        messages: exchange(
            own_system.or(system),
            fields.str(prompt)?,
            fields.str(response)?.to_owned(),
        ),
    })
}
