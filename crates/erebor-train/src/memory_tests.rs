use super::*;

/// Llama-2-7B: hidden 4096, MLP 11008, 32 layers, 32 heads, vocab 32000, untied head.
fn llama2_7b() -> ModelShape {
    ModelShape {
        parameters: 6_738_415_616,
        layers: 32,
        hidden: 4096,
        intermediate: 11008,
        vocab: 32000,
        heads: 32,
        kv_heads: 32,
        head_dim: 128,
    }
}

fn footprint(
    precision: Precision,
    lora: Option<LoraSettings>,
    checkpointing: bool,
) -> TrainingFootprint {
    TrainingFootprint {
        shape: llama2_7b(),
        precision,
        lora,
        gradient_checkpointing: checkpointing,
        rows: 16,
        seq_len: 512,
        materialised_attention: false,
    }
}

fn lora16() -> LoraSettings {
    LoraSettings {
        rank: 16,
        alpha: 16.0,
        dropout: 0.0,
        targets: ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(String::from)
            .to_vec(),
    }
}

#[test]
fn full_fine_tuning_of_7b_with_f32_master_weights_does_not_fit_80_gb() {
    let f32_full = footprint(Precision::F32, None, true).estimate();
    // 4 (weights) + 4 (gradients) + 8 (AdamW) bytes per parameter = 107.8 GB before activations.
    assert!((f32_full.static_part() - 16.0 * 6_738_415_616.0).abs() < 1.0);
    assert!(!f32_full.fits(80e9));
    let mixed = footprint(Precision::Bf16Mixed, None, true).estimate();
    // bf16 compute copy on top: 18 bytes per parameter.
    assert!((mixed.static_part() - 18.0 * 6_738_415_616.0).abs() < 1.0);
    assert!(!mixed.fits(80e9), "{}", mixed.describe());
}

#[test]
fn lora_with_gradient_checkpointing_on_7b_fits_80_gb() {
    assert_eq!(llama2_7b().lora_parameters(&lora16()), 16_777_216);
    let estimate = footprint(Precision::Bf16Mixed, Some(lora16()), true).estimate();
    // By hand: 8192 tokens · (32 layers · 4096 · 2 B + (6·4096 + 2·4096 + 4·11008) · 2 B).
    assert!((estimate.activations - 8192.0 * 415_744.0).abs() < 1.0);
    // Logits: 8192 tokens · 32000 · (2 + 4 + 4) B.
    assert!((estimate.logits - 8192.0 * 32000.0 * 10.0).abs() < 1.0);
    assert!(estimate.total() < 21e9, "{}", estimate.describe());
    assert!(estimate.fits(80e9));
    // Without checkpointing the activations are 32 layers' worth.
    let without = footprint(Precision::Bf16Mixed, Some(lora16()), false).estimate();
    assert!(without.activations > 10.0 * estimate.activations / 2.0);
}

#[test]
fn the_description_lists_every_part() {
    let text = footprint(Precision::Bf16Mixed, None, true)
        .estimate()
        .describe();
    assert!(
        text.starts_with("weights 13.5 + f32 master 27.0 + gradients 27.0 + AdamW 53.9"),
        "{text}"
    );
    assert!(text.ends_with(" GB"), "{text}");
}
