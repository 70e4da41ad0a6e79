//! The scheduler: drives the `Machine` with real work. It prepares the steps the machine
//! starts (fingerprint, cache reuse, upstream outputs), submits their attempts, feeds their ends
//! back, sleeps until the next backoff ends, and stops cleanly when the run is cancelled or the
//! store fails.

use crate::attempt::{AttemptOutcome, AttemptSpec, follow_reattached, run_attempt};
use crate::context::RunContext;
use crate::control::StopLevel;
use crate::events::EngineEvent;
use crate::machine::{Ended, Machine, Start, StepSpec, Transition};
use crate::prepare::{
    Prepared, cached_expectations, cached_result, fail_without_attempt, fingerprint_step, lineage,
    stored_outputs,
};
use crate::recover::Recovered;
pub use crate::summary::Summary;
use erebor_core::{OutputValue, StepId, StepOutputs};
use erebor_store::{StepRecord, StepStatus, StoreError};
use erebor_workflow::{KindRegistry, Workflow};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Scheduling limits and cache policy.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Steps running at once.
    pub jobs: usize,
    /// GPU slot ids available.
    pub gpus: Vec<u32>,
    /// Step selectors to run even when cached.
    pub force: Vec<String>,
    /// Never reuse cached results.
    pub no_cache: bool,
}

/// The machine's view of the steps: a step whose executor allocates its own GPUs (a Slurm
/// job's come from its allocation) takes none of the runner's GPU slots.
fn step_specs(ctx: &Arc<RunContext>, workflow: &Workflow) -> Vec<StepSpec> {
    let mut specs = StepSpec::of_workflow(&workflow.steps);
    for (spec, step) in specs.iter_mut().zip(&workflow.steps) {
        if ctx.for_step(step).executor.allocates_gpus() {
            spec.gpus = 0;
        }
    }
    specs
}

/// Runs the steps of `workflow` not yet done in `records`.
pub async fn schedule(
    ctx: Arc<RunContext>,
    workflow: &Workflow,
    registry: &KindRegistry,
    limits: &Limits,
    records: &[StepRecord],
    recovered: Vec<Recovered>,
) -> Summary {
    let mut pass = Pass {
        machine: Machine::new(step_specs(&ctx, workflow), &limits.gpus, limits.jobs),
        ctx,
        workflow,
        registry,
        limits,
        summary: Summary::default(),
        fingerprint_inputs: BTreeMap::new(),
        running: JoinSet::new(),
        tasks: BTreeMap::new(),
    };
    pass.restore(records).await;
    for found in recovered {
        pass.follow(found).await;
    }
    pass.drive().await;
    pass.summary.cancelled = pass.ctx.control.level() != StopLevel::Run;
    pass.summary
}

/// One pass of the scheduler over a run.
struct Pass<'a> {
    ctx: Arc<RunContext>,
    workflow: &'a Workflow,
    registry: &'a KindRegistry,
    limits: &'a Limits,
    machine: Machine,
    summary: Summary,
    /// Files each fingerprinted step reads (for lineage).
    fingerprint_inputs: BTreeMap<usize, BTreeMap<String, String>>,
    running: JoinSet<(usize, AttemptOutcome)>,
    /// Which step each attempt task runs (to end a step whose task panicked).
    tasks: BTreeMap<tokio::task::Id, usize>,
}

impl Pass<'_> {
    /// Steps finished before this pass keep their outputs (a step marked done whose outputs
    /// cannot be read runs again); attempt numbers continue after the stored ones.
    async fn restore(&mut self, records: &[StepRecord]) {
        for record in records.iter().filter(|r| r.status.is_done()) {
            let Some(index) = self.machine.position(&record.step_id) else {
                continue;
            };
            match stored_outputs(record) {
                Ok(outputs) => {
                    self.machine
                        .restore_done(index, outputs, record.fingerprint.clone());
                }
                Err(problem) => tracing::warn!("{problem}; running it again"),
            }
        }
        let ctx = Arc::clone(&self.ctx);
        let attempts = ctx
            .durably("reading the attempts of the run", || {
                ctx.store.attempts_of(&ctx.run_id)
            })
            .await;
        match attempts {
            Ok(attempts) => {
                for attempt in attempts {
                    if let Some(index) = self.machine.position(&attempt.step_id) {
                        let next = u32::try_from(attempt.number + 1).unwrap_or(u32::MAX);
                        self.machine.set_next_number(index, next);
                    }
                }
            }
            Err(error) => self.store_failed("reading the attempts of the run", &error),
        }
    }

    async fn drive(&mut self) {
        let mut control = self.ctx.control.subscribe();
        loop {
            if self.ctx.control.level() != StopLevel::Run {
                self.machine.on_cancel();
            }
            self.start_all().await;
            if self.machine.is_over() {
                break;
            }
            let wake = self.machine.next_wakeup();
            let far = Instant::now() + Duration::from_hours(24);
            tokio::select! {
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.joined(joined);
                }
                () = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
                _ = control.changed() => {}
            }
        }
    }

    /// Applies the machine's decisions until it has none (a cached step frees its job at once).
    async fn start_all(&mut self) {
        loop {
            let starts = self.machine.start_ready(Instant::now());
            if starts.is_empty() {
                return;
            }
            for start in starts {
                self.apply(start).await;
            }
        }
    }

    async fn apply(&mut self, start: Start) {
        match start {
            Start::Skip { index, because } => self.skip(index, because).await,
            Start::Impossible { index, message } => {
                let workflow = self.workflow;
                let step = &workflow.steps[index];
                fail_without_attempt(&self.ctx, step, &message, &mut self.summary).await;
            }
            Start::Prepare {
                index,
                gpus,
                number,
                retries_left,
            } => {
                if self.machine.stopping() {
                    self.machine.on_withdrawn(index);
                } else {
                    self.prepare(index, gpus, number, retries_left).await;
                }
            }
        }
    }

    async fn skip(&mut self, index: usize, because: StepId) {
        let ctx = Arc::clone(&self.ctx);
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        self.summary.skipped.push(step.id.clone());
        let message = format!("upstream step {because} did not succeed");
        let written = ctx
            .durably("marking a step skipped", || {
                ctx.store.set_step_status(
                    &ctx.run_id,
                    &step.id,
                    StepStatus::Skipped,
                    Some(("skipped", &message)),
                )
            })
            .await;
        if let Err(error) = written {
            self.store_failed(&format!("marking {} skipped", step.id), &error);
        }
        ctx.subscribers.emit(&EngineEvent::StepSkipped {
            step: step.id.clone(),
            because,
        });
    }

    /// Fingerprints a step, reuses a cached result if one fits, else submits an attempt.
    async fn prepare(&mut self, index: usize, gpus: Vec<u32>, number: u32, retries_left: u32) {
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let Some(kind) = self.registry.get(&step.kind).cloned() else {
            return self.reject(index, "unknown step kind").await;
        };
        let fingerprint = match self.fingerprint(index, Arc::clone(&kind)).await {
            Ok(fingerprint) => fingerprint,
            Err(Prepared::BadInput(message)) => return self.reject(index, &message).await,
            Err(Prepared::Store(what, error)) => return self.withdraw(index, &what, &error),
        };
        if self.cacheable(index) {
            match self.reuse(index, &fingerprint).await {
                Ok(true) => return,
                Ok(false) => {}
                Err((what, error)) => return self.withdraw(index, &what, &error),
            }
        }
        let outputs_of = |id: &StepId, name: &str| -> Option<OutputValue> {
            let position = self.machine.position(id)?;
            self.machine.outputs(position)?.get(name).cloned()
        };
        let with = match erebor_workflow::runtime::substitute_outputs(&step.with, &outputs_of) {
            Ok(with) => with,
            Err(error) => return self.reject(index, &error.to_string()).await,
        };
        let upstream: Vec<&StepOutputs> = step
            .needs
            .iter()
            .filter_map(|need| self.machine.outputs(self.machine.position(need)?))
            .collect();
        let files = self
            .fingerprint_inputs
            .get(&index)
            .cloned()
            .unwrap_or_default();
        let lineage = match lineage(&self.ctx, &upstream, &with, &files).await {
            Ok(lineage) => lineage,
            Err(error) => {
                let what = format!("reading the lineage of {}", step.id);
                return self.withdraw(index, &what, &error);
            }
        };
        let spec = AttemptSpec {
            step: step.clone(),
            declared: kind.outputs_for(&with),
            with,
            number,
            gpus,
            retries_left,
            lineage,
        };
        self.submit(index, spec);
    }

    fn submit(&mut self, index: usize, spec: AttemptSpec) {
        let ctx = self.ctx.for_step(&spec.step);
        let span = tracing::info_span!("step", step = %spec.step.id, attempt = spec.number);
        let task = self.running.spawn(tracing::Instrument::instrument(
            async move { (index, run_attempt(ctx, spec).await) },
            span,
        ));
        self.tasks.insert(task.id(), index);
        self.machine.on_submitted(index);
    }

    /// Follows an attempt a previous runner left live: its step runs from the start of the
    /// pass. Its `with:` is the one in its request file; its lineage is worked out again.
    async fn follow(&mut self, found: Recovered) {
        let Some(index) = self.machine.position(&found.step) else {
            tracing::warn!(step = %found.step, "a re-attached attempt's step is not in the workflow");
            return;
        };
        self.machine.restore_running(index, &found.gpus);
        let spec = match self.reattached_spec(index, &found).await {
            Ok(spec) => spec,
            Err(message) => {
                tracing::warn!(step = %found.step, "cannot follow the re-attached attempt: {message}");
                AttemptSpec {
                    step: self.workflow.steps[index].clone(),
                    with: serde_json::Value::Null,
                    number: found.number,
                    gpus: found.gpus.clone(),
                    retries_left: 0,
                    lineage: Vec::new(),
                    declared: Vec::new(),
                }
            }
        };
        let ctx = self
            .ctx
            .for_executor(&found.executor)
            .unwrap_or_else(|| Arc::clone(&self.ctx));
        let span = tracing::info_span!("step", step = %found.step, attempt = found.number);
        let task = self.running.spawn(tracing::Instrument::instrument(
            async move { (index, follow_reattached(ctx, spec, found.reattached).await) },
            span,
        ));
        self.tasks.insert(task.id(), index);
    }

    async fn reattached_spec(
        &mut self,
        index: usize,
        found: &Recovered,
    ) -> Result<AttemptSpec, String> {
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let files = crate::protocol::AttemptFiles {
            dir: found.reattached.dir.clone(),
        };
        let request: crate::protocol::StepRequest = std::fs::read(files.request())
            .map_err(|e| format!("{}: {e}", files.request().display()))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", files.request().display()))
            })?;
        let kind = self
            .registry
            .get(&step.kind)
            .cloned()
            .ok_or("unknown step kind")?;
        if let Err(Prepared::BadInput(message) | Prepared::Store(message, _)) =
            self.fingerprint(index, Arc::clone(&kind)).await
        {
            return Err(message);
        }
        let upstream: Vec<&StepOutputs> = step
            .needs
            .iter()
            .filter_map(|need| self.machine.outputs(self.machine.position(need)?))
            .collect();
        let inputs = self
            .fingerprint_inputs
            .get(&index)
            .cloned()
            .unwrap_or_default();
        let lineage = lineage(&self.ctx, &upstream, &request.with, &inputs)
            .await
            .map_err(|e| e.to_string())?;
        Ok(AttemptSpec {
            step: step.clone(),
            declared: kind.outputs_for(&request.with),
            with: request.with,
            number: found.number,
            gpus: found.gpus.clone(),
            retries_left: step.retries,
            lineage,
        })
    }

    fn cacheable(&self, index: usize) -> bool {
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let forced = self
            .limits
            .force
            .iter()
            .any(|f| self.workflow.select(f).iter().any(|s| s.id == step.id));
        step.cache && !self.limits.no_cache && !forced && self.machine.slot(index).attempts == 1
    }

    async fn fingerprint(
        &mut self,
        index: usize,
        kind: Arc<dyn erebor_core::StepKind>,
    ) -> Result<String, Prepared> {
        if let Some(known) = self.machine.slot(index).fingerprint.clone() {
            return Ok(known);
        }
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let upstream: BTreeMap<String, String> = step
            .needs
            .iter()
            .filter_map(|need| {
                let position = self.machine.position(need)?;
                let fingerprint = self.machine.slot(position).fingerprint.clone()?;
                Some((need.to_string(), fingerprint))
            })
            .collect();
        let (hash, inputs) =
            fingerprint_step(&self.ctx, self.workflow, step, kind, upstream).await?;
        self.fingerprint_inputs.insert(index, inputs);
        self.machine.set_fingerprint(index, hash.clone());
        Ok(hash)
    }

    /// Reuses a finished result with this fingerprint, if one is usable. `Ok(true)` when the
    /// step is done by it.
    async fn reuse(
        &mut self,
        index: usize,
        fingerprint: &str,
    ) -> Result<bool, (String, StoreError)> {
        let ctx = Arc::clone(&self.ctx);
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let found = ctx
            .durably("looking up the cache", || {
                cached_result(&ctx.store, fingerprint)
            })
            .await
            .map_err(|e| (format!("looking up a cached result of {}", step.id), e))?;
        let Some((hit, outputs)) = found else {
            return Ok(false);
        };
        ctx.durably("marking a step reused", || {
            ctx.store.mark_cached(&ctx.run_id, &step.id, &hit)
        })
        .await
        .map_err(|e| (format!("marking {} reused", step.id), e))?;
        ctx.subscribers.emit(&EngineEvent::StepCached {
            step: step.id.clone(),
            from_run: hit.run_id.to_string(),
        });
        // `expect:` is not part of the fingerprint: check it against the reused result.
        let failures = cached_expectations(&ctx, step, &hit, &outputs)
            .await
            .map_err(|e| (format!("checking `expect:` of {}", step.id), e))?;
        self.summary
            .expect_failures
            .extend(failures.iter().map(|f| format!("{}: {f}", step.id)));
        self.machine.on_cached(index, outputs);
        Ok(true)
    }

    async fn reject(&mut self, index: usize, message: &str) {
        self.machine.on_rejected(index);
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        fail_without_attempt(&self.ctx, step, message, &mut self.summary).await;
    }

    fn withdraw(&mut self, index: usize, what: &str, error: &StoreError) {
        self.machine.on_withdrawn(index);
        self.store_failed(what, error);
    }

    fn store_failed(&mut self, what: &str, error: &StoreError) {
        self.summary.store_failed(&self.ctx, what, error);
        self.machine.on_cancel();
    }

    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, (usize, AttemptOutcome)), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((task, (index, outcome))) => {
                self.tasks.remove(&task);
                self.finish(index, outcome);
            }
            Err(error) => {
                let Some(index) = self.tasks.remove(&error.id()) else {
                    return;
                };
                let step = self.workflow.steps[index].id.clone();
                tracing::error!(%step, "the attempt's task ended abnormally: {error}");
                self.summary.interrupted.push(step);
                self.machine
                    .on_finished(index, Ended::Interrupted, Instant::now());
            }
        }
    }

    /// Feeds an attempt's end to the machine and reports it.
    fn finish(&mut self, index: usize, outcome: AttemptOutcome) {
        let step = self.workflow.steps[index].id.clone();
        let now = Instant::now();
        match outcome {
            AttemptOutcome::Succeeded {
                outputs,
                expect_failures,
            } => {
                self.summary
                    .expect_failures
                    .extend(expect_failures.iter().map(|f| format!("{step}: {f}")));
                self.machine
                    .on_finished(index, Ended::Succeeded(outputs), now);
            }
            AttemptOutcome::Failed { failure, log } => {
                let retryable = failure.class.is_retryable();
                match self
                    .machine
                    .on_finished(index, Ended::Failed { retryable }, now)
                {
                    Transition::Retry { delay, attempts } => {
                        self.ctx.subscribers.emit(&EngineEvent::StepRetrying {
                            step,
                            attempt: attempts,
                            delay,
                            message: failure.message,
                        });
                    }
                    _ => {
                        self.ctx.subscribers.emit(&EngineEvent::StepFailed {
                            step: step.clone(),
                            class: failure.class,
                            message: failure.message,
                            log: log.display().to_string(),
                        });
                        self.summary.failed.push(step);
                    }
                }
            }
            AttemptOutcome::Lost { message } => {
                match self.machine.on_finished(index, Ended::Lost, now) {
                    Transition::Requeued => {
                        tracing::warn!(%step, "the attempt was lost, running the step again: {message}");
                    }
                    Transition::Failed => {
                        self.ctx.subscribers.emit(&EngineEvent::StepFailed {
                            step: step.clone(),
                            class: erebor_core::FailureClass::Unknown,
                            message: format!(
                                "{message} (lost {} times)",
                                crate::machine::MAX_LOST + 1
                            ),
                            log: String::new(),
                        });
                        self.summary.failed.push(step);
                    }
                    _ => self.summary.interrupted.push(step),
                }
            }
            AttemptOutcome::Interrupted => {
                self.summary.interrupted.push(step);
                self.machine.on_finished(index, Ended::Interrupted, now);
            }
            AttemptOutcome::StoreFailed { what, error } => {
                self.store_failed(&what, &error);
                self.machine.on_finished(index, Ended::Interrupted, now);
            }
            AttemptOutcome::LostLease => {
                self.summary.lost_lease = true;
                self.ctx.control.stop(StopLevel::Immediate);
                self.machine.on_cancel();
                self.machine.on_finished(index, Ended::Interrupted, now);
            }
        }
    }
}
