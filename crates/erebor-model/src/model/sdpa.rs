//! Attention through torch's `scaled_dot_product_attention` (SDPA) on LibTorch devices, in
//! inference and under Burn's autodiff (the `tch` build).
//!
//! Burn runs LibTorch's fused kernel only for plain causal attention on a plain (non-autodiff)
//! device: under `Autodiff<LibTorch>` it composes attention from matmuls and a softmax and keeps
//! every `[batch, heads, query, key]` score matrix for backward, and with an additive bias
//! (padding, KV cache, sliding window, packed segments) burn-tch falls back to the same
//! composition. Here every layout goes to SDPA:
//!
//! - Plain causal attention (no cache, padding, window or segments) passes `is_causal`, the
//!   cheapest kernel; anything else a boolean mask `[batch, 1, query, key]` in torch's polarity
//!   (`true` = attend, the opposite of Burn's masks), built from the same
//!   [`AttentionLayout::allowed`] the composed path turns into its additive bias.
//! - A query with no key to attend to (a padding position of a left-padded row) attends to
//!   itself: some SDPA kernels return NaN for a fully masked row, and that position's output is
//!   ignored anyway (the composed path gives it a uniform average instead).
//! - Under autodiff the op is one node of Burn's graph. Forward runs SDPA under torch's autograd
//!   on detached leaves of q, k and v and keeps torch's graph (SDPA saves what its kernel's
//!   backward needs, like `PyTorch` eager: the flash kernels' log-sum-exp, not the scores);
//!   backward runs torch autograd over that graph. The node is compute-bound, so Burn's
//!   balanced gradient checkpointing keeps it instead of recomputing it.

// burn 0.22 marks burn-tch (and `TchTensor::tensor`, the only way to its torch tensor)
// deprecated in favour of CubeCL; erebor keeps LibTorch on purpose (see `device.rs`).
#![allow(deprecated)]

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, LibTorch};
use burn::tensor::{GradientCheckpointingStrategy, Tensor};

use super::attention::AttentionLayout;

/// Attention of `q` `[batch, heads, new, head_dim]` over `k`, `v` `[batch, heads, past + new,
/// head_dim]` (kv heads already repeated) with the default scale `1/√head_dim`, through torch's
/// SDPA when the tensors live on LibTorch (plain or autodiff, either checkpoint strategy);
/// `None` on any other backend, where the caller composes attention from Burn's ops.
pub(super) fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    layout: &AttentionLayout,
    window: Option<usize>,
) -> Option<Tensor<4>> {
    match q.gradient_checkpointing_strategy() {
        None => {
            let plain = |t: &Tensor<4>| t.clone().try_into_primitive::<LibTorch>().ok();
            let (q, k, v) = (plain(q)?, plain(k)?, plain(v)?);
            let mask = Mask::new(layout, window);
            let out = tch::no_grad(|| mask.sdpa(&q.tensor, &k.tensor, &v.tensor));
            Some(Tensor::from_primitive::<LibTorch>(TchTensor::new(out)))
        }
        Some(GradientCheckpointingStrategy::Disabled) => {
            on_autodiff::<NoCheckpointing>(q, k, v, layout, window)
        }
        Some(GradientCheckpointingStrategy::Balanced) => {
            on_autodiff::<BalancedCheckpointing>(q, k, v, layout, window)
        }
    }
}

/// [`attention`] on `Autodiff<LibTorch, C>`; `None` when the tensors live elsewhere.
fn on_autodiff<C: CheckpointStrategy>(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    layout: &AttentionLayout,
    window: Option<usize>,
) -> Option<Tensor<4>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<LibTorch, C>>,
{
    let tracked = |t: &Tensor<4>| t.clone().try_into_primitive::<Autodiff<LibTorch, C>>().ok();
    let (q, k, v) = (tracked(q)?, tracked(k)?, tracked(v)?);
    let mask = Mask::new(layout, window);
    let out = tracked_sdpa::<C>(q, k, v, &mask);
    Some(Tensor::from_primitive::<Autodiff<LibTorch, C>>(out))
}

/// Which keys each query attends to, in the terms torch's SDPA takes.
enum Mask {
    /// `is_causal`: query `i` attends to keys `0..=i` (no cache, padding, window or segments).
    Causal,
    /// A boolean mask, `true` = attend, broadcast over the heads.
    Attend {
        /// `[batch, new, past + new]` row-major.
        allowed: Vec<bool>,
        /// `[batch, 1, new, past + new]`.
        dims: [i64; 4],
    },
}

impl Mask {
    /// The mask for `layout` with a sliding `window` (if any); a query with no allowed key is
    /// allowed its own position.
    fn new(layout: &AttentionLayout, window: Option<usize>) -> Self {
        if layout.is_plain_causal(window) {
            return Mask::Causal;
        }
        let total = layout.past_len + layout.new_len;
        let mut allowed = layout.allowed(window);
        for (row, keys) in allowed.chunks_mut(total.max(1)).enumerate() {
            if !keys.contains(&true) {
                keys[layout.past_len + row % layout.new_len] = true;
            }
        }
        Mask::Attend {
            allowed,
            dims: [layout.key_valid.len(), 1, layout.new_len, total].map(dim),
        }
    }

    /// torch's SDPA of `q`, `k`, `v` under this mask (no dropout, default scale, kv heads
    /// already repeated).
    fn sdpa(&self, q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor) -> tch::Tensor {
        match self {
            Mask::Causal => tch::Tensor::scaled_dot_product_attention(
                q,
                k,
                v,
                None::<tch::Tensor>,
                0.0,
                true,
                None::<f64>,
                false,
            ),
            Mask::Attend { allowed, dims } => {
                let mask = tch::Tensor::from_slice(allowed)
                    .view(*dims)
                    .to_device(q.device());
                tch::Tensor::scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    Some(mask),
                    0.0,
                    false,
                    None::<f64>,
                    false,
                )
            }
        }
    }
}

/// A tensor dimension as torch's `i64`.
fn dim(size: usize) -> i64 {
    i64::try_from(size).expect("a tensor dimension fits in i64")
}

/// The SDPA node on `Autodiff<LibTorch, C>`: forward under torch autograd when any input needs
/// a gradient, torch's graph kept for [`SdpaBackward`].
fn tracked_sdpa<C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<LibTorch, C>>,
    k: FloatTensor<Autodiff<LibTorch, C>>,
    v: FloatTensor<Autodiff<LibTorch, C>>,
    mask: &Mask,
) -> FloatTensor<Autodiff<LibTorch, C>> {
    match SdpaBackward
        .prepare::<C>([q.node(), k.node(), v.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let inputs = [q.into_primitive(), k.into_primitive(), v.into_primitive()];
            let leaves = inputs
                .each_ref()
                .map(|t| t.tensor.detach().set_requires_grad(true));
            let out = tch::with_grad(|| mask.sdpa(&leaves[0], &leaves[1], &leaves[2]));
            let result = TchTensor::new(out.detach());
            let [q, k, v] = inputs;
            let graph = TorchGraph {
                leaves,
                out,
                pinned: [q, k, v, result.clone()],
            };
            prep.finish(SavedGraph(Arc::new(Mutex::new(Some(graph)))), result)
        }
        OpsKind::UnTracked(prep) => {
            let out = tch::no_grad(|| {
                mask.sdpa(
                    &q.primitive().tensor,
                    &k.primitive().tensor,
                    &v.primitive().tensor,
                )
            });
            prep.finish(TchTensor::new(out))
        }
    }
}

/// torch's autograd graph of one SDPA call, from its leaves to its output.
struct TorchGraph {
    /// Detached q, k, v (sharing the inputs' storage) with `requires_grad`.
    leaves: [tch::Tensor; 3],
    /// SDPA's output, attached to the graph.
    out: tch::Tensor,
    /// Burn's handles on the inputs' and the output's storage, held so that no Burn op sees
    /// itself as their only owner and writes into them in place while torch's graph still
    /// reads them (torch would refuse the backward: a saved tensor was modified).
    #[allow(dead_code)] // held for its reference counts, never read
    pinned: [TchTensor; 4],
}

/// The op's state: torch's graph, taken by the one backward pass (a `tch::Tensor` is `Send`
/// but not `Clone`, and Burn's states must be both).
#[derive(Clone)]
struct SavedGraph(Arc<Mutex<Option<TorchGraph>>>);

impl fmt::Debug for SavedGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let graph = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match graph.as_ref() {
            Some(graph) => write!(f, "SavedGraph(out {:?})", graph.out.size()),
            None => write!(f, "SavedGraph(consumed)"),
        }
    }
}

/// Backward of the SDPA node: torch autograd from the output's gradient to q, k and v.
#[derive(Debug)]
struct SdpaBackward;

impl Backward<LibTorch, 3> for SdpaBackward {
    type State = SavedGraph;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let graph = ops
            .state
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("the SDPA node's backward runs once");
        // ∂(Σ out ⊙ grad)/∂x is the vector-Jacobian product grad·∂out/∂x that autograd computes
        // for an output gradient; tch's `run_backward` takes scalar roots only.
        let input_grads = tch::with_grad(|| {
            let root = (&graph.out * &grad.tensor).sum(tch::Kind::Float);
            tch::Tensor::run_backward(&[root], &graph.leaves, false, false)
        });
        drop(graph);
        for (parent, input_grad) in ops.parents.into_iter().zip(input_grads) {
            if let Some(node) = parent {
                grads.register::<LibTorch>(node.id, TchTensor::new(input_grad));
            }
        }
    }
}

#[cfg(test)]
#[path = "sdpa_tests.rs"]
mod tests;
