//! The memory a training step needs, estimated before it starts (shown by `erebor plan`).
//!
//! Counted: the weights the forward reads, master weights when they differ, gradients and AdamW
//! moments of the trained parameters, activations kept for the backward pass, and the f32 logits
//! with their log-softmax and gradient. Not counted: allocator slack and the framework's own
//! workspace, which is why a run is flagged at 90% of the budget. Activations per token and layer
//! follow the usual transformer accounting (inputs of every matmul, norm and activation):
//! `(6h + 2·kv + 4i)` elements, plus the attention probabilities `heads · seq` when the backend
//! materialises them; with gradient checkpointing only the layer inputs are kept, plus one layer
//! being recomputed.

use crate::config::LoraSettings;
use crate::precision::Precision;

/// The dimensions of a decoder-only model that matter for memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelShape {
    /// Total parameters.
    pub parameters: u64,
    /// Decoder layers.
    pub layers: u64,
    /// Hidden width.
    pub hidden: u64,
    /// MLP width.
    pub intermediate: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// Width of one head.
    pub head_dim: u64,
}

impl ModelShape {
    /// Parameters of LoRA adapters on `targets` of every layer.
    pub fn lora_parameters(&self, lora: &LoraSettings) -> u64 {
        let q = self.heads * self.head_dim;
        let kv = self.kv_heads * self.head_dim;
        let per_layer: u64 = lora
            .targets
            .iter()
            .map(|target| {
                let (d_in, d_out) = match target.as_str() {
                    "q_proj" => (self.hidden, q),
                    "k_proj" | "v_proj" => (self.hidden, kv),
                    "o_proj" => (q, self.hidden),
                    "gate_proj" | "up_proj" => (self.hidden, self.intermediate),
                    "down_proj" => (self.intermediate, self.hidden),
                    _ => (0, 0),
                };
                lora.rank as u64 * (d_in + d_out)
            })
            .sum();
        per_layer * self.layers
    }
}

/// What is being trained, and on what.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingFootprint {
    /// The model.
    pub shape: ModelShape,
    /// Precision policy.
    pub precision: Precision,
    /// LoRA settings, or full fine-tuning.
    pub lora: Option<LoraSettings>,
    /// Recompute activations in the backward pass.
    pub gradient_checkpointing: bool,
    /// Sequences per forward pass (2 × pairs for preference steps).
    pub rows: u64,
    /// Tokens per sequence.
    pub seq_len: u64,
    /// Whether attention probabilities are materialised (no fused attention kernel).
    pub materialised_attention: bool,
}

/// The estimate, in bytes, by part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Weights read by the forward pass.
    pub weights: f64,
    /// f32 master weights kept beside bf16 compute weights.
    pub master_weights: f64,
    /// Gradients of the trained parameters.
    pub gradients: f64,
    /// AdamW first and second moments.
    pub optimizer: f64,
    /// Activations kept for the backward pass.
    pub activations: f64,
    /// f32 logits, log-softmax and their gradient.
    pub logits: f64,
}

const GB: f64 = 1e9;

impl MemoryEstimate {
    /// Sum of the parts.
    pub fn total(&self) -> f64 {
        self.weights
            + self.master_weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.logits
    }

    /// Everything but activations and logits: what does not shrink with the batch.
    pub fn static_part(&self) -> f64 {
        self.weights + self.master_weights + self.gradients + self.optimizer
    }

    /// Whether the total fits `budget` bytes with 10% headroom.
    pub fn fits(&self, budget: f64) -> bool {
        self.total() <= 0.9 * budget
    }

    /// One line: the parts and the total, in GB (in MB when the total is under 1 GB).
    pub fn describe(&self) -> String {
        let (unit, name) = if self.total() < GB {
            (1e6, "MB")
        } else {
            (GB, "GB")
        };
        let mut parts = vec![format!("weights {:.1}", self.weights / unit)];
        if self.master_weights > 0.0 {
            parts.push(format!("f32 master {:.1}", self.master_weights / unit));
        }
        parts.push(format!("gradients {:.1}", self.gradients / unit));
        parts.push(format!("AdamW {:.1}", self.optimizer / unit));
        parts.push(format!("activations {:.1}", self.activations / unit));
        parts.push(format!("logits {:.1}", self.logits / unit));
        format!("{} = {:.1} {name}", parts.join(" + "), self.total() / unit)
    }
}

impl TrainingFootprint {
    /// Estimates the memory of one training step.
    pub fn estimate(&self) -> MemoryEstimate {
        let s = &self.shape;
        let p = self.precision;
        let params = s.parameters as f64;
        let trained = match &self.lora {
            Some(lora) => s.lora_parameters(lora) as f64,
            None => params,
        };
        let compute = p.compute_bytes();
        let (weights, master_weights) = match (&self.lora, p) {
            // Full fine-tuning with bf16 compute keeps an f32 master copy of everything.
            (None, Precision::Bf16Mixed) => (params * compute, params * 4.0),
            // LoRA: the frozen base in the compute dtype, the adapters in master precision.
            (Some(_), _) => (params * compute + trained * p.master_bytes(), 0.0),
            (None, _) => (params * p.master_bytes(), 0.0),
        };
        let gradients = trained * p.master_bytes();
        let optimizer = 2.0 * trained * p.moment_bytes();

        let tokens = (self.rows * self.seq_len) as f64;
        let kv = (s.kv_heads * s.head_dim) as f64;
        let (h, i) = (s.hidden as f64, s.intermediate as f64);
        let attention = if self.materialised_attention {
            (s.heads * self.seq_len) as f64
        } else {
            0.0
        };
        let per_token_layer = (6.0 * h + 2.0 * kv + 4.0 * i + attention) * compute;
        let layers = s.layers as f64;
        let activations = if self.gradient_checkpointing {
            tokens * (layers * h * compute + per_token_layer)
        } else {
            tokens * layers * per_token_layer
        };
        // Logits in the compute dtype, their f32 log-softmax, and the gradient of the logits.
        let logits = tokens * s.vocab as f64 * (compute + 4.0 + 4.0);
        MemoryEstimate {
            weights,
            master_weights,
            gradients,
            optimizer,
            activations,
            logits,
        }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
