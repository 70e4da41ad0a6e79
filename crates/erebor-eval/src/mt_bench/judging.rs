//! FastChat's grading as judge requests: which prompt each question and turn gets, the exact
//! request body, and running them through the cache and the client.
//!
//! Single-answer grading: `single-v1` for turn 1, `single-v1-multi-turn` (both turns shown) for
//! turn 2, the `-math-` prompts with the reference answers for math, reasoning and coding;
//! pairwise grading: `pair-v2` / `pair-math-v1` (and their multi-turn forms) in both orders.
//! Every request is the judge's system prompt and the filled template, temperature 0 and
//! `max_tokens` 2048, as FastChat sends it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use erebor_core::CancelToken;
use tokio::task::JoinSet;

use super::cache::{CacheError, CacheKey, CachedReply, JudgmentCache};
use super::client::{ChatClient, CompletionError, Reply, request_body};
use super::data::{AnswerRecord, JudgePrompt, Question};
use super::error::{MtBenchError, Result};
use super::pyformat;

/// The judge's `max_tokens` (FastChat's).
pub(crate) const JUDGE_MAX_TOKENS: usize = 2048;

/// One request to the judge.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeRequest {
    /// The question.
    pub question_id: u64,
    /// Its category.
    pub category: String,
    /// 1 or 2.
    pub turn: u8,
    /// Pairwise: 1 when model 1's answer is assistant A, 2 when the order is swapped.
    pub game: Option<u8>,
    /// 0-based repeat.
    pub repeat: u32,
    /// The judge prompt's name.
    pub prompt_name: String,
    /// The filled user message.
    pub user_prompt: String,
    /// The exact request body.
    pub body: String,
}

impl JudgeRequest {
    /// `question 81 turn 2 game 1 repeat 0`, for messages.
    pub fn label(&self) -> String {
        let game = self.game.map(|g| format!(" game {g}")).unwrap_or_default();
        format!(
            "question {} turn {}{game} repeat {}",
            self.question_id, self.turn, self.repeat
        )
    }
}

/// What the judge answered to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// The request.
    pub request: JudgeRequest,
    /// The reply, or the last failure after the retries.
    pub outcome: std::result::Result<Reply, CompletionError>,
    /// Whether the reply came from the cache.
    pub from_cache: bool,
}

/// The prompt for a question and turn: `single`/`pair`, math or not, multi-turn or not.
fn prompt_name(pairwise: bool, question: &Question, turn: u8) -> &'static str {
    match (pairwise, question.needs_reference(), turn == 2) {
        (false, false, false) => "single-v1",
        (false, true, false) => "single-math-v1",
        (false, false, true) => "single-v1-multi-turn",
        (false, true, true) => "single-math-v1-multi-turn",
        (true, false, false) => "pair-v2",
        (true, true, false) => "pair-math-v1",
        (true, false, true) => "pair-v2-multi-turn",
        (true, true, true) => "pair-math-v1-multi-turn",
    }
}

/// The two turns of `question`'s answer in `answers`, or an error naming the question.
fn two_turns<'a>(
    question: &Question,
    answers: &'a BTreeMap<u64, AnswerRecord>,
    whose: &str,
) -> Result<&'a [String]> {
    let error = |message: String| MtBenchError::Question {
        question_id: question.question_id,
        message,
    };
    let answer = answers
        .get(&question.question_id)
        .ok_or_else(|| error(format!("{whose} has no answer")))?;
    let turns = answer.turns();
    if turns.len() < 2 {
        return Err(error(format!(
            "{whose}'s answer has {} turn(s), two are needed",
            turns.len()
        )));
    }
    Ok(&turns[..2])
}

/// What the prompts of one question are filled from.
pub struct Sources<'a> {
    /// The questions to grade.
    pub questions: &'a [Question],
    /// The judge prompts by name.
    pub prompts: &'a BTreeMap<String, JudgePrompt>,
    /// Reference answers by question id (needed for math, reasoning and coding).
    pub references: &'a BTreeMap<u64, AnswerRecord>,
    /// The judge model (the request's `model`).
    pub judge_model: &'a str,
    /// Judgments per request.
    pub repeats: u32,
}

impl Sources<'_> {
    fn fields<'q>(&'q self, question: &'q Question) -> Result<BTreeMap<&'static str, &'q str>> {
        let mut fields = BTreeMap::from([
            ("question", question.turns[0].as_str()),
            ("question_1", question.turns[0].as_str()),
            ("question_2", question.turns[1].as_str()),
        ]);
        if question.needs_reference() {
            let reference = two_turns(question, self.references, "the reference answers")?;
            fields.insert("ref_answer_1", reference[0].as_str());
            fields.insert("ref_answer_2", reference[1].as_str());
        }
        Ok(fields)
    }

    fn request(
        &self,
        question: &Question,
        turn: u8,
        game: Option<u8>,
        fields: &BTreeMap<&str, &str>,
    ) -> Result<Vec<JudgeRequest>> {
        let name = prompt_name(game.is_some(), question, turn);
        let prompt = &self.prompts[name];
        let user_prompt = pyformat::format(&prompt.prompt_template, fields).map_err(|e| {
            MtBenchError::Prompt {
                name: name.to_owned(),
                message: e.to_string(),
            }
        })?;
        let messages = [
            ("system", prompt.system_prompt.as_str()),
            ("user", user_prompt.as_str()),
        ];
        let body = request_body(self.judge_model, &messages, 0.0, JUDGE_MAX_TOKENS);
        Ok((0..self.repeats)
            .map(|repeat| JudgeRequest {
                question_id: question.question_id,
                category: question.category.clone(),
                turn,
                game,
                repeat,
                prompt_name: name.to_owned(),
                user_prompt: user_prompt.clone(),
                body: body.clone(),
            })
            .collect())
    }

    /// Single-answer grading of `answers`: turns 1 and 2 of every question, each `repeats`
    /// times.
    pub fn single(&self, answers: &BTreeMap<u64, AnswerRecord>) -> Result<Vec<JudgeRequest>> {
        let mut out = Vec::new();
        for question in self.questions {
            let turns = two_turns(question, answers, "the model")?;
            let mut fields = self.fields(question)?;
            fields.insert("answer", turns[0].as_str());
            fields.insert("answer_1", turns[0].as_str());
            fields.insert("answer_2", turns[1].as_str());
            for turn in [1, 2] {
                out.extend(self.request(question, turn, None, &fields)?);
            }
        }
        Ok(out)
    }

    /// Pairwise grading of `first` against `second`: both orders of both turns.
    pub fn pairwise(
        &self,
        first: &BTreeMap<u64, AnswerRecord>,
        second: &BTreeMap<u64, AnswerRecord>,
    ) -> Result<Vec<JudgeRequest>> {
        let mut out = Vec::new();
        for question in self.questions {
            let one = two_turns(question, first, "model 1")?;
            let two = two_turns(question, second, "model 2")?;
            for (game, a, b) in [(1, one, two), (2, two, one)] {
                let mut fields = self.fields(question)?;
                for (key, value) in [
                    ("answer_a", &a[0]),
                    ("answer_b", &b[0]),
                    ("answer_a_1", &a[0]),
                    ("answer_b_1", &b[0]),
                    ("answer_a_2", &a[1]),
                    ("answer_b_2", &b[1]),
                ] {
                    fields.insert(key, value.as_str());
                }
                for turn in [1, 2] {
                    out.extend(self.request(question, turn, Some(game), &fields)?);
                }
            }
        }
        Ok(out)
    }
}

/// Asks one request: from the cache, or from the endpoint (then stored at once).
async fn judge_one(
    client: &ChatClient,
    cache: &dyn JudgmentCache,
    request: JudgeRequest,
) -> Result<Judged> {
    let key = CacheKey::new(client.url(), &request.body, request.repeat);
    let cache_error = |e: CacheError| {
        MtBenchError::Cache(CacheError::new(
            format!("{}: {}", request.label(), e.doing),
            e.source,
        ))
    };
    if let Some(hit) = cache.get(&key).await.map_err(cache_error)? {
        let outcome = Ok(Reply {
            model: hit.model,
            content: hit.content,
        });
        return Ok(Judged {
            request,
            outcome,
            from_cache: true,
        });
    }
    let outcome = client.complete(&request.body).await;
    if let Ok(reply) = &outcome {
        let stored = CachedReply {
            model: reply.model.clone(),
            content: reply.content.clone(),
        };
        cache
            .put(&key, &request.body, &stored)
            .await
            .map_err(cache_error)?;
    }
    Ok(Judged {
        request,
        outcome,
        from_cache: false,
    })
}

/// Runs every request (at most the client's concurrency at once) and returns the results in
/// request order. `on_done(done, total)` is called as each finishes. Stops early, keeping
/// what is stored, when `cancel` is set.
pub(crate) async fn run_requests(
    client: &ChatClient,
    cache: Arc<dyn JudgmentCache>,
    requests: Vec<JudgeRequest>,
    cancel: &CancelToken,
    on_done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Judged>> {
    let total = requests.len();
    let mut tasks = JoinSet::new();
    for (index, request) in requests.into_iter().enumerate() {
        let client = client.clone();
        let cache = cache.clone();
        tasks.spawn(async move { (index, judge_one(&client, cache.as_ref(), request).await) });
    }
    let mut results: Vec<Option<Judged>> = (0..total).map(|_| None).collect();
    let mut done = 0;
    while !tasks.is_empty() {
        if cancel.is_cancelled() {
            tasks.abort_all();
            return Err(MtBenchError::Cancelled(format!(
                "{done} of {total} judgments finished (all kept in the cache)"
            )));
        }
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), tasks.join_next()).await
        else {
            continue;
        };
        let Some(joined) = next else { break };
        let (index, judged) = joined.map_err(MtBenchError::JudgeTask)?;
        results[index] = Some(judged?);
        done += 1;
        on_done(done, total);
    }
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or(MtBenchError::JudgeTaskLost)
}
