//! An estimate of the memory a training (or inference) run needs, from the config alone, so
//! `plan` can flag a run that cannot fit before it starts.
//!
//! Counted: weights in their storage dtype, an f32 master copy when weights are stored in half
//! precision, gradients (one per trainable parameter, in the master dtype), optimizer state
//! (AdamW: two f32 moments per trainable parameter), activations kept for the backward pass,
//! and the logits with their f32 log-softmax. Activations are the tensors the autodiff graph of
//! [`crate::CausalLm::forward`] keeps per layer and token (norm inputs, q/k/v after RoPE and
//! head repetition, attention scores and probabilities, MLP gate/up/product); with gradient
//! checkpointing (Burn's balanced strategy recomputes memory-bound operations) only the outputs
//! of matrix products are kept. It is an estimate: allocator overhead and temporary buffers
//! come on top.

use std::fmt;

use crate::config::ModelConfig;

/// What the run trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainable {
    /// Inference only: no gradients, no optimizer, no saved activations.
    Nothing,
    /// Every parameter.
    Full,
    /// LoRA adapters of this many parameters (the base is frozen).
    Adapters(usize),
}

/// The shape of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    /// Bytes per stored weight (4 for f32, 2 for bf16/f16).
    pub weight_bytes: usize,
    /// Bytes per activation element (the compute dtype).
    pub compute_bytes: usize,
    /// Keep an f32 master copy of trainable half-precision weights.
    pub master_weights_f32: bool,
    /// What is trained.
    pub trainable: Trainable,
    /// Sequences per step (per micro-batch).
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Gradient checkpointing per layer.
    pub gradient_checkpointing: bool,
}

/// The estimate, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Model weights as stored.
    pub weights: u64,
    /// f32 master weights.
    pub master_weights: u64,
    /// Gradients.
    pub gradients: u64,
    /// Optimizer state.
    pub optimizer: u64,
    /// Activations kept for backward.
    pub activations: u64,
    /// Logits and their f32 log-softmax.
    pub logits: u64,
}

impl MemoryEstimate {
    /// Sum of all parts.
    pub fn total(&self) -> u64 {
        self.weights
            + self.master_weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.logits
    }

    /// Whether the total fits in `budget` bytes.
    pub fn fits(&self, budget: u64) -> bool {
        self.total() <= budget
    }
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "weights {:.2} GiB, master weights {:.2} GiB, gradients {:.2} GiB, optimizer {:.2} GiB, \
             activations {:.2} GiB, logits {:.2} GiB; total {:.2} GiB",
            gib(self.weights),
            gib(self.master_weights),
            gib(self.gradients),
            gib(self.optimizer),
            gib(self.activations),
            gib(self.logits),
            gib(self.total())
        )
    }
}

/// Estimates the memory of `plan` for `config`.
pub fn estimate_memory(config: &ModelConfig, plan: &MemoryPlan) -> MemoryEstimate {
    let params = config.num_parameters() as u64;
    let trainable = match plan.trainable {
        Trainable::Nothing => 0,
        Trainable::Full => params,
        Trainable::Adapters(n) => n as u64,
    };
    let weights = params * plan.weight_bytes as u64
        + match plan.trainable {
            Trainable::Adapters(n) => n as u64 * 4,
            _ => 0,
        };
    let master =
        if plan.master_weights_f32 && plan.weight_bytes < 4 && plan.trainable == Trainable::Full {
            params * 4
        } else {
            0
        };
    let grad_bytes = if plan.master_weights_f32 {
        4
    } else {
        plan.weight_bytes as u64
    };
    let gradients = trainable * grad_bytes;
    let optimizer = trainable * 8;
    let tokens = (plan.batch_size * plan.seq_len) as u64;
    let (activations, logits) = if plan.trainable == Trainable::Nothing {
        let logits = tokens * config.vocab_size as u64 * (plan.compute_bytes as u64 + 4);
        (0, logits)
    } else {
        let h = config.hidden_size as u64;
        let q = (config.num_heads * config.head_dim) as u64;
        let kv = (config.num_kv_heads * config.head_dim) as u64;
        let i = config.intermediate_size as u64;
        let scores = config.num_heads as u64 * plan.seq_len as u64;
        let per_token = if plan.gradient_checkpointing {
            // Matrix-product outputs only: q, k, v, scores, attention output, o, gate, up, down.
            2 * h + 2 * q + 2 * kv + scores + 2 * i
        } else {
            // Norm inputs and outputs, q/k/v before and after RoPE and repetition, scores and
            // probabilities, attention and o_proj inputs, gate/up/silu/product.
            4 * h + 5 * q + 3 * kv + 2 * scores + 4 * i
        };
        let act = config.num_layers as u64 * tokens * per_token * plan.compute_bytes as u64;
        // Logits in the compute dtype, cast to f32, log-softmax in f32.
        let logits = tokens * config.vocab_size as u64 * (plan.compute_bytes as u64 + 8);
        (act, logits)
    };
    MemoryEstimate {
        weights,
        master_weights: master,
        gradients,
        optimizer,
        activations,
        logits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Architecture, RopeScaling};

    fn llama_7b() -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 32_000,
            hidden_size: 4096,
            intermediate_size: 11_008,
            num_layers: 32,
            num_heads: 32,
            num_kv_heads: 32,
            head_dim: 128,
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::None,
            tie_word_embeddings: false,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            sliding_window: None,
            sliding_window_from_layer: 0,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
        }
    }

    #[test]
    fn llama_2_7b_has_its_published_parameter_count() {
        // Llama-2-7b: 6,738,415,616 parameters.
        assert_eq!(llama_7b().num_parameters(), 6_738_415_616);
    }

    #[test]
    fn full_fine_tune_of_7b_with_f32_master_weights_does_not_fit_80_gb() {
        let plan = MemoryPlan {
            weight_bytes: 2,
            compute_bytes: 2,
            master_weights_f32: true,
            trainable: Trainable::Full,
            batch_size: 1,
            seq_len: 1024,
            gradient_checkpointing: true,
        };
        let e = estimate_memory(&llama_7b(), &plan);
        // 2 + 4 (master) + 4 (grads) + 8 (AdamW) bytes per parameter = 18 × 6.74e9 ≈ 121 GB.
        assert_eq!(
            e.weights + e.master_weights + e.gradients + e.optimizer,
            18 * 6_738_415_616
        );
        assert!(!e.fits(80_000_000_000), "{e}");
        let lora = MemoryPlan {
            trainable: Trainable::Adapters(4_194_304),
            master_weights_f32: false,
            ..plan
        };
        assert!(estimate_memory(&llama_7b(), &lora).fits(80_000_000_000));
    }

    #[test]
    fn checkpointing_keeps_fewer_activations() {
        let plan = MemoryPlan {
            weight_bytes: 4,
            compute_bytes: 4,
            master_weights_f32: false,
            trainable: Trainable::Full,
            batch_size: 8,
            seq_len: 512,
            gradient_checkpointing: false,
        };
        let full = estimate_memory(&llama_7b(), &plan);
        let ckpt = estimate_memory(
            &llama_7b(),
            &MemoryPlan {
                gradient_checkpointing: true,
                ..plan
            },
        );
        assert!(ckpt.activations < full.activations);
        assert_eq!(ckpt.logits, full.logits);
    }
}
