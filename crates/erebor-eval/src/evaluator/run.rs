//! [`Evaluator`]: the per-task loop (cache lookup, chunks of documents, `process_results`,
//! aggregation).

use std::time::Instant;

use erebor_model::scoring::SharedPrefix;

use super::aggregate::{aggregate_task, group_results, leaderboard_average};
use super::generation::{GenItem, generate_all};
use super::loglikelihood::{LlItem, Scored, score, shared_prefix};
use super::{DocResult, EvalModel, EvalReport, EvalSettings, Hooks, TaskResult, TokenCounts};
use crate::cache::{CachedDoc, ResumeCache, TaskCache, sha256_hex, task_config_hash};
use crate::error::{EvalError, Result};
use crate::task::{DocInstance, Request, Response, Task};

/// Runs tasks against one model.
pub struct Evaluator<'a> {
    model: EvalModel<'a>,
    settings: EvalSettings,
    hooks: Hooks<'a>,
    cache: Option<&'a ResumeCache>,
}

/// lm-eval's `prompt_hash` of a document: sha256 of its first request's context.
pub fn prompt_hash(instance: &DocInstance) -> String {
    sha256_hex(instance.requests.first().map_or("", Request::context))
}

/// Documents still to evaluate, each with its slot (its index in evaluation order).
type Pending = Vec<(usize, DocInstance)>;

/// Each instance's slot in evaluation order: finished from `cache` where it holds the document
/// (with the same prompt), else left empty and returned with its slot as pending.
fn from_cache(
    task: &dyn Task,
    instances: Vec<DocInstance>,
    cache: Option<&TaskCache>,
) -> Result<(Vec<Option<DocResult>>, Pending)> {
    let mut slots: Vec<Option<DocResult>> = vec![None; instances.len()];
    let mut pending = Vec::new();
    for (slot, instance) in instances.into_iter().enumerate() {
        let hit = cache
            .and_then(|c| c.get(instance.doc_id, &prompt_hash(&instance)))
            .cloned();
        match hit {
            Some(doc) => {
                slots[slot] = Some(finish_doc(
                    task,
                    instance,
                    doc.responses,
                    doc.warnings,
                    true,
                )?);
            }
            None => pending.push((slot, instance)),
        }
    }
    Ok((slots, pending))
}

impl<'a> Evaluator<'a> {
    /// An evaluator of `model` with `settings`, reporting through `hooks`.
    pub fn new(model: EvalModel<'a>, settings: EvalSettings, hooks: Hooks<'a>) -> Self {
        Evaluator {
            model,
            settings,
            hooks,
            cache: None,
        }
    }

    /// Keeps finished documents in `cache` and skips those it already holds.
    #[must_use]
    pub fn with_cache(mut self, cache: &'a ResumeCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &EvalSettings {
        &self.settings
    }

    /// Evaluates every task, then the group averages and the leaderboard average.
    pub fn evaluate(&self, tasks: &[Box<dyn Task>]) -> Result<EvalReport> {
        let mut results = Vec::with_capacity(tasks.len());
        let mut tokens = TokenCounts::default();
        for task in tasks {
            let result = self.evaluate_task(task.as_ref())?;
            tokens.add(result.tokens);
            results.push(result);
        }
        let groups = group_results(&results);
        let leaderboard = leaderboard_average(&results, &groups);
        Ok(EvalReport {
            tasks: results,
            groups,
            leaderboard,
            tokens,
        })
    }

    /// Evaluates one task.
    pub fn evaluate_task(&self, task: &dyn Task) -> Result<TaskResult> {
        let started = Instant::now();
        let instances = task.instances(self.settings.limit)?;
        let n_original = match self.settings.limit {
            Some(_) => task.instances(None)?.len(),
            None => instances.len(),
        };
        let config_hash = task_config_hash(task, &self.settings);
        let mut cache = match self.cache {
            Some(cache) => Some(cache.open_task(task.name(), &config_hash)?),
            None => None,
        };
        let total = instances.len();
        self.hooks
            .progress
            .start_phase(&format!("eval {}", task.name()), Some(total as u64));
        let (mut slots, pending) = from_cache(task, instances, cache.as_ref())?;
        let mut done = total - pending.len();
        self.hooks.progress.set_position(done as u64);
        let mut tokens = TokenCounts::default();
        let prefix = shared_prefix(
            self.model,
            &self.settings,
            pending
                .iter()
                .flat_map(|(_, i)| &i.requests)
                .filter_map(|r| match r {
                    Request::Loglikelihood { context, .. } => Some(context.as_str()),
                    Request::GenerateUntil { .. } => None,
                }),
        )?;
        let prefix = prefix.map(|(prefix, counts)| {
            tokens.add(counts);
            prefix
        });
        for chunk in chunks(pending, self.chunk_requests()) {
            if self
                .hooks
                .cancel
                .is_some_and(erebor_core::CancelToken::is_cancelled)
            {
                return Err(EvalError::Cancelled {
                    task: task.name().to_owned(),
                });
            }
            let (finished, counts) = self.score_chunk(task, chunk, prefix.as_ref())?;
            tokens.add(counts);
            if let Some(cache) = cache.as_mut() {
                append_to_cache(cache, &finished)?;
            }
            done += finished.len();
            for (slot, doc) in finished {
                slots[slot] = Some(doc);
            }
            self.hooks.progress.set_position(done as u64);
        }
        let docs: Vec<DocResult> =
            slots
                .into_iter()
                .collect::<Option<_>>()
                .ok_or_else(|| EvalError::Task {
                    task: task.name().to_owned(),
                    message: "a document was left without a result".to_owned(),
                })?;
        Ok(Self::task_result(
            task,
            docs,
            n_original,
            tokens,
            config_hash,
            started,
        ))
    }

    fn task_result(
        task: &dyn Task,
        docs: Vec<DocResult>,
        n_original: usize,
        tokens: TokenCounts,
        config_hash: String,
        started: Instant,
    ) -> TaskResult {
        let warned = docs.iter().filter(|d| !d.warnings.is_empty()).count();
        let mut notes = task.notes();
        if warned > 0 {
            notes.push(format!(
                "{warned} of {} documents had input cut on the left to fit the window (see \
                 `warnings` in the samples)",
                docs.len()
            ));
        }
        TaskResult {
            name: task.name().to_owned(),
            group: task.group().map(str::to_owned),
            num_fewshot: task.num_fewshot(),
            version: task.version(),
            config: task.config(),
            data_files: task.data_files(),
            notes,
            metrics: aggregate_task(task.metrics(), &docs),
            docs,
            n_original,
            tokens,
            config_hash,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Requests per chunk: enough for several full batches, few enough that finished documents
    /// reach the cache and the progress bar often.
    fn chunk_requests(&self) -> usize {
        (self.settings.batch_size * 4).max(32)
    }

    /// Scores the requests of a chunk of documents and finishes each document.
    fn score_chunk(
        &self,
        task: &dyn Task,
        chunk: Vec<(usize, DocInstance)>,
        prefix: Option<&SharedPrefix>,
    ) -> Result<(Vec<(usize, DocResult)>, TokenCounts)> {
        let mut ll = Vec::new();
        let mut gen_items = Vec::new();
        let mut where_ll = Vec::new();
        let mut where_gen = Vec::new();
        for (d, (_, instance)) in chunk.iter().enumerate() {
            for (r, request) in instance.requests.iter().enumerate() {
                match request {
                    Request::Loglikelihood {
                        context,
                        continuation,
                    } => {
                        ll.push(LlItem {
                            task: task.name(),
                            doc_id: instance.doc_id,
                            request: r,
                            context,
                            continuation,
                        });
                        where_ll.push((d, r));
                    }
                    Request::GenerateUntil {
                        context,
                        until,
                        max_gen_toks,
                    } => {
                        gen_items.push(GenItem {
                            task: task.name(),
                            doc_id: instance.doc_id,
                            context,
                            until,
                            max_gen_toks: *max_gen_toks,
                        });
                        where_gen.push((d, r));
                    }
                }
            }
        }
        let (ll_out, mut counts) = score(self.model, &self.settings, &ll, prefix)?;
        let (gen_out, gen_counts) = generate_all(self.model, &self.settings, &gen_items)?;
        counts.add(gen_counts);
        let mut per_doc: Vec<Vec<Option<Scored>>> = chunk
            .iter()
            .map(|(_, i)| i.requests.iter().map(|_| None).collect())
            .collect();
        for ((d, r), scored) in where_ll.into_iter().zip(ll_out) {
            per_doc[d][r] = Some(scored);
        }
        for ((d, r), scored) in where_gen.into_iter().zip(gen_out) {
            per_doc[d][r] = Some(scored);
        }
        let mut finished = Vec::with_capacity(chunk.len());
        for ((slot, instance), scored) in chunk.into_iter().zip(per_doc) {
            let (responses, warnings): (Vec<Response>, Vec<Option<String>>) = scored
                .into_iter()
                .map(|s| {
                    let s = s.expect("every request scored");
                    (s.response, s.warning)
                })
                .unzip();
            let warnings = warnings.into_iter().flatten().collect();
            finished.push((
                slot,
                finish_doc(task, instance, responses, warnings, false)?,
            ));
        }
        Ok((finished, counts))
    }
}

/// Metrics and filtered responses of a document from its responses.
fn finish_doc(
    task: &dyn Task,
    instance: DocInstance,
    responses: Vec<Response>,
    warnings: Vec<String>,
    from_cache: bool,
) -> Result<DocResult> {
    if responses.len() != instance.requests.len() {
        return Err(EvalError::Document {
            task: task.name().to_owned(),
            doc_id: instance.doc_id,
            message: format!(
                "{} responses for {} requests",
                responses.len(),
                instance.requests.len()
            ),
        });
    }
    let metrics = task.process_results(&instance, &responses)?;
    let filtered = task
        .filters()
        .into_iter()
        .map(|filter| {
            let values = task.filtered_responses(&filter, &instance, &responses);
            (filter, values)
        })
        .collect();
    Ok(DocResult {
        instance,
        responses,
        filtered,
        metrics,
        warnings,
        from_cache,
    })
}

fn append_to_cache(cache: &mut TaskCache, finished: &[(usize, DocResult)]) -> Result<()> {
    let docs: Vec<CachedDoc> = finished
        .iter()
        .map(|(_, d)| CachedDoc {
            doc_id: d.instance.doc_id,
            prompt_hash: prompt_hash(&d.instance),
            responses: d.responses.clone(),
            warnings: d.warnings.clone(),
        })
        .collect();
    cache.append(&docs)
}

/// Splits documents into chunks of at least `requests` requests (the last may hold fewer).
fn chunks(docs: Vec<(usize, DocInstance)>, requests: usize) -> Vec<Vec<(usize, DocInstance)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut count = 0;
    for doc in docs {
        count += doc.1.requests.len();
        current.push(doc);
        if count >= requests {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
