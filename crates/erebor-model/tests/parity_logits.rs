//! Logits of the tiny HF checkpoints (../shared/fixtures/hf-tiny, made by transformers in f32)
//! against the reference values in each reference.json. bf16 compute is checked against f32 in
//! `tests/parity_bf16.rs`.

mod common;

use burn::tensor::DType;
use common::{floats, ids, json, max_abs_diff, prompt_tensor, shared, values_f64};
use erebor_model::Checkpoint;

fn check_arch(arch: &str) {
    let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
        return;
    };
    let reference = json(&dir.join("reference.json"));
    let device = common::device();
    let ckpt = Checkpoint::load(&dir, &device, DType::F32).unwrap();
    let prompt = ids(&reference["prompt_ids"]);
    let n = prompt.len();
    let logits = ckpt.model.forward(prompt_tensor(&prompt, &device));
    let [_, seq, vocab] = logits.dims();
    assert_eq!((seq, vocab), (n, 512));
    let values = values_f64(logits);
    let first: Vec<f64> = values[..16].to_vec();
    let last: Vec<f64> = values[(n - 1) * vocab..(n - 1) * vocab + 16].to_vec();
    let d_first = max_abs_diff(&first, &floats(&reference["logits_first_row_head"]));
    let d_last = max_abs_diff(&last, &floats(&reference["logits_last_row_head"]));
    eprintln!("{arch}: max diff first {d_first:e} last {d_last:e}");
    assert!(d_first <= 1e-4, "{arch}: first row differs by {d_first}");
    assert!(d_last <= 1e-4, "{arch}: last row differs by {d_last}");
    let sum: f64 = values.iter().sum();
    let abs_sum: f64 = values.iter().map(|v| v.abs()).sum();
    // 6144 logits each within 1e-4: the sums agree within 6144e-4 at worst, far less in practice.
    assert!(
        (sum - reference["logits_sum"].as_f64().unwrap()).abs() < 1e-2,
        "{arch}: sum {sum}"
    );
    assert!(
        (abs_sum - reference["logits_abs_sum"].as_f64().unwrap()).abs() < 1e-2,
        "{arch}: abs sum {abs_sum}"
    );
    let argmax: Vec<u32> = (0..n)
        .map(|p| {
            let row = &values[p * vocab..(p + 1) * vocab];
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            u32::try_from(best).unwrap()
        })
        .collect();
    assert_eq!(
        argmax,
        ids(&reference["argmax_per_position"]),
        "{arch}: argmax"
    );
}

#[test]
fn llama_logits_match_transformers() {
    check_arch("llama");
}

#[test]
fn qwen2_logits_match_transformers() {
    check_arch("qwen2");
}

#[test]
fn mistral_logits_match_transformers() {
    check_arch("mistral");
}
