//! One MT-Bench run: answers (a local model, an endpoint, or a file), then judgments through
//! the cache, then scores. The `mt-bench` step kind and `erebor mt-bench` both call [`run`].
//!
//! Files under the work folder, as FastChat lays them out:
//! `model_answer/<model_id>.jsonl` and `model_judgment/<judge>_single.jsonl` (or `_pair.jsonl`).
//! Judgments are written to the cache as they arrive; the files are written when all are in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use erebor_core::{CancelToken, MetricsSink, ProgressReporter};
use erebor_model::ChatTemplate;
use sha2::{Digest, Sha256};

use super::answers::{
    AnswerSettings, AnswerStats, LocalModel, answers_from_endpoint, generate_answers,
};
use super::cache::{CacheProvider, JudgmentCache};
use super::client::ChatClient;
use super::config::{Mode, MtBenchConfig};
use super::data::{self, AnswerRecord, JudgePrompt, Question};
use super::error::{MtBenchError, Result, io};
use super::judging::{JudgeRequest, Judged, Sources, run_requests};
use super::scoring::{
    PairwiseScores, SingleScores, pairwise_records, pairwise_scores, single_record, single_scores,
};
use crate::evaluator::LoadedModel;
use crate::output::pyjson::{self, PyValue};

/// What a run needs besides its settings.
pub struct RunContext<'a> {
    /// Relative paths in the settings are relative to this folder.
    pub base_dir: &'a Path,
    /// Answers and judgments go under this folder.
    pub work_dir: &'a Path,
    /// The model's name when the settings give no `model_id`.
    pub default_model_id: String,
    /// Opens the judgment cache.
    pub provider: &'a dyn CacheProvider,
    /// Progress goes here.
    pub progress: &'a dyn ProgressReporter,
    /// Set to stop.
    pub cancel: &'a CancelToken,
}

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// The answers file.
    pub answers_file: PathBuf,
    /// The judgments file, when a judge was given.
    pub judgments_file: Option<PathBuf>,
    /// Single-grading scores.
    pub single: Option<SingleScores>,
    /// Pairwise tallies.
    pub pairwise: Option<PairwiseScores>,
    /// Generation figures, when a local model answered.
    pub answer_stats: Option<AnswerStats>,
    /// Whether the answers came from an earlier attempt of the same settings.
    pub answers_reused: bool,
    /// Judgments asked for.
    pub judgments: usize,
    /// Of which from the cache.
    pub from_cache: usize,
    /// The temperature every answer was generated at, when the settings overrode FastChat's
    /// per-category table (the settings refuse an override with an answers file).
    pub temperature_override: Option<f32>,
}

/// Questions (first `limit`), and the judge's prompts and references, read and checked.
struct Inputs {
    questions: Vec<Question>,
    prompts: BTreeMap<String, JudgePrompt>,
    references: BTreeMap<u64, AnswerRecord>,
}

fn read_inputs(config: &MtBenchConfig, base: &Path) -> Result<Inputs> {
    let mut questions = data::load_questions(&config.questions_path(base))?;
    if let Some(limit) = config.limit {
        questions.truncate(limit);
    }
    let (prompts, references) = if config.judge.is_some() {
        let prompts = data::load_judge_prompts(&config.prompts_path(base))?;
        let references = if questions.iter().any(Question::needs_reference) {
            data::load_answers(&config.references_path(base))?
        } else {
            BTreeMap::new()
        };
        (prompts, references)
    } else {
        (BTreeMap::new(), BTreeMap::new())
    };
    Ok(Inputs {
        questions,
        prompts,
        references,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| MtBenchError::Config(format!("starting the async runtime: {e}")))
}

/// Runs MT-Bench as `config` says.
pub fn run(config: &MtBenchConfig, ctx: &RunContext<'_>) -> Result<RunOutcome> {
    let inputs = read_inputs(config, ctx.base_dir)?;
    let model_id = config
        .model_id
        .clone()
        .unwrap_or_else(|| ctx.default_model_id.clone());
    let runtime = runtime()?;
    let mut cache: Option<Arc<dyn JudgmentCache>> = None;
    let mut open_cache = || -> Result<Arc<dyn JudgmentCache>> {
        if let Some(cache) = &cache {
            return Ok(cache.clone());
        }
        let opened = runtime
            .block_on(ctx.provider.open())
            .map_err(MtBenchError::Cache)?;
        cache = Some(opened.clone());
        Ok(opened)
    };
    let mut outcome = RunOutcome {
        answers_file: ctx
            .work_dir
            .join("model_answer")
            .join(format!("{model_id}.jsonl")),
        temperature_override: config.temperature,
        ..RunOutcome::default()
    };
    let answers = if let Some(path) = &config.answers {
        data::load_answers(&resolve(ctx.base_dir, path))?
    } else if let Some(from) = &config.answers_from {
        let client = ChatClient::new(from.endpoint()?, from.policy(), config.concurrency)?;
        let cache = open_cache()?;
        ctx.progress.start_phase("mt-bench answers", Some(2));
        runtime.block_on(answers_from_endpoint(
            &client,
            cache,
            &inputs.questions,
            &model_id,
            config.max_new_tokens,
            config.temperature,
            ctx.cancel,
        ))?
    } else {
        let (answers, stats, reused) = local_answers(
            config,
            ctx,
            &inputs.questions,
            &model_id,
            &outcome.answers_file,
        )?;
        outcome.answer_stats = stats;
        outcome.answers_reused = reused;
        answers
    };
    data::write_answers(&outcome.answers_file, &answers)?;
    let Some(judge) = &config.judge else {
        return Ok(outcome);
    };
    let client = ChatClient::new(judge.endpoint()?, judge.policy(), config.concurrency)?;
    let cache = open_cache()?;
    let (requests, against) =
        judge_requests(config, &judge.model, &inputs, &answers, ctx.base_dir)?;
    ctx.progress
        .start_phase("mt-bench judgments", Some(requests.len() as u64));
    let progress = |done: usize, _total: usize| ctx.progress.set_position(done as u64);
    let judged = runtime.block_on(run_requests(
        &client, cache, requests, ctx.cancel, &progress,
    ))?;
    check_any_succeeded(&judged, client.url())?;
    outcome.judgments = judged.len();
    outcome.from_cache = judged.iter().filter(|j| j.from_cache).count();
    let judgments = Judgments {
        judged: &judged,
        against,
        judge_model: &judge.model,
        model_id: &model_id,
        repeats: config.repeats,
    };
    judgments.score_and_write(&mut outcome, ctx.work_dir)?;
    Ok(outcome)
}

/// The judge's requests for `answers` (single, or pairwise against the `against:` answers),
/// and in pairwise mode the other model's id.
fn judge_requests(
    config: &MtBenchConfig,
    judge_model: &str,
    inputs: &Inputs,
    answers: &BTreeMap<u64, AnswerRecord>,
    base_dir: &Path,
) -> Result<(Vec<JudgeRequest>, Option<String>)> {
    let sources = Sources {
        questions: &inputs.questions,
        prompts: &inputs.prompts,
        references: &inputs.references,
        judge_model,
        repeats: config.repeats,
    };
    match config.mode {
        Mode::Single => Ok((sources.single(answers)?, None)),
        Mode::Pairwise => {
            let path = resolve(base_dir, config.against.as_deref().unwrap_or_default());
            let other = data::load_answers(&path)?;
            let other_id = other
                .values()
                .next()
                .map(|a| a.model_id.clone())
                .unwrap_or_default();
            Ok((sources.pairwise(answers, &other)?, Some(other_id)))
        }
    }
}

/// The finished judgments of a run and what their records name.
struct Judgments<'a> {
    judged: &'a [Judged],
    /// The other model's id in pairwise mode.
    against: Option<String>,
    judge_model: &'a str,
    model_id: &'a str,
    repeats: u32,
}

impl Judgments<'_> {
    /// Scores the judgments into `outcome` and writes FastChat's judgment file for them under
    /// `work_dir`.
    fn score_and_write(&self, outcome: &mut RunOutcome, work_dir: &Path) -> Result<()> {
        let judge_name = sanitize(self.judge_model);
        let dir = work_dir.join("model_judgment");
        let (file, records) = match &self.against {
            None => {
                outcome.single = Some(single_scores(self.judged, self.repeats));
                let records: Vec<PyValue> = self
                    .judged
                    .iter()
                    .map(|j| single_record(j, self.model_id, self.judge_model, self.repeats))
                    .collect();
                (dir.join(format!("{judge_name}_single.jsonl")), records)
            }
            Some(other_id) => {
                let records = pairwise_records(
                    self.judged,
                    self.model_id,
                    other_id,
                    self.judge_model,
                    self.repeats,
                );
                outcome.pairwise = Some(pairwise_scores(&records));
                (dir.join(format!("{judge_name}_pair.jsonl")), records)
            }
        };
        write_jsonl(&file, &records)?;
        outcome.judgments_file = Some(file);
        Ok(())
    }
}

/// Fails when requests were made and none succeeded (an endpoint that refuses connections, a
/// wrong URL or key): the first failure, naming its item and the URL.
fn check_any_succeeded(judged: &[Judged], url: &str) -> Result<()> {
    if judged.is_empty() || judged.iter().any(|j| j.outcome.is_ok()) {
        return Ok(());
    }
    let first = &judged[0];
    Err(MtBenchError::Endpoint {
        item: format!(
            "every judgment failed; the first, {}",
            first.request.label()
        ),
        url: url.to_owned(),
        message: first
            .outcome
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default(),
    })
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    erebor_core::kind::resolve_path(base, path)
}

/// A file-name-safe form of a model name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One record per line, written as FastChat's `json.dumps(result)` writes them.
fn write_jsonl(path: &Path, records: &[PyValue]) -> Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&pyjson::dumps_ascii(record));
        text.push('\n');
    }
    data::write_file(path, text.as_bytes())
}

/// Answers from the local model, or the ones an earlier attempt with the same settings and
/// weights wrote (their fingerprint is kept beside them).
fn local_answers(
    config: &MtBenchConfig,
    ctx: &RunContext<'_>,
    questions: &[Question],
    model_id: &str,
    answers_file: &Path,
) -> Result<(BTreeMap<u64, AnswerRecord>, Option<AnswerStats>, bool)> {
    let spec = config.model.as_deref().unwrap_or_default();
    let path = erebor_core::hub_models::resolve_model(ctx.base_dir, spec)
        .map_err(|e| crate::kind::model_ref_error(spec, &e))?;
    let device = config.device;
    let dtype = config
        .dtype
        .as_deref()
        .map(erebor_model::device::parse_dtype)
        .transpose()?;
    let loaded = LoadedModel::load(&path, device, dtype)?;
    let mut template = ChatTemplate::from_spec(
        config.template.as_deref().unwrap_or("checkpoint"),
        &loaded.tokenizer,
    )?;
    if let Some(system) = &config.system_prompt {
        template = template.with_system_prompt(system.clone());
    }
    let fingerprint = answers_fingerprint(config, &loaded, &template, questions, model_id);
    let meta = answers_file.with_extension("fingerprint");
    if std::fs::read_to_string(&meta).ok().as_deref() == Some(fingerprint.as_str()) {
        let answers = data::load_answers(answers_file)?;
        if questions
            .iter()
            .all(|q| answers.contains_key(&q.question_id))
        {
            tracing::info!(file = %answers_file.display(), "answers of an earlier attempt with the same settings reused");
            return Ok((answers, None, true));
        }
    }
    let local = LocalModel {
        model: &loaded.checkpoint.model,
        tokenizer: &loaded.tokenizer,
        template: &template,
    };
    let settings = AnswerSettings {
        max_new_tokens: config.max_new_tokens,
        batch_size: config.batch_size,
        seed: config.seed,
        temperature: config.temperature,
    };
    ctx.progress.start_phase("mt-bench answers", Some(2));
    let progress = |done: usize, _: usize| ctx.progress.set_position(done as u64);
    let (answers, stats) = generate_answers(
        &local, questions, model_id, &settings, ctx.cancel, &progress,
    )?;
    data::write_answers(answers_file, &answers)?;
    std::fs::write(&meta, &fingerprint).map_err(io(&meta))?;
    Ok((answers, Some(stats), false))
}

/// What decides the answers: weights, template, system prompt, generation settings, questions.
fn answers_fingerprint(
    config: &MtBenchConfig,
    loaded: &LoadedModel,
    template: &ChatTemplate,
    questions: &[Question],
    model_id: &str,
) -> String {
    let described = serde_json::json!({
        "weights": loaded.weights_sha256,
        "dtype": loaded.dtype,
        "device": loaded.device,
        "template": template.source(),
        "system_prompt": template.system_prompt(),
        "max_new_tokens": config.max_new_tokens,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "temperature": config.temperature,
        "questions": questions,
        "model_id": model_id,
        "code": 1,
    });
    hex::encode(Sha256::digest(described.to_string().as_bytes()))
}

/// Records `mt_bench/score`, `turn1`, `turn2`, `category/<name>`, `judge_errors` (single), or
/// `mt_bench/pairwise/…` (pairwise), the answering figures, and `mt_bench/temperature_override`
/// when one temperature replaced FastChat's table.
pub fn record_metrics(outcome: &RunOutcome, sink: &dyn MetricsSink) {
    let put = |key: &str, value: Option<f64>| {
        if let Some(v) = value {
            sink.record(key, 0, v);
        }
    };
    if let Some(s) = &outcome.single {
        put("mt_bench/score", s.score);
        put("mt_bench/turn1", s.turn1);
        put("mt_bench/turn2", s.turn2);
        for (category, value) in &s.categories {
            put(&format!("mt_bench/category/{category}"), Some(*value));
        }
        put("mt_bench/judge_errors", Some(s.judge_errors as f64));
        if s.per_repeat.len() > 1 {
            for (i, value) in s.per_repeat.iter().enumerate() {
                if let Some(v) = value {
                    sink.record("mt_bench/repeat_score", i as u64, *v);
                }
            }
            put("mt_bench/score_spread", s.spread());
        }
    }
    if let Some(p) = &outcome.pairwise {
        put("mt_bench/pairwise/win_rate", p.win_rate());
        put("mt_bench/pairwise/loss_rate", p.loss_rate());
        put("mt_bench/pairwise/win_rate_adjusted", p.win_rate_adjusted());
        put("mt_bench/pairwise/wins", Some(p.wins as f64));
        put("mt_bench/pairwise/losses", Some(p.losses as f64));
        put("mt_bench/pairwise/ties", Some(p.ties as f64));
        put("mt_bench/judge_errors", Some(p.judge_errors as f64));
    }
    if outcome.judgments > 0 {
        put("mt_bench/judgments", Some(outcome.judgments as f64));
        put("mt_bench/cached_judgments", Some(outcome.from_cache as f64));
    }
    put(
        "mt_bench/temperature_override",
        outcome.temperature_override.map(f64::from),
    );
    if let Some(stats) = &outcome.answer_stats {
        put("mt_bench/answer_tokens", Some(stats.new_tokens as f64));
        put(
            "mt_bench/answer_tokens_per_s",
            (stats.seconds > 0.0).then(|| stats.new_tokens as f64 / stats.seconds),
        );
        put(
            "mt_bench/truncated_prompts",
            Some(stats.truncated_prompts as f64),
        );
    }
}
