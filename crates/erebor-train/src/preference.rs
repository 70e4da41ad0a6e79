//! Preference optimisation: each micro-batch scores the chosen and the rejected completions of
//! its pairs in one forward pass and applies the configured loss against the reference
//! log-probs computed before training.

use crate::TrainError;
use crate::batch::{PairExample, TokenBatch, pair_batch};
use crate::logps::{BatchTensors, compute_view, model_token_logps, read_f32, sequence_logps};
use crate::losses::{PairLogps, PreferenceObjective};
use crate::metrics::{PairStats, PairValues, eval_key};
use crate::trainer::{MicroBatch, Objective};
use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};
use erebor_core::ProgressReporter;
use erebor_model::CausalLm;

/// Metric: mean per-token log-prob of the chosen answer from its first token that differs from
/// the rejected one (the DPOP paper's measure of the failure mode), on held-out pairs.
/// Pairs with no chosen token after the edit (the chosen answer a prefix of the rejected one, or
/// the edit truncated away) have no such mean and are left out of it.
pub const CHOSEN_AFTER_EDIT: &str = "eval/logps/chosen_after_edit";

/// Metric: how many held-out pairs [`CHOSEN_AFTER_EDIT`] left out (no chosen token after the
/// edit).
pub const CHOSEN_AFTER_EDIT_SKIPPED: &str = "eval/logps/chosen_after_edit_skipped";

/// A training pair with its reference log-probs.
#[derive(Clone, Debug, PartialEq)]
pub struct PairUnit {
    /// The truncated pair.
    pub pair: PairExample,
    /// `log π_ref(y_w | x)`.
    pub reference_chosen: f32,
    /// `log π_ref(y_l | x)`.
    pub reference_rejected: f32,
}

impl PairUnit {
    /// Index in the chosen completion of the first token that differs from the rejected one
    /// (the shorter length when one is a prefix of the other).
    pub(crate) fn edit_start(&self) -> usize {
        let (c, r) = (&self.pair.chosen_ids, &self.pair.rejected_ids);
        c.iter()
            .zip(r)
            .position(|(a, b)| a != b)
            .unwrap_or(c.len().min(r.len()))
    }
}

/// Summed completion log-probs of pairs: chosen rows first, then rejected, `[2 × pairs]`.
fn score(
    model: &CausalLm,
    pairs: &[&PairExample],
    compute: Option<DType>,
) -> Result<(Tensor<1>, Tensor<2>, TokenBatch, BatchTensors), TrainError> {
    let batch = pair_batch(pairs, 8);
    let tensors = BatchTensors::new(&batch, &model.device());
    let cast = compute_view(model, compute);
    let tokens = model_token_logps(cast.as_ref().unwrap_or(model), &batch, &tensors)?;
    let sums = sequence_logps(tokens.clone(), tensors.mask.clone());
    Ok((sums, tokens, batch, tensors))
}

/// Reference log-probs `(chosen, rejected)` of every pair, scored by `model` through exactly the
/// code path and dtype of the policy's training forward: on the same (autodiff) device, never
/// calling backward. Burn's autodiff decorator computes some ops differently from the plain
/// backend (measured: about 1e-6 nats per sequence on flex), and DPOP's λ = 50 would turn that
/// into a non-zero penalty at step 0; scored this way, policy = reference gives DPO loss ln 2
/// and a penalty of exactly 0.
///
/// The model is scored as a frozen copy (parameters untracked): the same autodiff ops and
/// numbers, but no graph is recorded. A tracked forward that is never backpropagated keeps its
/// saved activations alive in Burn's autodiff graph until a later backward, so a pre-pass over
/// a whole dataset used to hold every batch's activations at once (measured on an H200: a
/// Qwen2-0.5B DPOP run ran out of 139 GiB; see BENCHMARKS.md).
pub fn reference_logps(
    model: &CausalLm,
    pairs: &[PairExample],
    batch_size: usize,
    compute: Option<DType>,
    progress: &dyn ProgressReporter,
) -> Result<Vec<(f32, f32)>, TrainError> {
    let frozen = model.clone().freeze();
    let model = &frozen;
    let refs: Vec<&PairExample> = pairs.iter().collect();
    progress.start_phase("ref_logps", Some(pairs.len() as u64));
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in refs.chunks(batch_size.max(1)) {
        let (sums, ..) = score(model, chunk, compute)?;
        let values = read_f32(sums, "reference log-probs")?;
        let n = chunk.len();
        out.extend((0..n).map(|i| (values[i], values[n + i])));
        progress.set_position(out.len() as u64);
        release_untracked_graphs(&model.device());
    }
    Ok(out)
}

/// Frees what Burn's autodiff still holds of forwards that were never backpropagated.
///
/// Burn registers untracked operations in its autodiff graph too and frees graphs only when a
/// backward runs. A frozen forward on the training device (the reference pre-pass, held-out
/// preference metrics) is such a forward: on LibTorch with fused attention each batch's
/// activations stayed allocated until the first training step, about 0.3 GB more per batch of
/// 16 × 256 tokens on `tiny10m` (`bench_train_step`'s `reference_pass_peak_bytes`: 0.74 GB
/// after 2 batches, 2.55 GB after 8), so a pre-pass over a real dataset would run out of memory.
/// A backward of a one-element tensor makes Burn drop every graph no live tensor refers to. No
/// effect on a device without autodiff.
fn release_untracked_graphs(device: &Device) {
    if device.is_autodiff() {
        let _ = Tensor::<1>::zeros([1], device)
            .require_grad()
            .sum()
            .backward();
    }
}

/// The preference objective.
pub struct PairObjective {
    /// Loss and hyper-parameters.
    pub objective: PreferenceObjective,
    /// Held-out pairs.
    pub eval_units: Vec<PairUnit>,
    /// Micro-batch size of evaluation.
    pub eval_batch_size: usize,
    /// Compute dtype of the forward pass under bf16-mixed precision (`None` otherwise).
    pub compute_dtype: Option<DType>,
    stats: PairStats,
}

impl PairObjective {
    /// An objective with empty statistics.
    pub fn new(
        objective: PreferenceObjective,
        eval_units: Vec<PairUnit>,
        eval_batch_size: usize,
    ) -> Self {
        Self {
            objective,
            eval_units,
            eval_batch_size,
            compute_dtype: None,
            stats: PairStats::default(),
        }
    }

    /// Loss and per-pair values of a micro-batch.
    fn pairs_loss(
        &self,
        model: &CausalLm,
        units: &[&PairUnit],
    ) -> Result<(Tensor<1>, PairValues, Tensor<2>, TokenBatch), TrainError> {
        let device = model.device();
        let pairs: Vec<&PairExample> = units.iter().map(|u| &u.pair).collect();
        let (sums, tokens, batch, _) = score(model, &pairs, self.compute_dtype)?;
        let n = units.len();
        let constant =
            |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
        // Per-sequence divisors: 1, or the completion's token count for a loss that normalises
        // by length (IPO, as TRL); the statistics then report the values the loss saw, as TRL's.
        let normalise = self.objective.kind.normalises_by_length();
        let divisor = |len: usize| if normalise { len.max(1) as f32 } else { 1.0 };
        let chosen_div: Vec<f32> = units
            .iter()
            .map(|u| divisor(u.pair.chosen_ids.len()))
            .collect();
        let rejected_div: Vec<f32> = units
            .iter()
            .map(|u| divisor(u.pair.rejected_ids.len()))
            .collect();
        let mut policy_sums = sums;
        if normalise {
            let all: Vec<f32> = chosen_div.iter().chain(&rejected_div).copied().collect();
            let divisors = Tensor::<1>::from_data(TensorData::new(all, [2 * n]), &device);
            policy_sums = policy_sums / divisors;
        }
        let reference_chosen: Vec<f32> = units
            .iter()
            .zip(&chosen_div)
            .map(|(u, d)| u.reference_chosen / d)
            .collect();
        let reference_rejected: Vec<f32> = units
            .iter()
            .zip(&rejected_div)
            .map(|(u, d)| u.reference_rejected / d)
            .collect();
        let logps = PairLogps {
            policy_chosen: policy_sums.clone().narrow(0, 0, n),
            policy_rejected: policy_sums.clone().narrow(0, n, n),
            reference_chosen: constant(reference_chosen.clone()),
            reference_rejected: constant(reference_rejected.clone()),
        };
        let output = self.objective.loss(&logps);
        let sums_host = read_f32(policy_sums.detach(), "policy log-probs")?;
        let values = PairValues {
            loss: read_f32(output.per_pair.clone().detach(), "per-pair losses")?,
            policy_chosen: sums_host[..n].to_vec(),
            policy_rejected: sums_host[n..].to_vec(),
            reference_chosen,
            reference_rejected,
            penalty: read_f32(output.penalty, "DPOP penalties")?,
        };
        Ok((output.per_pair.sum(), values, tokens, batch))
    }
}

impl Objective for PairObjective {
    type Unit = PairUnit;

    fn weight(&self, _unit: &PairUnit) -> f64 {
        1.0
    }

    fn micro_batch(
        &mut self,
        model: &CausalLm,
        units: &[&PairUnit],
        denominator: f64,
    ) -> Result<MicroBatch, TrainError> {
        let (loss, values, _, batch) = self.pairs_loss(model, units)?;
        self.stats.add(&values, self.objective.beta);
        Ok(MicroBatch {
            loss: loss.div_scalar(denominator),
            tokens: batch.real_tokens,
        })
    }

    fn take_step_metrics(&mut self) -> Vec<(&'static str, f64)> {
        let stats = std::mem::take(&mut self.stats);
        stats
            .means()
            .into_iter()
            .filter(|(key, _)| *key != crate::metrics::LOSS)
            .collect()
    }

    fn evaluate(&mut self, model: &CausalLm) -> Result<Vec<(String, f64)>, TrainError> {
        if self.eval_units.is_empty() {
            return Ok(Vec::new());
        }
        // The training device and forward, like the reference pre-pass (held-out rewards compare
        // the two), but with dropout off, LoRA's included: a frozen copy (parameters untracked,
        // training flags cleared), as SFT's evaluation turns it off with `valid()`.
        let frozen = model.clone().freeze();
        let model = &frozen;
        let mut stats = PairStats::default();
        let mut after_edit = AfterEdit::default();
        let units: Vec<&PairUnit> = self.eval_units.iter().collect();
        for chunk in units.chunks(self.eval_batch_size.max(1)) {
            let (_, values, tokens, batch) = self.pairs_loss(model, chunk)?;
            stats.add(&values, self.objective.beta);
            after_edit.add(chunk, &tokens.detach(), &batch, &model.device())?;
            release_untracked_graphs(&model.device());
        }
        let mut out: Vec<(String, f64)> = stats
            .means()
            .into_iter()
            .map(|(k, v)| (eval_key(k), v))
            .collect();
        if after_edit.counted > 0 {
            out.push((
                CHOSEN_AFTER_EDIT.to_owned(),
                after_edit.sum / after_edit.counted as f64,
            ));
        }
        out.push((
            CHOSEN_AFTER_EDIT_SKIPPED.to_owned(),
            after_edit.skipped as f64,
        ));
        Ok(out)
    }
}

/// The running sum of per-pair means of the chosen completion's token log-probs from its first
/// edited token on, over the pairs that have such tokens, and the count of those that do not.
#[derive(Default)]
struct AfterEdit {
    sum: f64,
    counted: usize,
    skipped: usize,
}

impl AfterEdit {
    /// Adds a chunk's pairs; `tokens` are the chunk's token log-probs (chosen rows first).
    fn add(
        &mut self,
        units: &[&PairUnit],
        tokens: &Tensor<2>,
        batch: &TokenBatch,
        device: &Device,
    ) -> Result<(), TrainError> {
        let n = units.len();
        let mut mask = vec![0f32; n * batch.seq_len];
        let mut counts = Vec::with_capacity(n);
        for (row, unit) in units.iter().enumerate() {
            let first = unit.pair.prompt_ids.len() + unit.edit_start();
            let end = unit.pair.prompt_ids.len() + unit.pair.chosen_ids.len();
            // Position t predicts token t + 1.
            for t in first.saturating_sub(1)..end.saturating_sub(1) {
                mask[row * batch.seq_len + t] = 1.0;
            }
            counts.push(end.saturating_sub(first));
        }
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, batch.seq_len]), device);
        let chosen_rows = tokens.clone().narrow(0, 0, n);
        let sums = read_f32(
            sequence_logps(chosen_rows, mask),
            "chosen log-probs after the edit",
        )?;
        for (sum, count) in sums.iter().zip(counts) {
            if count == 0 {
                self.skipped += 1;
            } else {
                self.sum += f64::from(*sum) / count as f64;
                self.counted += 1;
            }
        }
        Ok(())
    }
}
