//! Answers to the questions, two turns each, in FastChat's answer JSONL.
//!
//! - `generate_answers`: a local model, prompts rendered with its chat template (or a named
//!   one with a system prompt), batched with the KV cache by erebor-model's generator (the one
//!   evaluation's GSM8K uses), each category at FastChat's temperature (or one temperature
//!   for all when overridden), seeded. Turn 2 is asked with turn 1's question and answer in
//!   the conversation.
//! - `answers_from_endpoint`: the same conversations sent to an OpenAI-compatible server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use erebor_core::CancelToken;
use erebor_model::{ChatMessage, ChatTemplate, GenerationConfig, Tokenizer, generate};

use super::cache::JudgmentCache;
use super::client::{ChatClient, request_body};
use super::data::{AnswerRecord, Question, answer_temperature};
use super::error::{MtBenchError, Result};
use super::judging::{JudgeRequest, run_requests};

/// How to generate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AnswerSettings {
    /// Most new tokens per turn (FastChat's default 1024).
    pub max_new_tokens: usize,
    /// Prompts per batch.
    pub batch_size: usize,
    /// Seed of the sampling streams.
    pub seed: u64,
    /// One temperature for every category instead of FastChat's table (0 = greedy).
    pub temperature: Option<f32>,
}

/// What answering cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnswerStats {
    /// Tokens generated (stop tokens included).
    pub new_tokens: usize,
    /// Prompt tokens fed.
    pub prompt_tokens: usize,
    /// Prompts cut on the left to fit the context window.
    pub truncated_prompts: usize,
    /// Seconds spent generating.
    pub seconds: f64,
}

/// The conversation of `question` up to turn `turn` (0-based), with the earlier answers.
fn conversation(question: &Question, earlier: &[String], turn: usize) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    for (t, asked) in question.turns.iter().enumerate().take(turn + 1) {
        messages.push(ChatMessage::user(asked.clone()));
        if t < turn {
            messages.push(ChatMessage::assistant(earlier[t].clone()));
        }
    }
    messages
}

/// A local model and what renders its prompts.
pub(crate) struct LocalModel<'a> {
    /// The network.
    pub model: &'a erebor_model::CausalLm,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The chat template (the checkpoint's, or a named one with a system prompt).
    pub template: &'a ChatTemplate,
}

/// Generates both turns of every question with `local`.
pub(crate) fn generate_answers(
    local: &LocalModel<'_>,
    questions: &[Question],
    model_id: &str,
    settings: &AnswerSettings,
    cancel: &CancelToken,
    progress: &dyn Fn(usize, usize),
) -> Result<(BTreeMap<u64, AnswerRecord>, AnswerStats)> {
    let window = local.model.config().max_position_embeddings;
    if settings.max_new_tokens >= window {
        return Err(MtBenchError::Config(format!(
            "max_new_tokens {} leaves no room for a prompt in the model's window of {window} tokens",
            settings.max_new_tokens
        )));
    }
    let mut turns: Vec<Vec<String>> = vec![Vec::new(); questions.len()];
    let mut stats = AnswerStats::default();
    let started = Instant::now();
    for turn in 0..2 {
        let mut prompts = Vec::with_capacity(questions.len());
        for (i, q) in questions.iter().enumerate() {
            let text = local
                .template
                .render(&conversation(q, &turns[i], turn), true)?;
            let mut ids = local.tokenizer.encode_ids(&text, false)?;
            let room = window - settings.max_new_tokens;
            if ids.len() > room {
                tracing::warn!(
                    question = q.question_id,
                    turn = turn + 1,
                    tokens = ids.len(),
                    kept = room,
                    "prompt cut on the left to fit the context window"
                );
                ids.drain(..ids.len() - room);
                stats.truncated_prompts += 1;
            }
            stats.prompt_tokens += ids.len();
            prompts.push((i, ids));
        }
        let texts = generate_turn(
            local, questions, prompts, settings, turn, cancel, &mut stats,
        )?;
        for (i, text) in texts {
            turns[i].push(text);
        }
        progress(turn + 1, 2);
    }
    stats.seconds = started.elapsed().as_secs_f64();
    let answers = questions
        .iter()
        .zip(turns)
        .map(|(q, t)| (q.question_id, AnswerRecord::new(q.question_id, model_id, t)))
        .collect();
    Ok((answers, stats))
}

/// One turn of every question: grouped by temperature, longest prompts first, in batches.
fn generate_turn(
    local: &LocalModel<'_>,
    questions: &[Question],
    prompts: Vec<(usize, Vec<u32>)>,
    settings: &AnswerSettings,
    turn: usize,
    cancel: &CancelToken,
    stats: &mut AnswerStats,
) -> Result<Vec<(usize, String)>> {
    let mut groups: BTreeMap<u32, Vec<(usize, Vec<u32>)>> = BTreeMap::new();
    for (i, ids) in prompts {
        let t = answer_temperature(&questions[i].category, settings.temperature);
        groups.entry(t.to_bits()).or_default().push((i, ids));
    }
    let mut out = Vec::new();
    for (group, (bits, mut items)) in groups.into_iter().enumerate() {
        items.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let config = GenerationConfig {
            max_new_tokens: settings.max_new_tokens,
            temperature: f32::from_bits(bits),
            stop_token_ids: local.tokenizer.stop_token_ids().to_vec(),
            ..GenerationConfig::default()
        };
        for (b, batch) in items.chunks(settings.batch_size.max(1)).enumerate() {
            if cancel.is_cancelled() {
                return Err(MtBenchError::Cancelled("while generating answers".into()));
            }
            let config = GenerationConfig {
                seed: settings
                    .seed
                    .wrapping_add((turn as u64) << 40 | (group as u64) << 20 | b as u64),
                ..config.clone()
            };
            let ids: Vec<Vec<u32>> = batch.iter().map(|(_, ids)| ids.clone()).collect();
            let generations = generate(local.model, Some(local.tokenizer), &ids, &config)?;
            for ((i, _), generation) in batch.iter().zip(generations) {
                stats.new_tokens += generation.token_ids.len();
                out.push((*i, generation.text.trim().to_owned()));
            }
        }
    }
    Ok(out)
}

/// Asks `client` both turns of every question (turn 2 after turn 1's answer), each at its
/// category's temperature (or `temperature` for all when given) with `max_new_tokens` as
/// `max_tokens`. Replies go through `cache` like judgments, so a resumed step does not ask
/// again.
pub(crate) async fn answers_from_endpoint(
    client: &ChatClient,
    cache: Arc<dyn JudgmentCache>,
    questions: &[Question],
    model_id: &str,
    max_new_tokens: usize,
    temperature: Option<f32>,
    cancel: &CancelToken,
) -> Result<BTreeMap<u64, AnswerRecord>> {
    let mut turns: Vec<Vec<String>> = vec![Vec::new(); questions.len()];
    for turn_number in 1..=2u8 {
        let turn = usize::from(turn_number - 1);
        let requests: Vec<JudgeRequest> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let messages = conversation(q, &turns[i], turn);
                let pairs: Vec<(&str, &str)> = messages
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str()))
                    .collect();
                let body = request_body(
                    &client.endpoint().model,
                    &pairs,
                    answer_temperature(&q.category, temperature),
                    max_new_tokens,
                );
                JudgeRequest {
                    question_id: q.question_id,
                    category: q.category.clone(),
                    turn: turn_number,
                    game: None,
                    repeat: 0,
                    prompt_name: "answer".into(),
                    user_prompt: q.turns[turn].clone(),
                    body,
                }
            })
            .collect();
        let replies = run_requests(client, cache.clone(), requests, cancel, &|_, _| {}).await?;
        for (i, judged) in replies.into_iter().enumerate() {
            let reply = judged.outcome.map_err(|e| MtBenchError::Endpoint {
                item: format!("answer to {}", judged.request.label()),
                url: client.url().to_owned(),
                message: e.to_string(),
            })?;
            turns[i].push(reply.content.trim().to_owned());
        }
    }
    Ok(questions
        .iter()
        .zip(turns)
        .map(|(q, t)| (q.question_id, AnswerRecord::new(q.question_id, model_id, t)))
        .collect())
}
