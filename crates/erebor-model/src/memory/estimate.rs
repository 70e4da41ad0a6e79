//! The estimate: a run's [`MemoryPlan`] and its model's config in, a [`MemoryEstimate`] out,
//! from the parameter counts, the activations a decoder layer keeps and the logits.

use std::fmt;

use crate::config::ModelConfig;
use crate::device::DeviceSpec;

/// How a training forward computes attention, which decides what it keeps for backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainingAttention {
    /// Burn's attention composed from matmuls and a softmax (Flex, and any backend without a
    /// fused kernel under autodiff): every layer keeps its `[batch, heads, seq, seq]` scores and
    /// probabilities for backward.
    #[default]
    Composed,
    /// A fused kernel with its own backward (torch's `scaled_dot_product_attention` on LibTorch):
    /// it keeps q, k, v, its output and one log-sum-exp per query and head, never the scores.
    Fused,
}

impl TrainingAttention {
    /// The path training takes on `device`: fused on LibTorch (`tch-cpu`, `cuda:N`), composed on
    /// Burn's flex (`cpu`).
    pub fn on_device(device: DeviceSpec) -> Self {
        match device {
            DeviceSpec::Cpu => TrainingAttention::Composed,
            DeviceSpec::TchCpu | DeviceSpec::Cuda(_) => TrainingAttention::Fused,
        }
    }
}

impl fmt::Display for TrainingAttention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrainingAttention::Composed => "composed attention",
            TrainingAttention::Fused => "fused attention",
        })
    }
}

/// What the run trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainable {
    /// Inference only: no gradients, no optimizer, no saved activations.
    Nothing,
    /// Every parameter.
    Full,
    /// LoRA adapters of this many parameters (the base is frozen); see
    /// [`crate::lora::adapter_parameter_count`].
    Adapters(usize),
}

/// The shape of the run: bytes per element as the caller's precision and optimizer policy
/// chose them, and the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    /// Bytes per element of the weights the forward reads (4 for f32, 2 for bf16/f16).
    pub weight_bytes: usize,
    /// Bytes per activation element (the compute dtype).
    pub compute_bytes: usize,
    /// Bytes per element of the trained parameters as the optimizer updates them, and of their
    /// gradients. Full fine-tuning keeps a separate master copy when this is wider than
    /// `weight_bytes`; adapters are stored in it.
    pub master_bytes: usize,
    /// Bytes of optimizer state per trained parameter (`AdamW`'s two f32 moments: 8).
    pub optimizer_bytes: usize,
    /// What is trained.
    pub trainable: Trainable,
    /// Sequences per forward pass (a preference step's chosen and rejected rows both count).
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Gradient checkpointing.
    pub gradient_checkpointing: bool,
}

/// The estimate, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights the forward reads (with LoRA: the frozen base and the adapters).
    pub weights: u64,
    /// Master copy of fully trained weights kept beside narrower compute weights.
    pub master_weights: u64,
    /// Gradients of the trained parameters.
    pub gradients: u64,
    /// Optimizer state.
    pub optimizer: u64,
    /// Activations kept for the backward pass.
    pub activations: u64,
    /// Logits, their f32 copy and log-softmax.
    pub logits: u64,
    /// The attention path the activations assume (`None` for inference, which keeps none).
    pub attention: Option<TrainingAttention>,
}

impl MemoryEstimate {
    /// Sum of all parts.
    pub fn total(&self) -> u64 {
        self.static_part() + self.activations + self.logits
    }

    /// Weights, master weights, gradients and optimizer state: what does not shrink with the
    /// batch.
    pub fn static_part(&self) -> u64 {
        self.weights + self.master_weights + self.gradients + self.optimizer
    }

    /// Whether the total fits in `budget` bytes.
    pub fn fits(&self, budget: u64) -> bool {
        self.total() <= budget
    }
}

/// The parts and the total on one line, in GB (in MB when the total is under 1 GB); the master
/// weights only when there are any.
impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, name) = if self.total() < 1_000_000_000 {
            (1e6, "MB")
        } else {
            (1e9, "GB")
        };
        let show = |bytes: u64| format!("{:.1}", bytes as f64 / unit);
        write!(f, "weights {}", show(self.weights))?;
        if self.master_weights > 0 {
            write!(f, " + f32 master {}", show(self.master_weights))?;
        }
        write!(
            f,
            " + gradients {} + optimizer {} + activations {}",
            show(self.gradients),
            show(self.optimizer),
            show(self.activations),
        )?;
        if let Some(attention) = self.attention {
            write!(f, " ({attention})")?;
        }
        write!(
            f,
            " + logits {} = {} {name}",
            show(self.logits),
            show(self.total())
        )
    }
}

/// Most logits (positions × vocab) the training log-probs materialise at once: erebor-train
/// computes the target log-probs a chunk of positions at a time and recomputes the chunk's
/// logits in backward, so no `[tokens, vocab]` tensor lives through a step. 16 Mi values
/// (64 MiB in f32): 110 positions at vocab 151,936.
pub const LOGPS_CHUNK_ELEMENTS: usize = 16 << 20;

/// Positions per chunk of the training log-probs at a vocabulary of `vocab`: as many as keep
/// a chunk's logits within [`LOGPS_CHUNK_ELEMENTS`], at least one.
pub fn logps_chunk_positions(vocab: usize) -> usize {
    (LOGPS_CHUNK_ELEMENTS / vocab.max(1)).max(1)
}

/// Activation elements one decoder layer keeps per token for the backward pass, with attention
/// computed as `attention` says.
pub(crate) fn activations_per_token_layer(
    config: &ModelConfig,
    seq_len: usize,
    gradient_checkpointing: bool,
    attention: TrainingAttention,
) -> u64 {
    let h = config.hidden_size as u64;
    let q = (config.num_heads * config.head_dim) as u64;
    let kv = (config.num_kv_heads * config.head_dim) as u64;
    let i = config.intermediate_size as u64;
    // Per query: its row of scores and of probabilities, or, fused, one log-sum-exp per head.
    let scores = match attention {
        TrainingAttention::Composed => (config.num_heads * seq_len) as u64,
        TrainingAttention::Fused => 0,
    };
    let lse = match attention {
        TrainingAttention::Composed => 0,
        TrainingAttention::Fused => config.num_heads as u64,
    };
    if gradient_checkpointing {
        // Matrix-product outputs only: q, k, v, scores, attention output, o, gate, up, down.
        2 * h + 2 * q + 2 * kv + scores + lse + 2 * i
    } else {
        // Norm inputs and outputs, q/k/v before and after RoPE and repetition, scores and
        // probabilities, attention and o_proj inputs, gate/up/silu/product.
        4 * h + 5 * q + 3 * kv + 2 * scores + lse + 4 * i
    }
}

/// Estimates the memory of `plan` for `config`, training with composed attention (Burn's
/// flex; see [`estimate_memory_with`] for the path of another device).
pub fn estimate_memory(config: &ModelConfig, plan: &MemoryPlan) -> MemoryEstimate {
    estimate_memory_with(config, plan, TrainingAttention::Composed)
}

/// Estimates the memory of `plan` for `config`, training with attention computed as
/// `attention` says ([`TrainingAttention::on_device`]).
pub fn estimate_memory_with(
    config: &ModelConfig,
    plan: &MemoryPlan,
    attention: TrainingAttention,
) -> MemoryEstimate {
    let params = config.num_parameters() as u64;
    let (weight, master, optimizer) = (
        plan.weight_bytes as u64,
        plan.master_bytes as u64,
        plan.optimizer_bytes as u64,
    );
    let (trained, adapters) = match plan.trainable {
        Trainable::Nothing => (0, 0),
        Trainable::Full => (params, 0),
        Trainable::Adapters(n) => (n as u64, n as u64),
    };
    let master_weights = if plan.trainable == Trainable::Full && master > weight {
        params * master
    } else {
        0
    };
    let tokens = (plan.batch_size * plan.seq_len) as u64;
    let compute = plan.compute_bytes as u64;
    let vocab = config.vocab_size as u64;
    let (activations, logits) = if plan.trainable == Trainable::Nothing {
        // Logits in the compute dtype and their f32 log-softmax.
        (0, tokens * vocab * (compute + 4))
    } else {
        let per_token = activations_per_token_layer(
            config,
            plan.seq_len,
            plan.gradient_checkpointing,
            attention,
        );
        // Target log-probs a chunk of positions at a time, nothing `[tokens, vocab]` kept for
        // backward: at most one chunk's logits live, in the compute dtype, with three f32
        // tensors of their size (the f32 copy or shifted logits, exponentials, log-softmax; in
        // backward the probabilities and their gradient).
        let chunk = tokens.min(logps_chunk_positions(config.vocab_size) as u64);
        (
            config.num_layers as u64 * tokens * per_token * compute,
            chunk * vocab * (compute + 12),
        )
    };
    MemoryEstimate {
        weights: params * weight + adapters * master,
        master_weights,
        gradients: trained * master,
        optimizer: trained * optimizer,
        activations,
        logits,
        attention: (plan.trainable != Trainable::Nothing).then_some(attention),
    }
}

/// Bytes an inference pass of `batch_size` sequences of `seq_len` tokens needs beyond the
/// weights and logits of [`estimate_memory`] with [`Trainable::Nothing`]: the key/value cache of
/// every layer (generation keeps it; scoring holds each layer's keys and values the same way)
/// and the working set of one layer's forward (nothing is kept for a backward pass), in
/// `compute_bytes` per element.
pub fn inference_working_set(
    config: &ModelConfig,
    batch_size: usize,
    seq_len: usize,
    compute_bytes: usize,
) -> u64 {
    let tokens = (batch_size * seq_len) as u64;
    let kv = (config.num_kv_heads * config.head_dim) as u64;
    let kv_cache = config.num_layers as u64 * tokens * 2 * kv;
    let one_layer =
        tokens * activations_per_token_layer(config, seq_len, false, TrainingAttention::Composed);
    (kv_cache + one_layer) * compute_bytes as u64
}
