//! Generation requests (lm-eval `greedy_until` / `generate_until`): greedy, batched with the KV
//! cache, until a stop string, the tokenizer's end-of-sequence tokens or the task's limit.

use std::collections::BTreeMap;

use erebor_model::{GenerationConfig, generate};

use super::loglikelihood::{Scored, window};
use super::{EvalModel, EvalSettings, TokenCounts};
use crate::error::{EvalError, Result};
use crate::task::Response;

/// One generation request, with its document for error messages.
pub(super) struct GenItem<'a> {
    /// The task's name.
    pub task: &'a str,
    /// The document's id.
    pub doc_id: usize,
    /// The prompt.
    pub context: &'a str,
    /// Stop strings.
    pub until: &'a [String],
    /// Most new tokens.
    pub max_gen_toks: usize,
}

/// A prompt ready to run: its item, ids and truncation warning.
struct Prompt {
    item: usize,
    ids: Vec<u32>,
    warning: Option<String>,
}

/// Generates for every item; results are in item order.
pub(super) fn generate_all(
    model: EvalModel<'_>,
    settings: &EvalSettings,
    items: &[GenItem<'_>],
) -> Result<(Vec<Scored>, TokenCounts)> {
    let mut out: Vec<Option<Scored>> = items.iter().map(|_| None).collect();
    let mut counts = TokenCounts::default();
    // Requests with the same stop strings and limit run together.
    let mut groups: BTreeMap<(Vec<String>, usize), Vec<Prompt>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let prompt = encode_prompt(model, settings, item, i)?;
        groups
            .entry((item.until.to_vec(), item.max_gen_toks))
            .or_default()
            .push(prompt);
    }
    for ((until, max_gen_toks), mut prompts) in groups {
        prompts.sort_by_key(|p| std::cmp::Reverse(p.ids.len()));
        let config = GenerationConfig {
            max_new_tokens: max_gen_toks,
            temperature: 0.0,
            stop_token_ids: model.tokenizer.stop_token_ids().to_vec(),
            stop_strings: until,
            ..GenerationConfig::default()
        };
        for batch in batches(&prompts, settings, max_gen_toks) {
            let ids: Vec<Vec<u32>> = batch.iter().map(|p| p.ids.clone()).collect();
            let generations = generate(model.model, Some(model.tokenizer), &ids, &config)?;
            for (prompt, generation) in batch.iter().zip(generations) {
                let fed = prompt.ids.len() + generation.token_ids.len().saturating_sub(1);
                counts.add(TokenCounts {
                    forward: fed as u64,
                    unshared: fed as u64,
                    lm_eval_hf: fed as u64,
                });
                out[prompt.item] = Some(Scored {
                    response: Response::Generated(generation.text),
                    warning: prompt.warning.clone(),
                });
            }
        }
    }
    Ok((
        out.into_iter()
            .map(|s| s.expect("every item generated"))
            .collect(),
        counts,
    ))
}

/// Tokenises a prompt and cuts it on the left so that it and `max_gen_toks` new tokens fit
/// the window, as lm-eval does.
fn encode_prompt(
    model: EvalModel<'_>,
    settings: &EvalSettings,
    item: &GenItem<'_>,
    index: usize,
) -> Result<Prompt> {
    let window = window(model, settings);
    let error = |message: String| EvalError::Document {
        task: item.task.to_owned(),
        doc_id: item.doc_id,
        message,
    };
    if item.max_gen_toks >= window {
        return Err(error(format!(
            "max_gen_toks {} leaves no room for a prompt in the window of {window} tokens",
            item.max_gen_toks
        )));
    }
    let mut ids = model
        .tokenizer
        .encode_ids(item.context, settings.add_bos)
        .map_err(EvalError::from)?;
    if ids.is_empty() {
        return Err(error("the prompt encodes to no tokens".into()));
    }
    let room = window - item.max_gen_toks;
    let warning = (ids.len() > room).then(|| {
        format!(
            "prompt of {} tokens left-truncated to {room} (window {window} minus {} new tokens)",
            ids.len(),
            item.max_gen_toks
        )
    });
    if ids.len() > room {
        ids.drain(..ids.len() - room);
    }
    Ok(Prompt {
        item: index,
        ids,
        warning,
    })
}

/// Consecutive batches of prompts (longest first) of at most `batch_size` rows and
/// `max_batch_tokens` tokens counting the new ones.
fn batches<'p>(
    prompts: &'p [Prompt],
    settings: &EvalSettings,
    max_gen_toks: usize,
) -> Vec<&'p [Prompt]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < prompts.len() {
        let longest = prompts[start].ids.len() + max_gen_toks;
        let by_tokens = (settings.max_batch_tokens / longest.max(1)).max(1);
        let end = (start + settings.batch_size.min(by_tokens).max(1)).min(prompts.len());
        out.push(&prompts[start..end]);
        start = end;
    }
    out
}
