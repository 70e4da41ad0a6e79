//! The `with:` blocks of the `sft` and `preference` steps as written: one serde struct per kind,
//! each with `deny_unknown_fields`, so a key of the other kind (`beta` in an `sft` step) fails to
//! parse and `erebor validate` points at it.
//!
//! serde's `flatten` does not combine with `deny_unknown_fields`, so the fields both kinds share
//! are written once, in `with_shared_fields!`, and repeated into each struct by the macro.

use super::{LoraSettings, ModelInit};
use crate::losses::PreferenceLossKind;
use crate::precision::PrecisionSetting;
use crate::schedule::LrDecay;
use erebor_core::ConfigError;
use erebor_core::config::PathSegment;
use erebor_model::DeviceSpec;
use serde::Deserialize;

/// Calls `$callback!` with its arguments followed by the fields both training kinds share, so
/// the list is written once.
macro_rules! with_shared_fields {
    ($callback:ident! { $($args:tt)* }) => {
        $callback! {
            { $($args)* }
            /// Hugging Face checkpoint folder to start from (config.json, tokenizer, weights
            /// unless `init: random`).
            model: String,
            /// Where the starting weights come from.
            #[serde(default)]
            init: ModelInit,
            /// Converted dataset folder (the `dataset` output of a `convert` step).
            dataset: String,
            /// Split to train on.
            #[serde(default = "default_split")]
            split: String,
            /// Held-out split evaluated at the end (and every `eval_every` steps).
            #[serde(default)]
            eval_split: Option<String>,
            /// Evaluate the held-out split every this many optimizer steps.
            #[serde(default)]
            eval_every: Option<u64>,
            /// `cpu`, `tch-cpu` or `cuda:N`; any other spelling fails to parse, so
            /// `erebor validate` points at it.
            #[serde(default)]
            device: DeviceSpec,
            /// Precision policy: `auto` (f32 on CPU, bf16 compute with f32 master weights on
            /// CUDA), `f32`, `bf16-mixed`, `bf16`.
            #[serde(default)]
            precision: PrecisionSetting,
            /// Longest sequence (prompt + completion); defaults to the model's context, at most
            /// 2048.
            #[serde(default)]
            max_seq_len: Option<usize>,
            /// Passes over the data (ignored when `max_steps` is set).
            #[serde(default)]
            epochs: Option<u64>,
            /// Optimizer steps to run; overrides `epochs`.
            #[serde(default)]
            max_steps: Option<u64>,
            /// Examples (SFT), packed rows (SFT with packing) or pairs (preference) per
            /// micro-batch.
            #[serde(default = "default_batch_size")]
            batch_size: usize,
            /// Micro-batches per optimizer step.
            #[serde(default = "default_one")]
            grad_accum: usize,
            /// Peak learning rate.
            lr: f64,
            /// Decay after warmup.
            #[serde(default)]
            lr_schedule: LrDecay,
            /// Warmup in optimizer steps.
            #[serde(default)]
            warmup_steps: Option<u64>,
            /// Warmup as a fraction of all steps (used when `warmup_steps` is not given).
            #[serde(default)]
            warmup_ratio: Option<f64>,
            /// `AdamW` decoupled weight decay.
            #[serde(default)]
            weight_decay: f64,
            /// `AdamW` β1.
            #[serde(default = "default_beta1")]
            adam_beta1: f64,
            /// `AdamW` β2.
            #[serde(default = "default_beta2")]
            adam_beta2: f64,
            /// `AdamW` ε.
            #[serde(default = "default_eps")]
            adam_eps: f64,
            /// Clip the global gradient norm to this; 0 turns clipping off.
            #[serde(default = "default_max_grad_norm")]
            max_grad_norm: f64,
            /// Seed of the data order (and of the weights with `init: random`).
            #[serde(default)]
            seed: u64,
            /// Checkpoint every this many optimizer steps (and always at the end and on
            /// cancel).
            #[serde(default)]
            checkpoint_every: Option<u64>,
            /// Checkpoints kept on disk.
            #[serde(default = "default_keep")]
            keep_checkpoints: usize,
            /// Train LoRA adapters instead of all weights.
            #[serde(default)]
            lora: Option<LoraSettings>,
            /// Recompute activations in the backward pass to save memory.
            #[serde(default)]
            gradient_checkpointing: bool,
            /// Memory available for the estimate in `plan`, in GB (default: 80 on CUDA, the
            /// machine's RAM on CPU).
            #[serde(default)]
            memory_budget_gb: Option<f64>,
        }
    };
}

/// Defines the struct of the shared fields alone.
macro_rules! shared_wire {
    (
        { $(#[$meta:meta])* $name:ident }
        $($(#[$fmeta:meta])* $field:ident: $ty:ty,)*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
        }
    };
}

/// Defines a kind's struct: the shared fields, then the kind's own, and `split` to take them
/// apart again (the shared part as [`SharedWire`], the kind's fields as a tuple in order).
macro_rules! kind_wire {
    (
        { $(#[$meta:meta])* $name:ident { $($(#[$kmeta:meta])* $kfield:ident: $kty:ty,)* } }
        $($(#[$fmeta:meta])* $field:ident: $ty:ty,)*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            $($(#[$kmeta])* pub $kfield: $kty,)*
        }

        impl $name {
            /// The shared fields, and the kind's own in declaration order.
            pub(crate) fn split(self) -> (SharedWire, ($($kty,)*)) {
                (SharedWire { $($field: self.$field,)* }, ($(self.$kfield,)*))
            }
        }
    };
}

with_shared_fields!(shared_wire! {
    /// The fields of a training step's `with:` block that both kinds take, as written.
    SharedWire
});

with_shared_fields!(kind_wire! {
    /// The `with:` block of an `sft` step as written; converted into
    /// [`SftConfig`](super::SftConfig) with `TryFrom`.
    SftWire {
        /// Pack several examples per sequence.
        #[serde(default)]
        packing: bool,
    }
});

with_shared_fields!(kind_wire! {
    /// The `with:` block of a `preference` step as written; converted into
    /// [`PreferenceConfig`](super::PreferenceConfig) with `TryFrom`, which requires the
    /// objective.
    PreferenceWire {
        /// `dpop`, `dpo`, `ipo` or `slic` (required).
        #[serde(default)]
        loss: Option<PreferenceLossKind>,
        /// β (required).
        #[serde(default)]
        beta: Option<f64>,
        /// DPOP's λ (default 50; only with `loss: dpop`).
        #[serde(default)]
        lambda: Option<f64>,
        /// The reference model folder (default: `model`, the starting weights).
        #[serde(default)]
        reference: Option<String>,
        /// Longest prompt kept when a pair is too long (default half of `max_seq_len`).
        #[serde(default)]
        max_prompt_len: Option<usize>,
    }
});

/// The keys only a `preference` step takes, with why an `sft` step refuses them.
pub(crate) const PREFERENCE_ONLY: (&[&str], &str) = (
    &["loss", "beta", "lambda", "reference", "max_prompt_len"],
    "belongs to `preference` steps, not `sft`",
);

/// The keys only an `sft` step takes, with why a `preference` step refuses them.
pub(crate) const SFT_ONLY: (&[&str], &str) = (
    &["packing"],
    "applies to `sft` steps only: pairs are scored one sequence per row",
);

/// Says why a key of the other kind is refused, instead of serde's list of the accepted keys:
/// `deny_unknown_fields` refuses it, this only words the error.
pub(crate) fn other_kind_key(error: ConfigError, (keys, why): (&[&str], &str)) -> ConfigError {
    let other_kinds = !error.expected_keys.is_empty()
        && error.path.len() == 1
        && matches!(&error.path[0], PathSegment::Key(key) if keys.contains(&key.as_str()));
    if other_kinds {
        ConfigError::at(error.path, why)
    } else {
        error
    }
}

fn default_split() -> String {
    "train".into()
}
fn default_batch_size() -> usize {
    8
}
fn default_one() -> usize {
    1
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_max_grad_norm() -> f64 {
    1.0
}
fn default_keep() -> usize {
    2
}
