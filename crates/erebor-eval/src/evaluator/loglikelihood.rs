//! Loglikelihood requests of many documents, tokenised as lm-eval's `_encode_pair` and scored
//! together by [`Scorer`] (sorted by length, batched by a token budget, shared contexts once),
//! starting from a task's [`SharedPrefix`] when its contexts have one.

use std::collections::BTreeSet;

use erebor_model::scoring::{SharedPrefix, common_prefix_len, encode_pair};
use erebor_model::{LoglikelihoodRequest, Scorer, ScorerOptions};

use super::{EvalModel, EvalSettings, TokenCounts};
use crate::error::{EvalError, Result};
use crate::task::Response;

/// One loglikelihood request, with the document it belongs to for error messages.
pub(super) struct LlItem<'a> {
    /// The task's name.
    pub task: &'a str,
    /// The document's id.
    pub doc_id: usize,
    /// The request's index within the document.
    pub request: usize,
    /// Few-shot examples and prompt.
    pub context: &'a str,
    /// The text scored.
    pub continuation: &'a str,
}

/// A scored request and, when its input was cut on the left, a warning saying so.
pub(super) struct Scored {
    /// The model's answer.
    pub response: Response,
    /// Set when the input did not fit the window.
    pub warning: Option<String>,
}

/// The context window the evaluation uses.
pub(super) fn window(model: EvalModel<'_>, settings: &EvalSettings) -> usize {
    settings
        .max_length
        .unwrap_or(model.model.config().max_position_embeddings)
}

/// A shared prefix shorter than this is not worth its own forward pass and cache.
pub(super) const MIN_SHARED_PREFIX: usize = 16;

fn scorer<'m>(model: EvalModel<'m>, settings: &EvalSettings) -> Scorer<'m> {
    Scorer::new(
        model.model,
        ScorerOptions {
            max_length: window(model, settings),
            batch_size: settings.batch_size.max(1),
            max_batch_tokens: settings.max_batch_tokens.max(1),
            share_contexts: settings.share_contexts,
            pad_id: model.tokenizer.pad_id_or_fallback(),
        },
    )
}

/// The longest common token prefix of `contexts` (tokenised as `_encode_pair` tokenises a
/// context), run once into a KV cache, when there are at least two distinct contexts, context
/// sharing is on and the prefix has at least [`MIN_SHARED_PREFIX`] tokens (MMLU: the
/// description and the five dev examples, the same for every question of a subject).
pub(super) fn shared_prefix<'c>(
    model: EvalModel<'_>,
    settings: &EvalSettings,
    contexts: impl Iterator<Item = &'c str>,
) -> Result<Option<(SharedPrefix, TokenCounts)>> {
    let distinct: BTreeSet<&str> = contexts.filter(|c| !c.is_empty()).collect();
    if !settings.share_contexts || distinct.len() < 2 {
        return Ok(None);
    }
    let mut encoded = Vec::with_capacity(distinct.len());
    for context in distinct {
        encoded.push(
            model
                .tokenizer
                .encode_ids(context.trim_end(), settings.add_bos)?,
        );
    }
    let len = common_prefix_len(encoded.iter().map(Vec::as_slice));
    if len < MIN_SHARED_PREFIX || len >= window(model, settings) {
        return Ok(None);
    }
    let scorer = scorer(model, settings);
    let prefix = scorer.prefill(&encoded[0][..len])?;
    let counts = TokenCounts {
        forward: scorer.forward_tokens(),
        ..TokenCounts::default()
    };
    Ok(Some((prefix, counts)))
}

/// Scores every item, from `prefix`'s cache where a context extends it; results are in item
/// order.
pub(super) fn score(
    model: EvalModel<'_>,
    settings: &EvalSettings,
    items: &[LlItem<'_>],
    prefix: Option<&SharedPrefix>,
) -> Result<(Vec<Scored>, TokenCounts)> {
    if items.is_empty() {
        return Ok((Vec::new(), TokenCounts::default()));
    }
    let mut requests = Vec::with_capacity(items.len());
    for item in items {
        let (context, continuation) = encode_pair(
            model.tokenizer,
            item.context,
            item.continuation,
            settings.add_bos,
        )?;
        if continuation.is_empty() {
            return Err(EvalError::Document {
                task: item.task.to_owned(),
                doc_id: item.doc_id,
                message: format!(
                    "request {}: the continuation {:?} encodes to no tokens",
                    item.request, item.continuation
                ),
            });
        }
        requests.push(LoglikelihoodRequest {
            context,
            continuation,
        });
    }
    let max_length = window(model, settings);
    let scorer = scorer(model, settings);
    let unshared = scorer.unshared_forward_tokens(&requests);
    let lm_eval_hf = scorer.lm_eval_hf_forward_tokens(&requests);
    let results = scorer.loglikelihood_with_prefix(&requests, prefix)?;
    let counts = TokenCounts {
        forward: scorer.forward_tokens(),
        unshared,
        lm_eval_hf,
    };
    let finished = results
        .into_iter()
        .zip(items.iter().zip(&requests))
        .map(|(result, (item, request))| Scored {
            warning: result.truncated.then(|| {
                format!(
                    "request {}: {} context + {} continuation tokens left-truncated to the \
                     window of {max_length}",
                    item.request,
                    request.context.len(),
                    request.continuation.len()
                )
            }),
            response: Response::Loglikelihood {
                logprob: result.logprob,
                is_greedy: result.is_greedy,
            },
        })
        .collect();
    Ok((finished, counts))
}
