//! Token and sequence log-probabilities for training, in f32 whatever the compute dtype.

use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Int, Tensor};

/// `log_softmax(logits)` gathered at `targets`, in f32: `[b, s, V] × [b, s] → [b, s]`.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let logits = if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(DType::F32)
    };
    let lp = log_softmax(logits, 2);
    lp.gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
}

/// Per-sequence sum of the log-probs of the tokens marked in `target_mask` (f32, `[b]`), each
/// token predicted from the logits one position earlier. `target_mask[:, 0]` is ignored (the
/// first token has no prediction).
///
/// # Panics
/// When the logits have fewer than two positions.
pub fn sequence_logprobs(
    logits: Tensor<3>,
    input_ids: Tensor<2, Int>,
    target_mask: Tensor<2>,
) -> Tensor<1> {
    let [b, s, v] = logits.dims();
    assert!(
        s >= 2,
        "sequence_logprobs needs at least two positions, got {s}"
    );
    let pred = logits.slice([0..b, 0..s - 1, 0..v]);
    let targets = input_ids.slice([0..b, 1..s]);
    let mask = target_mask.slice([0..b, 1..s]);
    let mask = if mask.dtype() == DType::F32 {
        mask
    } else {
        mask.cast(DType::F32)
    };
    (token_logprobs(pred, targets) * mask)
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}
