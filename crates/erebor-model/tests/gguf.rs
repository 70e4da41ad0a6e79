//! GGUF loading end to end: the hf-tiny Llama checkpoint written as a GGUF file the way
//! llama.cpp's converter writes one (llama.* metadata, blk.N.* names, q/k rows permuted for
//! its rotary layout, dims innermost first) must give transformers' logits; F16 and `Q8_0`
//! tensors dequantise; truncated and malformed files are errors naming the file.

mod common;

use std::path::Path;

use burn::tensor::DType;
use common::llama_cpp::permute;
use common::{floats, ids, json, max_abs_diff, shared};
use erebor_model::model::WeightSource;
use erebor_model::weights::SafetensorsSource;
use erebor_model::{Checkpoint, ModelConfig, ModelError};
use half::f16;

/// How one tensor is stored.
#[derive(Clone, Copy, PartialEq)]
enum Ty {
    F32,
    F16,
    Q8_0,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

// A `Q8_0` quantiser: each rounded quotient is within ±127 by the choice of `d`.
#[allow(clippy::cast_possible_truncation)]
fn encode(values: &[f32], ty: Ty) -> Vec<u8> {
    match ty {
        Ty::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Ty::F16 => values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        Ty::Q8_0 => values
            .chunks(32)
            .flat_map(|block| {
                let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let mut out = f16::from_f32(d).to_le_bytes().to_vec();
                out.extend(block.iter().map(|v| {
                    if d == 0.0 {
                        0
                    } else {
                        ((v / d).round() as i8).cast_unsigned()
                    }
                }));
                out
            })
            .collect(),
    }
}

/// The name llama.cpp's converter gives a Hugging Face tensor.
fn gguf_name(hf: &str) -> String {
    hf.replace("model.embed_tokens.weight", "token_embd.weight")
        .replace("model.norm.weight", "output_norm.weight")
        .replace("lm_head.weight", "output.weight")
        .replace("model.layers.", "blk.")
        .replace("input_layernorm", "attn_norm")
        .replace("post_attention_layernorm", "ffn_norm")
        .replace("self_attn.q_proj", "attn_q")
        .replace("self_attn.k_proj", "attn_k")
        .replace("self_attn.v_proj", "attn_v")
        .replace("self_attn.o_proj", "attn_output")
        .replace("mlp.gate_proj", "ffn_gate")
        .replace("mlp.up_proj", "ffn_up")
        .replace("mlp.down_proj", "ffn_down")
}

/// The metadata count and key/value pairs of a Llama GGUF for `config`.
fn put_metadata(b: &mut Vec<u8>, config: &ModelConfig) {
    let u32_of = |n: usize| u32::try_from(n).unwrap();
    let int_values: [(&str, u32); 7] = [
        (
            "llama.context_length",
            u32_of(config.max_position_embeddings),
        ),
        ("llama.embedding_length", u32_of(config.hidden_size)),
        ("llama.block_count", u32_of(config.num_layers)),
        (
            "llama.feed_forward_length",
            u32_of(config.intermediate_size),
        ),
        ("llama.attention.head_count", u32_of(config.num_heads)),
        ("llama.attention.head_count_kv", u32_of(config.num_kv_heads)),
        ("general.alignment", 32),
    ];
    // GGUF stores these in f32, as llama.cpp's converter writes them.
    #[allow(clippy::cast_possible_truncation)]
    let float_values = [
        (
            "llama.attention.layer_norm_rms_epsilon",
            config.rms_norm_eps as f32,
        ),
        ("llama.rope.freq_base", config.rope_theta as f32),
    ];
    b.extend(((int_values.len() + float_values.len() + 1) as u64).to_le_bytes());
    put_str(b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    put_str(b, "llama");
    for (k, v) in int_values {
        put_str(b, k);
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
    for (k, v) in float_values {
        put_str(b, k);
        b.extend(6u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
}

/// Writes `dir/fixture` (the hf-tiny Llama) as GGUF v3; `ty_of` picks each tensor's type.
fn write_gguf(src_dir: &Path, out: &Path, ty_of: impl Fn(&str) -> Ty) {
    let config = ModelConfig::from_dir(src_dir).unwrap();
    let mut src = SafetensorsSource::open_dir(src_dir).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Ty, Vec<u8>)> = Vec::new();
    for (hf, shape) in src.shapes() {
        let data: Vec<f32> = src
            .take(&hf, &shape)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        let gg = gguf_name(&hf);
        let data = if gg.ends_with("attn_q.weight") {
            permute(&data, shape[0], shape[1], config.num_heads)
        } else if gg.ends_with("attn_k.weight") {
            permute(&data, shape[0], shape[1], config.num_kv_heads)
        } else {
            data
        };
        let ty = if shape.len() == 1 {
            Ty::F32
        } else {
            ty_of(&gg)
        };
        tensors.push((gg, shape, ty, encode(&data, ty)));
    }
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    put_metadata(&mut b, &config);
    let mut offset = 0usize;
    for (name, shape, ty, bytes) in &tensors {
        put_str(&mut b, name);
        b.extend(u32::try_from(shape.len()).unwrap().to_le_bytes());
        for d in shape.iter().rev() {
            b.extend((*d as u64).to_le_bytes());
        }
        let id: u32 = match ty {
            Ty::F32 => 0,
            Ty::F16 => 1,
            Ty::Q8_0 => 8,
        };
        b.extend(id.to_le_bytes());
        b.extend((offset as u64).to_le_bytes());
        offset += bytes.len().div_ceil(32) * 32;
    }
    b.resize(b.len().div_ceil(32) * 32, 0);
    for (_, _, _, bytes) in &tensors {
        b.extend(bytes);
        b.resize(b.len().div_ceil(32) * 32, 0);
    }
    std::fs::write(out, b).unwrap();
}

fn logits(path: &Path, prompt: &[u32]) -> Vec<f64> {
    let model = Checkpoint::load(path, &common::device(), DType::F32)
        .unwrap()
        .model;
    common::prompt_logits(&model, prompt)
}

#[test]
fn llama_cpp_layout_gguf_gives_transformers_logits() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let r = json(&dir.join("reference.json"));
    let prompt = ids(&r["prompt_ids"]);
    let tmp = tempfile::tempdir().unwrap();

    let f32_path = tmp.path().join("tiny-f32.gguf");
    write_gguf(&dir, &f32_path, |_| Ty::F32);
    assert_eq!(Checkpoint::read_config(&f32_path).unwrap().num_layers, 2);
    let got = logits(&f32_path, &prompt);
    let d = max_abs_diff(&got[..16], &floats(&r["logits_first_row_head"]));
    assert!(d <= 1e-4, "f32 GGUF differs from transformers by {d}");
    let argmax: Vec<u32> = got
        .chunks(512)
        .map(|row| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            u32::try_from(best).unwrap()
        })
        .collect();
    assert_eq!(argmax, ids(&r["argmax_per_position"]));

    // Reduced precision: close to the f32 logits, not equal.
    for (name, ty, tol) in [("f16", Ty::F16, 1e-3), ("q8_0", Ty::Q8_0, 3e-2)] {
        let path = tmp.path().join(format!("tiny-{name}.gguf"));
        write_gguf(&dir, &path, |_| ty);
        let q = logits(&path, &prompt);
        let d = max_abs_diff(&q, &got);
        assert!(d > 0.0 && d < tol, "{name}: max diff {d}");
    }
}

#[test]
fn truncated_and_malformed_gguf_files_are_errors() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tiny.gguf");
    write_gguf(&dir, &path, |_| Ty::F32);
    let bytes = std::fs::read(&path).unwrap();

    std::fs::write(&path, &bytes[..bytes.len() - 4096]).unwrap();
    let err = Checkpoint::load(&path, &common::device(), DType::F32).unwrap_err();
    assert!(
        matches!(&err, ModelError::Weights { message, .. } if message.contains("past the end")),
        "{err}"
    );

    std::fs::write(&path, &bytes[..200]).unwrap();
    let err = Checkpoint::load(&path, &common::device(), DType::F32).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let mut bad = bytes.clone();
    bad[..4].copy_from_slice(b"GGML");
    std::fs::write(&path, &bad).unwrap();
    let err = Checkpoint::load(&path, &common::device(), DType::F32).unwrap_err();
    assert!(
        err.to_string().contains("bad magic") && err.to_string().contains("tiny.gguf"),
        "{err}"
    );
}
