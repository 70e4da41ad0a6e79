//! Log-probabilities of target tokens, computed in f32 whatever the compute dtype.

use crate::TrainError;
use crate::batch::TokenBatch;
use crate::chunked_logps::target_logps;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use erebor_model::CausalLm;

/// A [`TokenBatch`] on a device.
#[derive(Clone, Debug)]
pub struct BatchTensors {
    /// Input ids `[rows, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// Predicted ids `[rows, seq]`.
    pub targets: Tensor<2, Int>,
    /// 1.0 where the prediction is in the loss, `[rows, seq]`.
    pub mask: Tensor<2>,
}

impl BatchTensors {
    /// Copies `batch` to `device`.
    pub fn new(batch: &TokenBatch, device: &Device) -> Self {
        let shape = [batch.rows, batch.seq_len];
        let ints = |values: &[u32]| {
            let values: Vec<i64> = values.iter().map(|v| i64::from(*v)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(values, shape), device)
        };
        Self {
            input_ids: ints(&batch.input_ids),
            targets: ints(&batch.targets),
            mask: Tensor::from_data(TensorData::new(batch.loss_mask.clone(), shape), device),
        }
    }
}

/// Logits `[rows, seq, vocab]` of `model` for `batch`: plain causal attention, or for packed
/// rows the model's block-diagonal attention with positions restarting at each example.
/// Training and scoring use [`model_token_logps`], which never forms these logits whole.
pub fn forward_logits(
    model: &CausalLm,
    batch: &TokenBatch,
    tensors: &BatchTensors,
) -> Result<Tensor<3>, TrainError> {
    Ok(model.lm_head_forward(forward_hidden(model, batch, tensors)?))
}

/// Log-prob of each target of `batch` under `model`, `[rows, seq]` f32. When the LM head is
/// one matrix the log-probs come from the final hidden states a chunk of positions at a time
/// ([`crate::chunked_logps`]: no `[tokens, vocab]` tensor is kept for backward); a head with a
/// bias or a LoRA adapter goes through the full logits and [`token_logps`].
pub fn model_token_logps(
    model: &CausalLm,
    batch: &TokenBatch,
    tensors: &BatchTensors,
) -> Result<Tensor<2>, TrainError> {
    let hidden = forward_hidden(model, batch, tensors)?;
    let Some(head) = model.lm_head_matrix() else {
        return Ok(token_logps(
            model.lm_head_forward(hidden),
            tensors.targets.clone(),
        ));
    };
    let [rows, seq, width] = hidden.dims();
    let logps = target_logps(
        hidden.reshape([rows * seq, width]),
        head,
        tensors.targets.clone().reshape([rows * seq]),
    );
    Ok(logps.reshape([rows, seq]))
}

/// Final hidden states `[rows, seq, hidden]` of `model` for `batch` (see [`forward_logits`]).
pub fn forward_hidden(
    model: &CausalLm,
    batch: &TokenBatch,
    tensors: &BatchTensors,
) -> Result<Tensor<3>, TrainError> {
    match (&batch.position_ids, &batch.segment_ids) {
        (Some(positions), Some(segments)) => {
            let rows = |values: &[u32]| -> Vec<Vec<u32>> {
                values.chunks(batch.seq_len).map(<[u32]>::to_vec).collect()
            };
            let positions: Vec<Vec<usize>> = rows(positions)
                .into_iter()
                .map(|row| row.into_iter().map(|p| p as usize).collect())
                .collect();
            Ok(model.packed_hidden(tensors.input_ids.clone(), &positions, rows(segments)))
        }
        _ => Ok(model.causal_hidden(tensors.input_ids.clone())),
    }
}

/// The model the forward pass runs for bf16-mixed precision: every float parameter cast to
/// `dtype` through a differentiable cast, so the forward computes in bf16 while gradients flow
/// back, in f32, to the f32 master weights the optimizer updates. `None` (f32 or pure bf16
/// training) means the model runs as it is.
pub fn compute_view(model: &CausalLm, dtype: Option<DType>) -> Option<CausalLm> {
    let dtype = dtype?;
    Some(model.clone().map(&mut CastParams { dtype }))
}

struct CastParams {
    dtype: DType,
}

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.dtype;
        param.map(|tensor| {
            if tensor.dtype() == dtype {
                tensor
            } else {
                tensor.cast(dtype)
            }
        })
    }
}

/// Log-probability of each target under `logits`, `[rows, seq]`, from an f32 log-softmax.
pub fn token_logps(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let logits = if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(DType::F32)
    };
    log_softmax(logits, 2)
        .gather(2, targets.unsqueeze_dim(2))
        .squeeze_dim(2)
}

/// Sum of the masked token log-probs of each row, `[rows]`.
pub fn sequence_logps(token_logps: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    (token_logps * mask).sum_dim(1).squeeze_dim(1)
}

/// Reads a small f32 tensor back to the host, naming it in the error.
pub fn read_f32<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|error| TrainError::TensorRead {
            what: what.to_owned(),
            message: format!("{error:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_logps_are_the_log_softmax_at_the_target() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_floats([[[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]], &device);
        let targets = Tensor::<2, Int>::from_ints([[2, 0]], &device);
        let got = read_f32(token_logps(logits, targets), "test").unwrap();
        // log softmax([0,1,2])[2] = 2 − ln(1 + e + e²); uniform row: −ln 3.
        let first = 2.0 - (1.0 + 1f64.exp() + 2f64.exp()).ln();
        assert!((f64::from(got[0]) - first).abs() < 1e-6);
        assert!((f64::from(got[1]) + 3f64.ln()).abs() < 1e-6);
        let mask = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
        let summed = read_f32(
            sequence_logps(Tensor::from_floats([[-1.5, -2.0]], &device), mask),
            "test",
        )
        .unwrap();
        assert_eq!(summed, vec![-1.5]);
    }
}
