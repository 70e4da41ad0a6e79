//! erebor-model: Llama-family causal language models in Burn, from Hugging Face checkpoints.
//!
//! - [`tokenizer`], [`chat`]: [`Tokenizer`] and [`ChatTemplate`], re-exported from erebor-text
//!   (which has no Burn, so data preparation builds without it).
//! - [`config`]: [`ModelConfig`] from a Hugging Face `config.json` (both `RoPE` spellings).
//! - [`model`]: [`CausalLm`], the Burn module (forward, KV cache, HF-style `RoPE`, GQA).
//! - [`scoring`]: per-token log-probs in f32 for training ([`scoring::sequence_logprobs`]) and
//!   evaluation ([`scoring::Scorer`], lm-eval `loglikelihood` semantics).
//! - [`generate`](mod@generate): KV-cache generation: greedy, temperature, top-p/top-k, stop strings, batched.
//! - [`batcher`]: continuous batching for serving ([`Batcher`]): requests join and leave a running
//!   decode batch, with `generate`'s sampling and stopping.
//! - [`lora`]: PEFT-style LoRA adapters: apply (base frozen), save, load, merge.
//! - [`memory`]: memory estimate of a run (weights, gradients, optimizer, activations, logits).
//! - [`weights`]: safetensors in/out, GGUF in, seeded random init.
//! - [`checkpoint`]: [`Checkpoint::load`] a folder or GGUF, [`save_pretrained`] to a folder.
//! - [`device`]: [`DeviceSpec`], `cpu` | `tch-cpu` | `cuda:N`.
//! - [`error`]: [`ModelError`], naming the file, tensor, field or template involved.
//!
//! # Who calls what
//!
//! **Data (erebor-data):** `Tokenizer::from_dir(dir)` or `Tokenizer::from_file(tokenizer_json)`;
//! `ChatTemplate::from_spec("checkpoint" | "chatml" | "llama-2" | "mistral" | "llama-3" | path,
//! &tokenizer)`, optionally `.with_system_prompt(..)`; `template.render(&messages,
//! add_generation_prompt)` for prompts, `template.render_with_assistant_spans(&messages)` for SFT
//! targets (byte ranges); then `tokenizer.encode(&text, false)` (ids + byte offsets) to map the
//! spans onto tokens. `tokenizer.eos()`, `bos()`, `pad_id_or_fallback()`, `stop_token_ids()`.
//!
//! **Training (erebor-train):**
//! - device: `training_device("cpu".parse::<DeviceSpec>()?.device()?, gradient_checkpointing)`.
//! - model: `Checkpoint::load(dir, &device, dtype)?.model` (a Burn `Module`: burn-optim's
//!   `AdamW` updates it with `GradientsParams::from_grads(loss.backward(), &model)`), or
//!   `CausalLm::random(&ModelConfig::from_dir(dir)?, seed, 0.02, &device, dtype)` from scratch.
//! - logits: `model.forward(ids: Tensor<2, Int>) -> Tensor<3>` `[batch, seq, vocab]` (right
//!   padding is safe).
//! - log-probs: `sequence_logprobs(logits, ids, target_mask) -> Tensor<1>` (f32 sums over the
//!   tokens where `target_mask` is 1, in input coordinates); `token_logprobs(logits, targets)`.
//! - LoRA: `lora::apply_lora(model, &LoraConfig { rank, alpha, dropout, target_modules }, seed)`,
//!   `lora::save_adapter`, `lora::load_adapter`, `lora::merge`.
//! - save: `save_pretrained(&model, dir, Some(&tokenizer), checkpoint.raw_config.as_ref(),
//!   &SaveOptions { dtype: SaveDType::F32, .. })` writes config.json, safetensors (HF names),
//!   tokenizer files and chat template.
//! - memory: `estimate_memory(&config, &MemoryPlan { .. })` (the one estimator; the
//!   precision and optimizer policy come in as bytes per element), `lora::adapter_parameter_count`.
//!
//! **Evaluation (erebor-eval):** `Scorer::new(&model, ScorerOptions::for_model(&model))
//! .loglikelihood(&[LoglikelihoodRequest { context, continuation }])` (lm-eval semantics;
//! `scoring::encode_pair` tokenises like lm-eval's `_encode_pair`); `generate(&model,
//! Some(&tokenizer), &prompts, &GenerationConfig { .. })` for MT-Bench answers.

/// The Burn version this crate is built on, for callers that build tensors or devices.
pub use burn;

pub use erebor_text::{chat, tokenizer};

pub mod batcher;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod lora;
pub mod memory;
pub mod model;
pub mod scoring;
pub mod weights;

pub use batcher::{BatchEvent, BatchRequest, Batcher, EventSink};
pub use chat::{ChatMessage, ChatTemplate, RenderedChat};
pub use checkpoint::{Checkpoint, SaveOptions, save_pretrained};
pub use config::{Architecture, DecoderDims, ModelConfig};
pub use device::{DeviceSpec, cuda_device_count, training_device};
pub use erebor_text::TextError;
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, GenerationConfig, generate};
pub use memory::{MemoryEstimate, MemoryPlan, Trainable, estimate_memory};
pub use model::{CausalLm, KvCache, TokenBatch};
pub use scoring::{
    LoglikelihoodRequest, LoglikelihoodResult, Scorer, ScorerOptions, sequence_logprobs,
    token_logprobs,
};
pub use tokenizer::{Encoding, SpecialToken, Tokenizer};
