//! Supervised fine-tuning: token cross-entropy on every assistant turn.
//!
//! The loss of an optimizer step is the summed negative log-likelihood of all target tokens of
//! its micro-batches divided by the number of target tokens of the whole step, so a step's
//! gradient does not depend on how it is split into micro-batches (the normalisation TRL gets
//! with `average_tokens_across_devices`).

use crate::TrainError;
use crate::batch::{PackedRow, SftExample, TokenBatch, pack, packed_batch, prepare_sft, sft_batch};
use crate::logps::{BatchTensors, compute_view, model_token_logps, read_f32};
use crate::trainer::{MicroBatch, Objective};
use burn::module::Module;
use erebor_core::dataset::TokenisedSft;
use erebor_model::CausalLm;

/// The SFT objective over packed rows (a row holds one example unless packing is on).
pub(crate) struct SftObjective {
    /// Pack several examples per row.
    pub packing: bool,
    /// Held-out rows, evaluated as mean token loss.
    pub eval_rows: Vec<PackedRow>,
    /// Micro-batch size of evaluation.
    pub eval_batch_size: usize,
    /// Compute dtype of the forward pass under bf16-mixed precision (`None` otherwise).
    pub compute_dtype: Option<burn::tensor::DType>,
}

/// Turns tokenised rows into training units: truncated, then packed or one per row.
pub(crate) fn sft_units(
    rows: &[TokenisedSft],
    max_seq_len: usize,
    packing: bool,
) -> Result<(Vec<PackedRow>, usize), crate::batch::RowError> {
    let (examples, dropped) = prepare_sft(rows, max_seq_len)?;
    let units = if packing {
        pack(&examples, max_seq_len)
    } else {
        examples
            .into_iter()
            .map(|example: SftExample| PackedRow {
                examples: vec![example],
            })
            .collect()
    };
    Ok((units, dropped))
}

impl SftObjective {
    fn batch(&self, rows: &[&PackedRow]) -> TokenBatch {
        if self.packing {
            packed_batch(rows, 8)
        } else {
            let examples: Vec<&SftExample> = rows.iter().map(|r| &r.examples[0]).collect();
            sft_batch(&examples, 8)
        }
    }

    /// Summed negative log-likelihood of the targets of `rows`, `[1]`, and the batch.
    fn summed_nll(
        &self,
        model: &CausalLm,
        rows: &[&PackedRow],
    ) -> Result<(burn::tensor::Tensor<1>, TokenBatch), TrainError> {
        let batch = self.batch(rows);
        let tensors = BatchTensors::new(&batch, &model.device());
        let cast = compute_view(model, self.compute_dtype);
        let logps = model_token_logps(cast.as_ref().unwrap_or(model), &batch, &tensors)?;
        let nll = (logps * tensors.mask).sum().neg();
        Ok((nll, batch))
    }
}

impl Objective for SftObjective {
    type Unit = PackedRow;

    fn weight(&self, unit: &PackedRow) -> f64 {
        unit.target_count() as f64
    }

    fn micro_batch(
        &mut self,
        model: &CausalLm,
        units: &[&PackedRow],
        denominator: f64,
    ) -> Result<MicroBatch, TrainError> {
        let (nll, batch) = self.summed_nll(model, units)?;
        Ok(MicroBatch {
            loss: nll.div_scalar(denominator),
            tokens: batch.real_tokens,
        })
    }

    fn take_step_metrics(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    fn evaluate(&mut self, model: &CausalLm) -> Result<Vec<(String, f64)>, TrainError> {
        if self.eval_rows.is_empty() {
            return Ok(Vec::new());
        }
        let model = model.valid();
        let rows: Vec<&PackedRow> = self.eval_rows.iter().collect();
        let mut nll = 0.0;
        let mut targets = 0usize;
        for chunk in rows.chunks(self.eval_batch_size.max(1)) {
            let (sum, batch) = self.summed_nll(&model, chunk)?;
            nll += read_f32(sum, "evaluation loss")?
                .first()
                .copied()
                .map_or(0.0, f64::from);
            targets += batch.target_count();
        }
        let loss = nll / targets.max(1) as f64;
        Ok(vec![
            ("eval/loss".to_owned(), loss),
            ("eval/perplexity".to_owned(), loss.exp()),
        ])
    }
}
