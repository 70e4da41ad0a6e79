//! The memory estimate `erebor plan` shows under a training step, and the same check at run
//! time before anything is loaded.

use crate::config::{TrainConfig, TrainKind};
use crate::memory::{MemoryEstimate, ModelShape, TrainingFootprint};
use crate::precision::{Precision, is_cuda};
use erebor_model::ModelConfig;
use std::path::Path;

/// Default context used when `max_seq_len` is not set.
pub const DEFAULT_MAX_SEQ_LEN: usize = 2048;

/// The model's dimensions for the estimate.
pub fn shape_of(config: &ModelConfig) -> ModelShape {
    ModelShape {
        parameters: config.num_parameters() as u64,
        layers: config.num_layers as u64,
        hidden: config.hidden_size as u64,
        intermediate: config.intermediate_size as u64,
        vocab: config.vocab_size as u64,
        heads: config.num_heads as u64,
        kv_heads: config.num_kv_heads as u64,
        head_dim: config.head_dim as u64,
    }
}

/// Sequence length a step uses: `max_seq_len`, else the model's context capped at 2048.
pub fn effective_seq_len(config: &TrainConfig, model: &ModelConfig) -> usize {
    config
        .max_seq_len
        .unwrap_or_else(|| model.max_position_embeddings.min(DEFAULT_MAX_SEQ_LEN))
}

/// The footprint of one forward/backward pass of a step.
pub fn footprint(config: &TrainConfig, kind: TrainKind, model: &ModelConfig) -> TrainingFootprint {
    let precision = config
        .precision
        .resolve(&config.device)
        .unwrap_or(Precision::F32);
    let rows = match kind {
        TrainKind::Sft => config.batch_size,
        TrainKind::Preference => 2 * config.batch_size,
    };
    TrainingFootprint {
        shape: shape_of(model),
        precision,
        lora: config.lora.clone(),
        gradient_checkpointing: config.gradient_checkpointing,
        rows: rows as u64,
        seq_len: effective_seq_len(config, model) as u64,
        materialised_attention: !is_cuda(&config.device),
    }
}

/// The memory budget in bytes and where it comes from.
pub fn budget(config: &TrainConfig) -> (f64, String) {
    if let Some(gb) = config.memory_budget_gb {
        return (gb * 1e9, format!("the configured {gb} GB"));
    }
    if is_cuda(&config.device) {
        return (80e9, format!("80 GB of {}", config.device));
    }
    match total_ram() {
        Some(bytes) => (bytes, format!("{:.0} GB of RAM", bytes / 1e9)),
        None => (f64::INFINITY, "unknown RAM".into()),
    }
}

fn total_ram() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// The estimate and whether it fits, as `plan` lines.
pub fn memory_notes(config: &TrainConfig, kind: TrainKind, model_dir: &Path) -> Vec<String> {
    let model = match ModelConfig::from_dir(model_dir) {
        Ok(model) => model,
        Err(_) => {
            return vec![format!(
                "memory: estimated when the step starts (no model config at `{}` yet)",
                config.model
            )];
        }
    };
    let footprint = footprint(config, kind, &model);
    let estimate = footprint.estimate();
    let (bytes, source) = budget(config);
    vec![describe(&footprint, &estimate, bytes, &source)]
}

/// One line: mode, estimate, verdict (with advice when it does not fit).
pub fn describe(
    footprint: &TrainingFootprint,
    estimate: &MemoryEstimate,
    budget: f64,
    source: &str,
) -> String {
    let mode = match &footprint.lora {
        Some(lora) => format!("LoRA r={}", lora.rank),
        None => "full fine-tune".to_owned(),
    };
    let checkpointing = if footprint.gradient_checkpointing {
        ", gradient checkpointing"
    } else {
        ""
    };
    let parameters = footprint.shape.parameters as f64;
    let size = if parameters >= 1e9 {
        format!("{:.2}B", parameters / 1e9)
    } else {
        format!("{:.2}M", parameters / 1e6)
    };
    let head = format!(
        "memory ({size} params, {mode}, {}{checkpointing}, {} rows x {} tokens): {}",
        footprint.precision,
        footprint.rows,
        footprint.seq_len,
        estimate.describe()
    );
    if estimate.fits(budget) {
        format!("{head}; fits {source}")
    } else {
        let advice = if footprint.lora.is_none() {
            "use `lora:` with `gradient_checkpointing: true`, or a bigger device"
        } else if !footprint.gradient_checkpointing {
            "set `gradient_checkpointing: true` or lower batch_size / max_seq_len"
        } else {
            "lower batch_size / max_seq_len, or use a bigger device"
        };
        format!("{head}; does NOT fit {source} (with 10% headroom): {advice}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn llama2_7b(dir: &Path) {
        let config = json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
            "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "tie_word_embeddings": false
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    }

    #[test]
    fn plan_flags_a_7b_full_fine_tune_and_passes_lora() {
        let dir = tempfile::tempdir().unwrap();
        llama2_7b(dir.path());
        let with = json!({"model": "m", "dataset": "d", "lr": 1e-6, "loss": "dpop", "beta": 0.3,
                          "device": "cuda:0", "batch_size": 8, "max_seq_len": 512});
        let config = TrainConfig::parse(&with, TrainKind::Preference).unwrap();
        let notes = memory_notes(&config, TrainKind::Preference, dir.path());
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("6.74B params, full fine-tune, bf16-mixed"),
            "{}",
            notes[0]
        );
        assert!(
            notes[0].contains("does NOT fit 80 GB of cuda:0"),
            "{}",
            notes[0]
        );

        let mut with = with;
        with["lora"] = json!({"rank": 16});
        with["gradient_checkpointing"] = json!(true);
        let config = TrainConfig::parse(&with, TrainKind::Preference).unwrap();
        let notes = memory_notes(&config, TrainKind::Preference, dir.path());
        assert!(notes[0].contains("LoRA r=16"), "{}", notes[0]);
        assert!(notes[0].ends_with("fits 80 GB of cuda:0"), "{}", notes[0]);
    }

    #[test]
    fn a_model_made_by_an_earlier_step_is_estimated_at_run_time() {
        let with = json!({"model": "${{ steps.sft.outputs.model }}", "dataset": "d", "lr": 1e-4});
        let config = TrainConfig::parse(&with, TrainKind::Sft).unwrap();
        let notes = memory_notes(&config, TrainKind::Sft, Path::new("/no/such/model"));
        assert!(
            notes[0].starts_with("memory: estimated when the step starts"),
            "{}",
            notes[0]
        );
    }
}
