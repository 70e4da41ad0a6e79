//! erebor-train: supervised fine-tuning and preference optimisation (DPOP, DPO, IPO, `SLiC`).
//!
//! The step kinds [`TrainStepKind::SFT`] (`uses: sft`) and [`TrainStepKind::PREFERENCE`]
//! (`uses: preference`) are the entry points; everything else is the machinery behind them, usable on its own.
//!
//! Objectives and numerics
//! - [`losses`]: the preference losses as functions of summed completion log-probs.
//! - [`logps`]: f32 log-probs of target tokens and per-sequence sums.
//! - [`sft`]: token cross-entropy over assistant turns, normalised over the accumulated batch.
//! - [`preference`]: pair scoring, the reference pre-pass, held-out preference metrics.
//! - [`optim`]: `AdamW` with `PyTorch` semantics and global-norm gradient clipping.
//! - [`schedule`]: warmup + constant/linear/cosine learning-rate schedules.
//! - [`precision`]: the precision policy (f32 on CPU; bf16 on CUDA).
//!
//! Data and state
//! - [`batch`]: truncation, padding and packing of tokenised rows into batches.
//! - [`ref_logps`]: reference log-probs computed once, cached under a file lock, shared by arms.
//! - [`checkpoint`]: atomic checkpoints (weights, optimizer, data position, RNG) and resume.
//! - [`tensor_io`]: f32 safetensors files.
//! - [`metrics`]: metric keys and preference statistics (TRL's names).
//!
//! Running a step
//! - [`config`]: the `with:` block of the `sft` and `preference` steps.
//! - [`trainer`]: the optimizer-step loop shared by both kinds (accumulation, clipping, resume).
//! - [`setup`]: device, precision, starting model, tokenizer check, fingerprint, saving.
//! - [`memory_plan`]: the memory estimate `erebor plan` shows (erebor-model's estimator under the
//!   training policy) and the run-time check.
//! - [`kinds`], [`run_sft`], [`run_preference`], [`run_common`]: the step kinds.
//! - [`error`]: [`TrainError`], mapped onto the engine's failure classes.

pub mod batch;
pub mod checkpoint;
pub mod chunked_logps;
pub mod config;
pub mod error;
pub mod kinds;
pub mod logps;
pub mod losses;
pub mod memory_plan;
pub mod metrics;
pub mod optim;
pub mod precision;
pub mod preference;
pub mod ref_logps;
pub mod run_common;
pub mod run_preference;
pub mod run_sft;
pub mod schedule;
pub mod setup;
pub mod sft;
pub mod tensor_io;
pub mod trainer;

pub use error::TrainError;
pub use kinds::TrainStepKind;
