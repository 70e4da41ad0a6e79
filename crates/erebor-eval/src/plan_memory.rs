//! The memory check `erebor plan` (and `erebor run`, before anything starts) makes for an `eval`
//! step whose model config can be read before the run: the weights in the evaluation dtype, the
//! logits of a batch (erebor-model's [`estimate_memory`] with [`Trainable::Nothing`]), and the
//! key/value cache and one layer's working set for that batch
//! ([`inference_working_set`]), against the device's memory with 10% headroom.

use crate::kind::EvalStepConfig;
use erebor_model::memory::budget::{HEADROOM, device_budget};
use erebor_model::memory::inference_working_set;
use erebor_model::{MemoryPlan, ModelConfig, Trainable, estimate_memory};
use std::path::Path;

/// Tokens per sequence when `max_length` is not set: the model's context, capped like a
/// training step's default.
const DEFAULT_SEQ_LEN: usize = 2048;

/// The estimate of one step, in bytes, with the budget it is checked against.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalMemoryCheck {
    /// The `plan` note.
    pub line: String,
    /// Bytes the estimate needs.
    pub needed: u64,
    /// Bytes of the device, and where the figure comes from.
    pub budget: (f64, String),
    /// Whether it fits with the headroom.
    pub fits: bool,
}

/// The check of `config` for the model config in `model_dir`; `None` when it cannot be read
/// (an upstream step's output, a GGUF file) or the dtype is not one erebor knows.
pub fn memory_check(config: &EvalStepConfig, model_dir: &Path) -> Option<EvalMemoryCheck> {
    let model = ModelConfig::from_dir(model_dir).ok()?;
    let dtype = match &config.dtype {
        Some(name) => erebor_model::device::parse_dtype(name).ok()?,
        None => config.device.default_dtype(),
    };
    let bytes = dtype.size();
    let settings = config.settings();
    let seq_len = settings
        .max_length
        .unwrap_or_else(|| model.max_position_embeddings.min(DEFAULT_SEQ_LEN));
    let plan = MemoryPlan {
        weight_bytes: bytes,
        compute_bytes: bytes,
        master_bytes: bytes,
        optimizer_bytes: 0,
        trainable: Trainable::Nothing,
        batch_size: settings.batch_size,
        seq_len,
        gradient_checkpointing: false,
    };
    let estimate = estimate_memory(&model, &plan);
    let working = inference_working_set(&model, settings.batch_size, seq_len, bytes);
    let needed = estimate.total() + working;
    let (budget, source) = device_budget(config.device);
    let fits = needed as f64 <= HEADROOM * budget;
    let gb = |b: u64| b as f64 / 1e9;
    let line = format!(
        "memory (evaluation, {:.2}B params in {dtype:?}, batch {} x {seq_len} tokens): weights {:.1} \
         + logits {:.1} + kv cache and one layer {:.1} = {:.1} GB; {} {source}",
        model.num_parameters() as f64 / 1e9,
        settings.batch_size,
        gb(estimate.weights),
        gb(estimate.logits),
        gb(working),
        gb(needed),
        if fits { "fits" } else { "does NOT fit" },
    );
    Some(EvalMemoryCheck {
        line,
        needed,
        budget: (budget, source),
        fits,
    })
}

/// Why `plan` and `run` refuse the step: the memory it needs against the memory it sees.
pub fn memory_refusal(config: &EvalStepConfig, model_dir: &Path) -> Option<String> {
    let check = memory_check(config, model_dir).filter(|c| !c.fits)?;
    let (bytes, source) = &check.budget;
    Some(format!(
        "needs {:.1} GB of memory, sees {source} ({:.1} GB usable with 10% headroom) on {}: \
         cannot evaluate {} here (lower batch_size or max_length, or pick a narrower dtype)",
        check.needed as f64 / 1e9,
        HEADROOM * bytes / 1e9,
        config.device,
        config.model,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A 7B Llama's config (Llama-2-7b-hf's dimensions) in a temporary folder.
    fn llama_7b() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "tie_word_embeddings": false
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        dir
    }

    fn config(with: &serde_json::Value) -> EvalStepConfig {
        EvalStepConfig::parse(with).unwrap()
    }

    #[test]
    fn a_7b_in_bf16_needs_its_weights_and_the_kv_cache_of_its_batch() {
        let dir = llama_7b();
        let with = json!({"model": "m", "tasks": ["arc_challenge"], "data_dir": "d", "dtype": "bf16",
            "batch_size": 4, "max_length": 1024});
        let check = memory_check(&config(&with), dir.path()).unwrap();
        // 6.74B parameters x 2 bytes; the KV cache alone is 32 layers x 4096 tokens x 2 x 4096
        // x 2 bytes = 2.1 GB.
        let weights = 6_738_415_616u64 * 2;
        let kv = 32 * 4 * 1024 * 2 * 4096 * 2;
        let logits = 4 * 1024 * 32000 * (2 + 4);
        assert!(check.needed > weights + kv + logits, "{check:?}");
        assert!(
            check.needed < weights + kv + logits + 2_000_000_000,
            "{check:?}"
        );
        assert!(
            check.line.contains("6.74B params in BF16"),
            "{}",
            check.line
        );
        assert!(
            check.line.contains("batch 4 x 1024 tokens"),
            "{}",
            check.line
        );
    }

    #[test]
    fn the_refusal_names_the_memory_needed_and_seen_and_a_missing_config_has_none() {
        let dir = llama_7b();
        // f32 on the CPU, 512 sequences of 4096 tokens: the KV cache alone is
        // 32·512·4096·2·4096·4 bytes = 2.2 TB, beyond any machine's RAM.
        let big = json!({"model": "m", "tasks": ["arc_challenge"], "data_dir": "d",
            "batch_size": 512, "max_length": 4096});
        let why = memory_refusal(&config(&big), dir.path()).unwrap();
        assert!(
            why.starts_with("needs ") && why.contains("GB of memory, sees "),
            "{why}"
        );
        assert!(why.contains("cannot evaluate m here"), "{why}");
        let missing = dir.path().join("not-there");
        let small = json!({"model": "m", "tasks": ["arc_challenge"], "data_dir": "d"});
        assert_eq!(memory_refusal(&config(&small), &missing), None);
    }
}
