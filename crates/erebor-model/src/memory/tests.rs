use super::estimate::activations_per_token_layer;
use super::*;
use crate::config::{Architecture, DecoderDims, ModelConfig};
use crate::lora::{LoraConfig, adapter_parameter_count};

/// Llama-2-7B: hidden 4096, MLP 11008, 32 layers, 32 heads, vocab 32000, untied head.
fn llama_7b() -> ModelConfig {
    let dims = DecoderDims {
        vocab_size: 32_000,
        hidden_size: 4096,
        intermediate_size: 11_008,
        num_layers: 32,
        num_heads: 32,
        num_kv_heads: 32,
    };
    ModelConfig::synthetic(Architecture::Llama, dims, false)
}

const LLAMA_7B_PARAMS: u64 = 6_738_415_616;

/// bf16 compute weights, f32 master weights and gradients, `AdamW`'s two f32 moments.
fn bf16_mixed(trainable: Trainable, batch_size: usize, seq_len: usize) -> MemoryPlan {
    MemoryPlan {
        weight_bytes: 2,
        compute_bytes: 2,
        master_bytes: 4,
        optimizer_bytes: 8,
        trainable,
        batch_size,
        seq_len,
        gradient_checkpointing: true,
    }
}

/// Rank-16 adapters on q/k/v/o (PEFT's usual Llama targets).
fn lora16() -> LoraConfig {
    LoraConfig {
        rank: 16,
        alpha: 16.0,
        dropout: 0.0,
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(String::from)
            .to_vec(),
    }
}

#[test]
fn llama_2_7b_has_its_published_parameter_count() {
    // Llama-2-7b: 6,738,415,616 parameters.
    assert_eq!(llama_7b().num_parameters() as u64, LLAMA_7B_PARAMS);
}

#[test]
fn lora_adapters_on_the_attention_of_7b_have_16_8m_parameters() {
    // 32 layers · 4 projections · 16 · (4096 + 4096).
    assert_eq!(adapter_parameter_count(&llama_7b(), &lora16()), 16_777_216);
}

#[test]
fn full_fine_tune_of_7b_with_f32_master_weights_does_not_fit_80_gb() {
    let plan = bf16_mixed(Trainable::Full, 1, 1024);
    let e = estimate_memory(&llama_7b(), &plan);
    // 2 + 4 (master) + 4 (grads) + 8 (AdamW) bytes per parameter = 18 × 6.74e9 ≈ 121 GB.
    assert_eq!(e.master_weights, 4 * LLAMA_7B_PARAMS);
    assert_eq!(e.static_part(), 18 * LLAMA_7B_PARAMS);
    assert!(!e.fits(80_000_000_000), "{e}");
    // Everything in f32: 4 (weights) + 4 (gradients) + 8 (AdamW), no separate master copy.
    let f32_plan = MemoryPlan {
        weight_bytes: 4,
        compute_bytes: 4,
        ..plan.clone()
    };
    let e = estimate_memory(&llama_7b(), &f32_plan);
    assert_eq!(
        (e.master_weights, e.static_part()),
        (0, 16 * LLAMA_7B_PARAMS)
    );
    assert!(!e.fits(80_000_000_000), "{e}");
    // Pure bf16: 2 (weights) + 2 (gradients) + 4 (two bf16 moments).
    let bf16_plan = MemoryPlan {
        master_bytes: 2,
        optimizer_bytes: 4,
        ..plan.clone()
    };
    let e = estimate_memory(&llama_7b(), &bf16_plan);
    assert_eq!(
        (e.master_weights, e.static_part()),
        (0, 8 * LLAMA_7B_PARAMS)
    );

    let lora = MemoryPlan {
        trainable: Trainable::Adapters(4_194_304),
        ..plan
    };
    assert!(estimate_memory(&llama_7b(), &lora).fits(80_000_000_000));
}

#[test]
fn lora_with_gradient_checkpointing_on_7b_fits_80_gb_by_hand() {
    let adapters = 16_777_216;
    let plan = bf16_mixed(Trainable::Adapters(adapters), 16, 512);
    let e = estimate_memory(&llama_7b(), &plan);
    // The frozen base in bf16, the adapters, their gradients and AdamW moments in f32.
    assert_eq!(e.weights, 2 * LLAMA_7B_PARAMS + 4 * adapters as u64);
    assert_eq!(e.master_weights, 0);
    assert_eq!(e.gradients, 4 * adapters as u64);
    assert_eq!(e.optimizer, 8 * adapters as u64);
    // Per layer and token, checkpointed: 2·4096 (o, down) + 2·4096 (q, attention output)
    // + 2·4096 (k, v) + 32·512 (scores) + 2·11008 (gate, up) = 62,976 elements of 2 bytes,
    // over 32 layers and 16 · 512 = 8192 tokens.
    assert_eq!(
        activations_per_token_layer(&llama_7b(), 512, true, TrainingAttention::Composed),
        62_976
    );
    assert_eq!(e.activations, 32 * 8192 * 62_976 * 2);
    // Logits: one chunk of 16 Mi / 32000 = 524 positions · 32000 · (2 bf16 + 3 · 4 f32) bytes,
    // where the whole batch's would be 8192 positions.
    assert_eq!(logps_chunk_positions(32_000), 524);
    assert_eq!(e.logits, 524 * 32_000 * 14);
    assert_eq!(e.total(), 46_997_579_776);
    assert!(e.fits(72_000_000_000), "{e}");

    // Without checkpointing every layer keeps 125,952 elements per token: 82 GB.
    let without = estimate_memory(
        &llama_7b(),
        &MemoryPlan {
            gradient_checkpointing: false,
            ..plan
        },
    );
    assert_eq!(
        activations_per_token_layer(&llama_7b(), 512, false, TrainingAttention::Composed),
        125_952
    );
    assert_eq!(without.activations, 32 * 8192 * 125_952 * 2);
    assert!(!without.fits(80_000_000_000), "{without}");
}

#[test]
fn checkpointing_keeps_fewer_activations_and_the_same_logits() {
    let plan = MemoryPlan {
        weight_bytes: 4,
        compute_bytes: 4,
        master_bytes: 4,
        optimizer_bytes: 8,
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

#[test]
fn training_logits_are_one_chunk_and_never_more_than_the_batch() {
    let plan = |batch_size, seq_len| MemoryPlan {
        weight_bytes: 4,
        compute_bytes: 4,
        master_bytes: 4,
        optimizer_bytes: 8,
        trainable: Trainable::Full,
        batch_size,
        seq_len,
        gradient_checkpointing: false,
    };
    // Qwen2-0.5B's vocabulary, 8 × 512: 110 positions of 151,936 logits, 16 bytes each in
    // f32, instead of 4096 positions' full logits.
    let mut qwen = llama_7b();
    qwen.vocab_size = 151_936;
    assert_eq!(logps_chunk_positions(151_936), 110);
    assert_eq!(
        estimate_memory(&qwen, &plan(8, 512)).logits,
        110 * 151_936 * 16
    );
    // A batch smaller than a chunk: its own positions.
    assert_eq!(
        estimate_memory(&qwen, &plan(1, 64)).logits,
        64 * 151_936 * 16
    );
    // Beyond any vocabulary a chunk holds: one position at a time.
    assert_eq!(logps_chunk_positions(LOGPS_CHUNK_ELEMENTS + 1), 1);
}

#[test]
fn inference_keeps_weights_and_logits_only() {
    let e = estimate_memory(&llama_7b(), &bf16_mixed(Trainable::Nothing, 4, 256));
    assert_eq!(e.static_part(), 2 * LLAMA_7B_PARAMS);
    assert_eq!(e.activations, 0);
    // 1024 tokens · 32000 · (2 bf16 + 4 f32 log-softmax) bytes.
    assert_eq!(e.logits, 1024 * 32_000 * 6);
}

#[test]
fn the_description_lists_every_part() {
    let e = estimate_memory(&llama_7b(), &bf16_mixed(Trainable::Full, 16, 512));
    let text = e.to_string();
    assert!(
        text.starts_with("weights 13.5 + f32 master 27.0 + gradients 27.0 + optimizer 53.9"),
        "{text}"
    );
    assert!(text.ends_with(" GB"), "{text}");
    let small = MemoryEstimate {
        weights: 2_000_000,
        master_weights: 0,
        gradients: 0,
        optimizer: 0,
        activations: 0,
        logits: 500_000,
        attention: None,
    };
    assert_eq!(
        small.to_string(),
        "weights 2.0 + gradients 0.0 + optimizer 0.0 + activations 0.0 + logits 0.5 = 2.5 MB"
    );
}

#[test]
fn fused_attention_keeps_no_scores_and_says_so() {
    let plan = MemoryPlan {
        gradient_checkpointing: false,
        ..bf16_mixed(Trainable::Full, 16, 512)
    };
    let composed = estimate_memory(&llama_7b(), &plan);
    let fused = estimate_memory_with(&llama_7b(), &plan, TrainingAttention::Fused);
    // Composed: 2 · 32 heads · 512 keys of scores and probabilities per token; fused: one
    // log-sum-exp per head instead. 125,952 − 32,768 + 32 = 93,216 elements per token and layer.
    assert_eq!(
        activations_per_token_layer(&llama_7b(), 512, false, TrainingAttention::Fused),
        93_216
    );
    assert_eq!(fused.activations, 32 * 8192 * 93_216 * 2);
    assert_eq!(fused.static_part(), composed.static_part());
    assert_eq!(fused.logits, composed.logits);
    // Checkpointed: 62,976 − 16,384 + 32.
    assert_eq!(
        activations_per_token_layer(&llama_7b(), 512, true, TrainingAttention::Fused),
        46_624
    );
    assert_eq!(composed.attention, Some(TrainingAttention::Composed));
    assert!(
        fused.to_string().contains("(fused attention) + logits"),
        "{fused}"
    );
    assert!(
        composed.to_string().contains("(composed attention)"),
        "{composed}"
    );
    // Inference keeps no activations: no path named.
    let inference = estimate_memory(
        &llama_7b(),
        &MemoryPlan {
            trainable: Trainable::Nothing,
            ..plan
        },
    );
    assert_eq!(inference.attention, None);
    // Keyed on the device: flex composes, LibTorch fuses.
    assert_eq!(
        TrainingAttention::on_device(crate::DeviceSpec::Cpu),
        TrainingAttention::Composed
    );
    assert_eq!(
        TrainingAttention::on_device(crate::DeviceSpec::TchCpu),
        TrainingAttention::Fused
    );
    assert_eq!(
        TrainingAttention::on_device(crate::DeviceSpec::Cuda(0)),
        TrainingAttention::Fused
    );
}
