//! The memory a training or inference run of a model needs, estimated from its config alone,
//! so `erebor plan` (and a training step, before it loads anything) can flag a run that cannot
//! fit. This is erebor's one estimator: the model's facts live here (parameter and LoRA adapter
//! counts, the activations its forward keeps, the logits); the caller's precision and optimizer
//! policy come in as bytes per element in [`MemoryPlan`].
//!
//! Counted: weights in the dtype the forward reads, a separate master copy of fully trained
//! weights when they are updated in a wider dtype (f32 master weights under bf16 compute),
//! gradients (one per trained parameter, in the master dtype), optimizer state, activations
//! kept for the backward pass, and the logits with their f32 log-softmax (all of them for
//! inference; one chunk of positions in training, see [`LOGPS_CHUNK_ELEMENTS`]).
//!
//! Activations are the tensors the autodiff graph of [`crate::CausalLm::forward`] keeps per
//! layer and token: norm inputs and outputs, q/k/v before and after `RoPE` and head repetition,
//! attention scores and probabilities, the attention output, MLP gate/up/activation/product.
//! Which attention path training takes decides whether the score matrices are kept:
//! [`TrainingAttention::on_device`] says composed on Burn's flex (Burn's autodiff composes
//! attention from matmuls and a softmax) and fused on LibTorch (torch's SDPA with its own
//! backward keeps a log-sum-exp per query instead). With gradient checkpointing (Burn's balanced
//! strategy recomputes memory-bound operations) only the outputs of matrix products are kept.
//!
//! It is an estimate: allocator slack and temporary buffers come on top, which is why callers
//! keep headroom.

pub mod budget;
mod estimate;

pub use estimate::{
    LOGPS_CHUNK_ELEMENTS, MemoryEstimate, MemoryPlan, Trainable, TrainingAttention,
    estimate_memory, estimate_memory_with, inference_working_set, logps_chunk_positions,
};

#[cfg(test)]
mod tests;
