//! Target-token log-probs straight from the final hidden states and the LM head, a chunk of
//! positions at a time, with a handwritten backward that recomputes each chunk's logits.
//!
//! The composed path (`hidden · W` → f32 → log-softmax → gather) leaves Burn's autodiff graph
//! holding several `[tokens, vocab]` f32 tensors until backward: about 2.5 GB each at vocab
//! 151,936 and 8×512 tokens. Here the graph holds one node whose state is the hidden states
//! `[tokens, hidden]`, the head `[hidden, vocab]` (both alive anyway) and the targets; forward and
//! backward each materialise the logits of one chunk of at most
//! [`LOGPS_CHUNK_ELEMENTS`](erebor_model::memory::LOGPS_CHUNK_ELEMENTS) values.
//!
//! For the log-prob `l = log_softmax(h·W)[t]` of a position with upstream gradient `g`:
//!
//! ```text
//! G      = g · (onehot(t) − softmax(h·W))      [chunk, vocab], f32
//! ∂h     = G · Wᵀ                              in h's dtype (G cast to it, as the composed cast's backward does)
//! ∂W    += hᵀ · G                              accumulated over chunks, in W's dtype
//! ```
//!
//! Every chunk runs the same backend ops as the composed path (the backend's own matmul,
//! f32 cast and `log_softmax`), so the values agree with it to rounding; the op is only
//! registered with Burn's autodiff, its numerics are the inner backend's either way.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, Flex};
use burn::tensor::activation::log_softmax;
use burn::tensor::{
    DType, GradientCheckpointingStrategy, IndexingUpdateOp, Int, PrimitiveConversionError, Tensor,
};

/// Runs the op on the autodiff backend (LibTorch when built with `tch`, else Flex) the inputs
/// live on, for the checkpoint strategy type `$strategy` (Burn's conversion to
/// `Autodiff<B, C>` exists for each concrete strategy, not for a generic one).
macro_rules! route {
    ($inputs:expr, $strategy:ty) => {{
        let inputs: Inputs = $inputs;
        #[cfg(feature = "tch")]
        if let Some(out) = inputs.on_backend::<burn::backend::LibTorch, $strategy>() {
            return out;
        }
        match inputs.on_backend::<Flex, $strategy>() {
            Some(out) => out,
            None => panic!(
                "chunked target log-probs: no autodiff implementation for the backend of {:?}",
                inputs.hidden.device()
            ),
        }
    }};
}

/// Most logits (positions × vocab) one chunk materialises: 16 Mi values, 64 MiB in f32, so
/// a chunk is 110 positions at vocab 151,936 and the whole batch at a small vocabulary. The
/// memory estimate counts the same chunk.
#[cfg(test)]
pub(crate) const CHUNK_ELEMENTS: usize = erebor_model::memory::LOGPS_CHUNK_ELEMENTS;

/// Positions per chunk for a vocabulary of `vocab`.
pub(crate) fn chunk_positions(vocab: usize) -> usize {
    erebor_model::memory::logps_chunk_positions(vocab)
}

/// Log-prob of each target, `[tokens]` f32: `log_softmax(hidden · head)[target]` for hidden
/// states `[tokens, hidden]`, the head `[hidden, vocab]` and targets `[tokens]`. Differentiable
/// in `hidden` and `head` on an autodiff device without keeping any `[tokens, vocab]` tensor for
/// backward; on a plain device the chunks are computed and dropped one after the other.
///
/// # Panics
///
/// When the tensors live on an autodiff device of a backend this op is not built for (it is
/// built for Flex and, with the `tch` feature, LibTorch).
pub(crate) fn target_logps(
    hidden: Tensor<2>,
    head: Tensor<2>,
    targets: Tensor<1, Int>,
) -> Tensor<1> {
    let chunk = chunk_positions(head.dims()[1]);
    target_logps_in_chunks(hidden, head, targets, chunk)
}

/// [`target_logps`] with chunks of `chunk` positions (at least 1).
// burn 0.22 marks burn-tch deprecated in favour of CubeCL; erebor keeps LibTorch on purpose
// (erebor-model's device.rs says why).
#[cfg_attr(feature = "tch", allow(deprecated))]
pub(crate) fn target_logps_in_chunks(
    hidden: Tensor<2>,
    head: Tensor<2>,
    targets: Tensor<1, Int>,
    chunk: usize,
) -> Tensor<1> {
    let chunk = chunk.max(1);
    if hidden.dims()[0] == 0 {
        return Tensor::zeros([0], &hidden.device());
    }
    if !hidden.device().is_autodiff() && !head.device().is_autodiff() {
        return forward_chunks(&hidden, &head, &targets, chunk);
    }
    let strategy = hidden
        .device()
        .gradient_checkpointing_strategy()
        .or_else(|| head.device().gradient_checkpointing_strategy())
        .unwrap_or_default();
    let inputs = Inputs {
        hidden,
        head,
        targets,
        chunk,
    };
    match strategy {
        GradientCheckpointingStrategy::Disabled => route!(inputs, NoCheckpointing),
        GradientCheckpointingStrategy::Balanced => route!(inputs, BalancedCheckpointing),
    }
}

struct Inputs {
    hidden: Tensor<2>,
    head: Tensor<2>,
    targets: Tensor<1, Int>,
    chunk: usize,
}

impl Inputs {
    /// Runs the op on `Autodiff<B, C>` when the tensors live there, else `None`.
    fn on_backend<B, C>(&self) -> Option<Tensor<1>>
    where
        B: Backend,
        C: CheckpointStrategy,
        DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, C>>,
    {
        let hidden = to_autodiff::<B, C>(&self.hidden).ok()?;
        let head = to_autodiff::<B, C>(&self.head).ok()?;
        let targets = self
            .targets
            .clone()
            .try_into_primitive::<Autodiff<B, C>>()
            .unwrap_or_else(|error| {
                panic!("targets are not on the hidden states' backend: {error:?}")
            });
        let out = tracked_logps::<B, C>(hidden, head, targets, self.chunk);
        Some(Tensor::from_primitive::<Autodiff<B, C>>(out))
    }
}

fn to_autodiff<B, C>(
    tensor: &Tensor<2>,
) -> Result<FloatTensor<Autodiff<B, C>>, PrimitiveConversionError>
where
    B: Backend,
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<B, C>>,
{
    tensor.clone().try_into_primitive::<Autodiff<B, C>>()
}

/// What backward needs: the op's inputs (no logits).
#[derive(Clone, Debug)]
struct SavedInputs<B: Backend> {
    hidden: FloatTensor<B>,
    head: FloatTensor<B>,
    targets: IntTensor<B>,
    chunk: usize,
}

#[derive(Debug)]
struct ChunkedLogpsBackward;

impl<B> Backward<B, 2> for ChunkedLogpsBackward
where
    B: Backend,
    DispatchTensor: DispatchKindConversion<B>,
{
    type State = SavedInputs<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [hidden_node, head_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let saved = ops.state;
        let (grad_hidden, grad_head) = backward_chunks(
            &plain::<B, 2>(saved.hidden),
            &plain::<B, 2>(saved.head),
            &Tensor::<1, Int>::from_primitive::<B>(saved.targets),
            &plain::<B, 1>(grad),
            saved.chunk,
        );
        if let Some(node) = hidden_node {
            grads.register::<B>(node.id, primitive::<B, 2>(grad_hidden));
        }
        if let Some(node) = head_node {
            grads.register::<B>(node.id, primitive::<B, 2>(grad_head));
        }
    }
}

fn tracked_logps<B, C>(
    hidden: FloatTensor<Autodiff<B, C>>,
    head: FloatTensor<Autodiff<B, C>>,
    targets: IntTensor<B>,
    chunk: usize,
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<B>,
{
    let forward = |hidden: &FloatTensor<B>, head: &FloatTensor<B>, targets: &IntTensor<B>| {
        primitive::<B, 1>(forward_chunks(
            &plain::<B, 2>(hidden.clone()),
            &plain::<B, 2>(head.clone()),
            &Tensor::<1, Int>::from_primitive::<B>(targets.clone()),
            chunk,
        ))
    };
    match ChunkedLogpsBackward
        .prepare::<C>([hidden.node(), head.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let out = forward(hidden.primitive(), head.primitive(), &targets);
            let saved = SavedInputs {
                hidden: hidden.into_primitive(),
                head: head.into_primitive(),
                targets,
                chunk,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(hidden.primitive(), head.primitive(), &targets))
        }
    }
}

fn plain<B, const D: usize>(primitive: FloatTensor<B>) -> Tensor<D>
where
    B: Backend,
    DispatchTensor: DispatchKindConversion<B>,
{
    Tensor::from_primitive::<B>(primitive)
}

fn primitive<B, const D: usize>(tensor: Tensor<D>) -> FloatTensor<B>
where
    B: Backend,
    DispatchTensor: DispatchKindConversion<B>,
{
    tensor
        .try_into_primitive::<B>()
        .unwrap_or_else(|error| panic!("a tensor computed on a backend left it: {error:?}"))
}

/// `[rows, vocab]` f32 log-softmax of one chunk's logits, as the composed path computes them.
fn chunk_log_softmax(hidden: Tensor<2>, head: Tensor<2>) -> Tensor<2> {
    log_softmax(to_f32(hidden.matmul(head)), 1)
}

/// The forward on plain (or untracked) tensors, one chunk of positions at a time.
fn forward_chunks(
    hidden: &Tensor<2>,
    head: &Tensor<2>,
    targets: &Tensor<1, Int>,
    chunk: usize,
) -> Tensor<1> {
    let tokens = hidden.dims()[0];
    let parts: Vec<Tensor<1>> = (0..tokens)
        .step_by(chunk)
        .map(|start| {
            let len = chunk.min(tokens - start);
            chunk_log_softmax(hidden.clone().narrow(0, start, len), head.clone())
                .gather(1, targets.clone().narrow(0, start, len).unsqueeze_dim(1))
                .squeeze_dim(1)
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// Gradients `(∂hidden, ∂head)` of `Σ grad · logps`, recomputing each chunk's logits.
fn backward_chunks(
    hidden: &Tensor<2>,
    head: &Tensor<2>,
    targets: &Tensor<1, Int>,
    grad: &Tensor<1>,
    chunk: usize,
) -> (Tensor<2>, Tensor<2>) {
    let tokens = hidden.dims()[0];
    let head_t = head.clone().transpose();
    let mut grad_hidden = Vec::new();
    let mut grad_head: Option<Tensor<2>> = None;
    for start in (0..tokens).step_by(chunk) {
        let len = chunk.min(tokens - start);
        let h = hidden.clone().narrow(0, start, len);
        let g = grad.clone().narrow(0, start, len).unsqueeze_dim::<2>(1);
        let t = targets.clone().narrow(0, start, len).unsqueeze_dim::<2>(1);
        let probs = chunk_log_softmax(h.clone(), head.clone()).exp();
        // G = g·onehot(t) − g·softmax: the scatter adds g at each row's target.
        let logits_grad = probs
            .mul(g.clone().neg())
            .scatter(1, t, g, IndexingUpdateOp::Add);
        let logits_grad = if logits_grad.dtype() == hidden.dtype() {
            logits_grad
        } else {
            logits_grad.cast(hidden.dtype())
        };
        grad_hidden.push(logits_grad.clone().matmul(head_t.clone()));
        let part = h.transpose().matmul(logits_grad);
        // Summed in f32 across chunks and rounded once, as one matmul over all tokens would.
        grad_head = Some(match grad_head {
            Some(sum) => sum + to_f32(part),
            None => to_f32(part),
        });
    }
    let grad_head = grad_head.unwrap_or_else(|| to_f32(head.zeros_like()));
    let grad_head = if grad_head.dtype() == head.dtype() {
        grad_head
    } else {
        grad_head.cast(head.dtype())
    };
    (Tensor::cat(grad_hidden, 0), grad_head)
}

fn to_f32<const D: usize>(tensor: Tensor<D>) -> Tensor<D> {
    if tensor.dtype() == DType::F32 {
        tensor
    } else {
        tensor.cast(DType::F32)
    }
}

#[cfg(test)]
#[path = "chunked_logps_tests.rs"]
mod tests;
