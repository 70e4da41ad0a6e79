//! Preference mappings: named fields (Orca-DPO, Truthy-DPO, generic), UltraFeedback message
//! lists, and low-edit pairs from worked solutions.

use super::LowEditOptions;
use crate::builders::low_edit::{LowEditSkip, corrupt_solution, strip_annotations};
use crate::error::RowError;
use crate::fields::{Fields, describe};
use crate::stable::row_rng;
use erebor_core::dataset::{ChatMessage, PreferenceRecord};

/// An optional system message, then the user's.
pub(super) fn prompt_messages(system: Option<&str>, user: &str) -> Vec<ChatMessage> {
    let mut prompt = Vec::with_capacity(3);
    if let Some(system) = system {
        prompt.push(ChatMessage::new("system", system));
    }
    prompt.push(ChatMessage::new("user", user));
    prompt
}

/// The row's own system prompt, from `system_field` when the mapper names one.
pub(super) fn own_system<'a>(
    fields: &Fields<'a>,
    system_field: Option<&str>,
) -> Result<Option<&'a str>, RowError> {
    match system_field {
        Some(field) => fields.opt_str(field),
        None => Ok(None),
    }
}

/// A pair from named string fields; the row's own system field wins over the step's.
#[allow(clippy::too_many_arguments)]
pub(super) fn named(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    prompt: &str,
    chosen: &str,
    rejected: &str,
    system_field: Option<&str>,
) -> Result<PreferenceRecord, RowError> {
    let own_system = own_system(fields, system_field)?;
    Ok(PreferenceRecord {
        id,
        prompt: prompt_messages(own_system.or(system), fields.str(prompt)?),
        chosen: fields.str(chosen)?.to_owned(),
        rejected: fields.str(rejected)?.to_owned(),
    })
}

/// Reads `[{role, content}]` at `path`.
pub(super) fn message_list(fields: &Fields<'_>, path: &str) -> Result<Vec<ChatMessage>, RowError> {
    let items = fields.array(path)?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = |key: &str| format!("{path}.{index}.{key}");
            let text = |key: &str| match item.get(key) {
                Some(serde_json::Value::String(text)) => Ok(text.clone()),
                Some(other) => Err(fields.error(
                    Some(&at(key)),
                    format!("expected a string, found {}", describe(other)),
                )),
                None => Err(fields.error(Some(&at(key)), "missing")),
            };
            let role = text("role")?;
            if !["system", "user", "assistant"].contains(&role.as_str()) {
                return Err(fields.error(
                    Some(&at("role")),
                    format!("`{role}` is not one of system, user, assistant"),
                ));
            }
            Ok(ChatMessage::new(role, text("content")?))
        })
        .collect()
}

/// UltraFeedback-binarized: `chosen` and `rejected` are whole conversations that share all
/// messages but the last, which is the assistant's answer.
pub(super) fn ultrafeedback(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
) -> Result<PreferenceRecord, RowError> {
    let chosen = message_list(fields, "chosen")?;
    let rejected = message_list(fields, "rejected")?;
    let split_last = |messages: Vec<ChatMessage>, field: &str| {
        let mut messages = messages;
        match messages.pop() {
            Some(last) if last.role == "assistant" && !messages.is_empty() => Ok((messages, last.content)),
            _ => Err(fields.error(
                Some(field),
                "expected a conversation ending in an assistant message after at least one other message",
            )),
        }
    };
    let (mut prompt, chosen_text) = split_last(chosen, "chosen")?;
    let (rejected_prompt, rejected_text) = split_last(rejected, "rejected")?;
    if prompt != rejected_prompt {
        return Err(fields.error(
            Some("rejected"),
            "the rejected conversation's prompt differs from the chosen one's",
        ));
    }
    if let Some(system) = system.filter(|_| prompt.first().is_none_or(|m| m.role != "system")) {
        prompt.insert(0, ChatMessage::new("system", system));
    }
    Ok(PreferenceRecord {
        id,
        prompt,
        chosen: chosen_text,
        rejected: rejected_text,
    })
}

/// A low-edit pair from a worked solution; `Ok(Err(skip))` for a valid row that has no
/// intermediate result to change.
pub(super) fn low_edit(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    options: &LowEditOptions,
) -> Result<Result<PreferenceRecord, LowEditSkip>, RowError> {
    let pick = |given: &Option<String>, default: &'static str, alternative: &'static str| {
        given.clone().unwrap_or_else(|| {
            if fields.get(default).is_none() && fields.get(alternative).is_some() {
                alternative.to_owned()
            } else {
                default.to_owned()
            }
        })
    };
    let question = fields.str(&pick(&options.question, "question", "query"))?;
    let solution = fields.str(&pick(&options.answer, "answer", "response"))?;
    let chosen = if options.keep_annotations {
        solution.to_owned()
    } else {
        strip_annotations(solution)
    };
    let mut rng = row_rng(options.seed, &id);
    Ok(
        corrupt_solution(&chosen, &mut rng).map(|edit| PreferenceRecord {
            id,
            prompt: prompt_messages(system, question),
            chosen,
            rejected: edit.rejected,
        }),
    )
}
