//! The decoder-only transformer shared by Llama, Mistral and Qwen2, as a Burn [`Module`](burn::module::Module).
//!
//! Forward entry points (all return logits `[batch, seq, vocab]` in the compute dtype):
//! - [`CausalLm::forward`]: token ids `[batch, seq]`, causal attention, positions `0..seq`. Right
//!   padding is harmless (real tokens never attend to later positions), so training batches
//!   padded on the right can use it directly. Works on autodiff devices.
//! - [`CausalLm::forward_batch`]: a [`TokenBatch`] with per-row padding masks and positions
//!   (left padding for generation), optionally extending a [`KvCache`].

mod attention;
mod build;
mod causal_lm;
mod export;
mod kv_cache;
mod layers;
mod rope;
#[cfg(feature = "tch")]
mod sdpa;
mod token_batch;

pub use attention::{Attention, AttentionPath, attention_path, with_attention_path};
pub use build::WeightSource;
pub(crate) use build::hf_tensor_names;
pub use causal_lm::{CausalLm, DecoderLayer};
pub use kv_cache::KvCache;
pub use layers::{Linear, LoraAdapter, Mlp, RmsNorm};
pub use token_batch::TokenBatch;
