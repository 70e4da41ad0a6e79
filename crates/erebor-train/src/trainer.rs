//! The optimizer-step loop shared by SFT and preference training.
//!
//! Each optimizer step takes the next `batch_size × grad_accum` units (examples, packed rows or
//! pairs) of the epoch's shuffled order, runs them as `grad_accum` micro-batches whose losses are
//! already divided by the whole step's normaliser (target tokens for SFT, pairs for preference),
//! sums their gradients, clips the global norm, and applies `AdamW` at the schedule's learning
//! rate. Metrics go out every step; checkpoints every `checkpoint_every` steps, on cancellation
//! and at the end. A resumed attempt starts from the newest checkpoint and, because the data order
//! is a function of (seed, epoch) and the device RNG is re-seeded from (seed, step) before every
//! step, ends with the same weights as an uninterrupted run.

use crate::TrainError;
use crate::checkpoint::{
    CHECKPOINT_FORMAT_VERSION, RngState, TrainerState, latest_checkpoint, load_checkpoint,
    save_checkpoint,
};
use crate::metrics;
use crate::optim::{AdamW, clip_grad_norm, global_grad_norm};
use crate::schedule::LrSchedule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use erebor_core::{CancelToken, MetricsSink, ProgressReporter};
use erebor_model::CausalLm;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// What one micro-batch returns.
pub struct MicroBatch {
    /// The loss to back-propagate, `[1]`, already divided by the step's normaliser.
    pub loss: Tensor<1>,
    /// Real tokens processed.
    pub tokens: usize,
}

/// A training objective over units of type `Unit`.
pub trait Objective {
    /// One training example, packed row or pair.
    type Unit;

    /// The unit's share of the step normaliser (its target tokens, or 1 for a pair).
    fn weight(&self, unit: &Self::Unit) -> f64;

    /// Forward pass of one micro-batch; the loss is divided by `denominator`.
    fn micro_batch(
        &mut self,
        model: &CausalLm,
        units: &[&Self::Unit],
        denominator: f64,
    ) -> Result<MicroBatch, TrainError>;

    /// Extra metrics of the step just finished (statistics gathered by `micro_batch`).
    fn take_step_metrics(&mut self) -> Vec<(&'static str, f64)>;

    /// Held-out metrics of `model` (without gradients, dropout off), keyed as recorded.
    fn evaluate(&mut self, model: &CausalLm) -> Result<Vec<(String, f64)>, TrainError>;
}

/// Everything the loop needs besides the model, the units and the objective.
pub struct LoopSettings<'a> {
    /// Micro-batch size in units.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Optimizer steps to run.
    pub total_steps: u64,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// The optimizer (fresh; replaced by the checkpoint's state on resume).
    pub optimizer: AdamW,
    /// Clip the global gradient norm to this (0: no clipping).
    pub max_grad_norm: f64,
    /// Seed of the data order and of the per-step device RNG.
    pub seed: u64,
    /// Checkpoint every this many steps.
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Evaluate every this many steps (and before the first and after the last).
    pub eval_every: Option<u64>,
    /// Folder of this step's checkpoints.
    pub checkpoint_dir: PathBuf,
    /// Hash of config and inputs; a checkpoint with another one is refused.
    pub fingerprint: String,
    /// Precision policy, recorded in checkpoints.
    pub precision: String,
    /// The training device (with autodiff).
    pub device: Device,
    /// Where metrics go.
    pub metrics: &'a dyn MetricsSink,
    /// Where progress goes.
    pub progress: &'a dyn ProgressReporter,
    /// Polled between optimizer steps.
    pub cancel: CancelToken,
}

/// How the loop ended.
pub struct LoopOutcome {
    /// The trained model.
    pub model: CausalLm,
    /// Optimizer steps completed.
    pub steps: u64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// The step a resumed attempt started from, if it resumed.
    pub resumed_from: Option<u64>,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
    /// Held-out metrics of the final model (empty without an eval split).
    pub final_eval: Vec<(String, f64)>,
}

impl LoopOutcome {
    /// The held-out metric `key` of the final model, if it was measured.
    pub(crate) fn final_metric(&self, key: &str) -> Option<f64> {
        self.final_eval
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }
}

/// The order of `units` in `epoch`: a `ChaCha8` shuffle from `seed`, stream `epoch`.
pub(crate) fn epoch_order(units: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    let mut order: Vec<usize> = (0..units).collect();
    order.shuffle(&mut rng);
    order
}

/// Where a run starts: from scratch, or from the newest checkpoint of its folder.
struct Start {
    model: CausalLm,
    /// Optimizer steps already done.
    step: u64,
    last_loss: f64,
    resumed_from: Option<u64>,
    last_checkpoint: Option<PathBuf>,
}

/// Loads the newest checkpoint of `s.checkpoint_dir`, if there is one, into `model` and
/// `s.optimizer`; a checkpoint with another fingerprint is refused.
fn resume(model: CausalLm, s: &mut LoopSettings<'_>) -> Result<Start, TrainError> {
    let last_checkpoint = latest_checkpoint(&s.checkpoint_dir)?;
    let Some(dir) = &last_checkpoint else {
        return Ok(Start {
            model,
            step: 0,
            last_loss: f64::NAN,
            resumed_from: None,
            last_checkpoint,
        });
    };
    let loaded = load_checkpoint(dir, model, &s.device)?;
    if loaded.state.fingerprint != s.fingerprint {
        return Err(TrainError::Checkpoint {
            path: dir.clone(),
            message: "was written by a step with another configuration or other inputs; \
                      remove the checkpoints folder to start over"
                .into(),
        });
    }
    s.optimizer.set_states(loaded.moments);
    let step = loaded.state.step;
    tracing::info!(step, checkpoint = %dir.display(), "resuming from checkpoint");
    Ok(Start {
        model: loaded.module,
        step,
        last_loss: loaded.state.last_loss,
        resumed_from: Some(step),
        last_checkpoint,
    })
}

/// What one optimizer step measured.
#[derive(Clone, Copy)]
struct StepStats {
    loss: f64,
    lr: f64,
    grad_norm: f64,
    tokens: usize,
    seconds: f64,
}

/// Optimizer step `step + 1` on the units `chosen`: the device RNG re-seeded, the gradients of
/// its micro-batches summed, clipped, and applied at the schedule's learning rate.
fn optimizer_step<O: Objective>(
    s: &mut LoopSettings<'_>,
    objective: &mut O,
    model: CausalLm,
    chosen: &[&O::Unit],
    step: u64,
    last_checkpoint: Option<&PathBuf>,
) -> Result<(CausalLm, StepStats), TrainError> {
    let denominator: f64 = chosen.iter().map(|u| objective.weight(u)).sum();
    let lr = s.schedule.lr_for_step(step + 1);
    s.device
        .seed(s.seed.wrapping_mul(1_000_003).wrapping_add(step));

    let started = Instant::now();
    let mut accumulator = GradientsAccumulator::<CausalLm>::new();
    let mut loss = 0.0;
    let mut tokens = 0;
    for (micro_index, micro) in chosen.chunks(s.batch_size).enumerate() {
        let output = objective.micro_batch(&model, micro, denominator.max(1.0))?;
        let value = f64::from(output.loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(not_finite(
                "loss",
                value,
                step + 1,
                micro_index,
                last_checkpoint.cloned(),
            ));
        }
        loss += value;
        tokens += output.tokens;
        let grads = GradientsParams::from_grads(output.loss.backward(), &model);
        accumulator.accumulate(&model, grads);
    }
    let mut grads = accumulator.grads();
    let grad_norm = if s.max_grad_norm > 0.0 {
        clip_grad_norm(&model, &mut grads, s.max_grad_norm)
    } else {
        global_grad_norm(&model, &grads)
    };
    if !grad_norm.is_finite() {
        return Err(not_finite(
            "gradient norm",
            grad_norm,
            step + 1,
            0,
            last_checkpoint.cloned(),
        ));
    }
    let model = s.optimizer.step(model, &mut grads, lr);
    let stats = StepStats {
        loss,
        lr,
        grad_norm,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, stats))
}

/// Records the metrics of step `step` (the objective's own too) and moves the progress on.
fn record_step<O: Objective>(
    s: &LoopSettings<'_>,
    objective: &mut O,
    step: u64,
    steps_per_epoch: u64,
    stats: &StepStats,
) {
    let StepStats {
        loss,
        lr,
        grad_norm,
        tokens,
        seconds,
    } = *stats;
    s.metrics.record(metrics::LOSS, step, loss);
    s.metrics.record(metrics::LR, step, lr);
    s.metrics.record(metrics::GRAD_NORM, step, grad_norm);
    s.metrics.record(
        metrics::TOKENS_PER_SECOND,
        step,
        tokens as f64 / seconds.max(1e-9),
    );
    s.metrics
        .record(metrics::EPOCH, step, step as f64 / steps_per_epoch as f64);
    for (key, value) in objective.take_step_metrics() {
        s.metrics.record(key, step, value);
    }
    s.progress.set_position(step);
    tracing::debug!(step, loss, lr, grad_norm, tokens, seconds, "optimizer step");
}

/// The units of optimizer step `step + 1`: its slice of its epoch's shuffled order. `order` holds
/// the epoch whose order it has, recomputed when the epoch changes.
fn step_units<'u, U>(
    units: &'u [U],
    order: &mut (Option<u64>, Vec<usize>),
    seed: u64,
    step: u64,
    steps_per_epoch: u64,
    per_step: usize,
) -> Vec<&'u U> {
    let epoch = step / steps_per_epoch;
    let in_epoch = usize::try_from(step % steps_per_epoch)
        .expect("below steps_per_epoch, which was computed from a usize");
    if order.0 != Some(epoch) {
        *order = (Some(epoch), epoch_order(units.len(), seed, epoch));
    }
    order.1[in_epoch * per_step..((in_epoch + 1) * per_step).min(units.len())]
        .iter()
        .map(|i| &units[*i])
        .collect()
}

/// Runs (or resumes) training of `model` on `units`.
pub fn train<O: Objective>(
    model: CausalLm,
    units: &[O::Unit],
    objective: &mut O,
    mut s: LoopSettings<'_>,
) -> Result<LoopOutcome, TrainError> {
    if units.is_empty() {
        return Err(TrainError::Config(
            "the training split has no usable rows".into(),
        ));
    }
    let per_step = s.batch_size * s.grad_accum;
    let steps_per_epoch = units.len().div_ceil(per_step) as u64;
    let Start {
        mut model,
        mut step,
        mut last_loss,
        resumed_from,
        mut last_checkpoint,
    } = resume(model, &mut s)?;

    s.progress.start_phase("train", Some(s.total_steps));
    s.progress.set_position(step);
    let mut final_eval = Vec::new();
    if step == 0 {
        final_eval = record_eval(objective, &model, 0, s.metrics)?;
    }
    let mut order = (None, Vec::new());
    while step < s.total_steps {
        if s.cancel.is_cancelled() {
            let checkpoint = save(&s, &model, step, steps_per_epoch, last_loss)?;
            return Err(TrainError::Cancelled {
                step,
                checkpoint: Some(checkpoint),
            });
        }
        let chosen = step_units(units, &mut order, s.seed, step, steps_per_epoch, per_step);
        let (trained, stats) = optimizer_step(
            &mut s,
            objective,
            model,
            &chosen,
            step,
            last_checkpoint.as_ref(),
        )?;
        model = trained;
        step += 1;
        last_loss = stats.loss;
        record_step(&s, objective, step, steps_per_epoch, &stats);

        let eval_due = s.eval_every.is_some_and(|every| step.is_multiple_of(every));
        if eval_due || step == s.total_steps {
            final_eval = record_eval(objective, &model, step, s.metrics)?;
        }
        let checkpoint_due = s
            .checkpoint_every
            .is_some_and(|every| step.is_multiple_of(every));
        if checkpoint_due || step == s.total_steps {
            last_checkpoint = Some(save(&s, &model, step, steps_per_epoch, last_loss)?);
        }
    }
    if final_eval.is_empty() && resumed_from == Some(s.total_steps) {
        // Killed after the last step but before the outputs were written.
        final_eval = record_eval(objective, &model, step, s.metrics)?;
    }
    let checkpoint = match last_checkpoint {
        Some(path) => path,
        None => save(&s, &model, step, steps_per_epoch, last_loss)?,
    };
    Ok(LoopOutcome {
        model,
        steps: step,
        final_loss: last_loss,
        resumed_from,
        checkpoint,
        final_eval,
    })
}

fn record_eval<O: Objective>(
    objective: &mut O,
    model: &CausalLm,
    step: u64,
    sink: &dyn MetricsSink,
) -> Result<Vec<(String, f64)>, TrainError> {
    let values = objective.evaluate(model)?;
    for (key, value) in &values {
        sink.record(key, step, *value);
    }
    Ok(values)
}

fn save(
    s: &LoopSettings<'_>,
    model: &CausalLm,
    step: u64,
    steps_per_epoch: u64,
    last_loss: f64,
) -> Result<PathBuf, TrainError> {
    let state = TrainerState {
        format_version: CHECKPOINT_FORMAT_VERSION,
        step,
        total_steps: s.total_steps,
        epoch: step / steps_per_epoch,
        step_in_epoch: step % steps_per_epoch,
        rng: RngState {
            seed: s.seed,
            stream: step / steps_per_epoch,
        },
        schedule: s.schedule,
        fingerprint: s.fingerprint.clone(),
        precision: s.precision.clone(),
        last_loss,
    };
    save_checkpoint(
        &s.checkpoint_dir,
        model,
        s.optimizer.states(),
        &state,
        s.keep_checkpoints,
    )
}

fn not_finite(
    what: &'static str,
    value: f64,
    step: u64,
    micro_batch: usize,
    last_checkpoint: Option<PathBuf>,
) -> TrainError {
    TrainError::NotFinite {
        what,
        value,
        step,
        micro_batch,
        last_checkpoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let a = epoch_order(50, 3, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(50, 3, 0));
        assert_ne!(a, epoch_order(50, 3, 1));
        assert_ne!(a, epoch_order(50, 4, 0));
    }
}
