//! The SDPA op against attention composed from Burn's ops on the same LibTorch device: outputs
//! and gradients in q, k and v, for the causal kernel and for boolean masks (padding on either
//! side, sliding window, packed segments, a KV cache), on plain and autodiff devices with both
//! checkpoint strategies.

// burn-tch is deprecated in burn 0.22; erebor keeps LibTorch on purpose (see `device.rs`).
#![allow(deprecated)]

use super::*;
use burn::tensor::activation::softmax;
use burn::tensor::{DType, Device, TensorData};

const BATCH: usize = 2;
const HEADS: usize = 3;
const HEAD_DIM: usize = 8;

/// Deterministic values in [-2, 2), different per `seed`.
fn seeded(seed: u64, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n as u64)
        .map(|i| ((i * 2_654_435_761 + seed * 97) % 1000) as f32 / 250.0 - 2.0)
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn layout(
    key_valid: Vec<Vec<bool>>,
    new_len: usize,
    segments: Option<Vec<Vec<u32>>>,
) -> AttentionLayout {
    let past_len = key_valid[0].len() - new_len;
    AttentionLayout {
        key_valid,
        past_len,
        new_len,
        key_segments: segments,
    }
}

/// Attention from Burn's matmul and softmax with the layout's additive bias, as the composed
/// path computes it.
fn composed(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    layout: &AttentionLayout,
    window: Option<usize>,
) -> Tensor<4> {
    let total = layout.past_len + layout.new_len;
    let bias: Vec<f32> = layout
        .allowed(window)
        .into_iter()
        .map(|a| if a { 0.0 } else { f32::MIN })
        .collect();
    let bias = Tensor::<4>::from_data(
        TensorData::new(bias, [BATCH, 1, layout.new_len, total]),
        &q.device(),
    );
    let scale = (HEAD_DIM as f64).powf(-0.5);
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias;
    softmax(scores, 3).matmul(v)
}

/// Per output row `[batch, 1, new, 1]`: 1 where the query has a key to attend to (the rows both
/// paths define alike), 0 at a fully masked query.
fn defined_rows(layout: &AttentionLayout, window: Option<usize>, device: &Device) -> Tensor<4> {
    let total = layout.past_len + layout.new_len;
    let rows: Vec<f32> = layout
        .allowed(window)
        .chunks(total)
        .map(|keys| f32::from(u8::from(keys.contains(&true))))
        .collect();
    Tensor::from_data(TensorData::new(rows, [BATCH, 1, layout.new_len, 1]), device)
}

fn read(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 values")
}

/// The output (defined rows only) and the gradients of `Σ weights · out` in q, k, v.
fn output_and_grads(
    device: &Device,
    layout: &AttentionLayout,
    window: Option<usize>,
    fused: bool,
) -> [Vec<f32>; 4] {
    let new = layout.new_len;
    let total = layout.past_len + new;
    let q = seeded(1, [BATCH, HEADS, new, HEAD_DIM], device).require_grad();
    let k = seeded(2, [BATCH, HEADS, total, HEAD_DIM], device).require_grad();
    let v = seeded(3, [BATCH, HEADS, total, HEAD_DIM], device).require_grad();
    let out = if fused {
        attention(&q, &k, &v, layout, window).expect("the tensors live on LibTorch")
    } else {
        composed(q.clone(), k.clone(), v.clone(), layout, window)
    };
    assert_eq!(out.dims(), [BATCH, HEADS, new, HEAD_DIM]);
    let rows = defined_rows(layout, window, device);
    let weights = seeded(4, [BATCH, HEADS, new, HEAD_DIM], device) * rows.clone();
    let grads = (out.clone() * weights).sum().backward();
    [
        read((out * rows).detach()),
        read(q.grad(&grads).expect("d q")),
        read(k.grad(&grads).expect("d k")),
        read(v.grad(&grads).expect("d v")),
    ]
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance,
            "{what}[{i}]: {g} vs {w} (tolerance {tolerance})"
        );
    }
    assert!(want.iter().any(|w| *w != 0.0), "{what}: all zero");
}

fn check(layout: &AttentionLayout, window: Option<usize>) {
    for device in [
        Device::libtorch().autodiff(),
        Device::libtorch().autodiff().gradient_checkpointing(),
    ] {
        let want = output_and_grads(&device, layout, window, false);
        let got = output_and_grads(&device, layout, window, true);
        for (i, what) in ["out", "d q", "d k", "d v"].into_iter().enumerate() {
            let strategy = device.gradient_checkpointing_strategy();
            assert_close(&format!("{what} ({strategy:?})"), &got[i], &want[i], 1e-5);
        }
    }
}

#[test]
fn causal_matches_the_composed_attention() {
    let layout = layout(vec![vec![true; 6]; BATCH], 6, None);
    assert!(matches!(Mask::new(&layout, None), Mask::Causal));
    check(&layout, None);
    // A window no shorter than the sequence changes nothing: still the causal kernel.
    assert!(matches!(Mask::new(&layout, Some(6)), Mask::Causal));
}

#[test]
fn padding_and_a_sliding_window_match_the_composed_attention() {
    let right = vec![true, true, true, true, false, false, false];
    let left = vec![false, false, false, true, true, true, true];
    let layout = layout(vec![right, left], 7, None);
    check(&layout, None);
    check(&layout, Some(3));
}

#[test]
fn packed_segments_match_the_composed_attention() {
    let segments = vec![vec![0, 0, 0, 1, 1, 2], vec![0, 0, 0, 0, 0, 1]];
    let layout = layout(vec![vec![true; 6]; BATCH], 6, Some(segments));
    check(&layout, None);
}

#[test]
fn kv_cache_steps_match_the_composed_attention() {
    // Cached: row 0 left-padded by two; row 1 full. New: two tokens, then one.
    let cached = [
        vec![false, false, true, true, true],
        vec![true, true, true, true, true],
    ];
    for new in [2, 1] {
        let key_valid: Vec<Vec<bool>> = cached
            .iter()
            .map(|row| {
                let mut row = row.clone();
                row.extend(std::iter::repeat_n(true, new));
                row
            })
            .collect();
        let layout = layout(key_valid, new, None);
        check(&layout, None);
        check(&layout, Some(4));
    }
}

#[test]
fn fully_masked_queries_stay_finite_and_plain_devices_agree() {
    let left = vec![false, false, false, false, true, true];
    let layout = layout(vec![left.clone(), left], 6, None);
    let device = Device::libtorch();
    let (q, k, v) = (
        seeded(1, [BATCH, HEADS, 6, HEAD_DIM], &device),
        seeded(2, [BATCH, HEADS, 6, HEAD_DIM], &device),
        seeded(3, [BATCH, HEADS, 6, HEAD_DIM], &device),
    );
    let plain = read(attention(&q, &k, &v, &layout, None).expect("LibTorch"));
    assert!(
        plain.iter().all(|x| x.is_finite()),
        "NaN or inf in the output"
    );
    let rows = defined_rows(&layout, None, &device);
    let want = read(composed(q.clone(), k.clone(), v.clone(), &layout, None) * rows.clone());
    let got = read(attention(&q, &k, &v, &layout, None).expect("LibTorch") * rows);
    assert_close("plain out", &got, &want, 1e-5);
    // The autodiff forward gives the plain forward's values.
    let autodiff = output_and_grads(&Device::libtorch().autodiff(), &layout, None, true);
    assert_close("autodiff out", &autodiff[0], &got, 0.0);
}

#[test]
fn bf16_matches_the_f32_attention() {
    // bf16 keeps 8 bits of mantissa: inputs rounded to bf16 and outputs within 2e-2 of f32.
    let right = vec![true, true, true, true, true, false];
    let layout = layout(vec![right.clone(), right], 6, None);
    let device = Device::libtorch().autodiff();
    let q = seeded(1, [BATCH, HEADS, 6, HEAD_DIM], &device);
    let k = seeded(2, [BATCH, HEADS, 6, HEAD_DIM], &device);
    let v = seeded(3, [BATCH, HEADS, 6, HEAD_DIM], &device);
    let want = read(composed(q.clone(), k.clone(), v.clone(), &layout, None));
    let half = |t: Tensor<4>| t.cast(DType::BF16).require_grad();
    let (qh, kh, vh) = (half(q), half(k), half(v));
    let out = attention(&qh, &kh, &vh, &layout, None).expect("LibTorch");
    assert_eq!(out.dtype(), DType::BF16);
    let grads = out.clone().cast(DType::F32).sum().backward();
    assert_close("bf16 out", &read(out.cast(DType::F32)), &want, 2e-2);
    for (what, t) in [("d q", qh), ("d k", kh), ("d v", vh)] {
        let g = t.grad(&grads).expect(what);
        assert_eq!(g.dtype(), DType::BF16, "{what}");
        assert!(
            read(g.cast(DType::F32)).iter().all(|x| x.is_finite()),
            "{what}"
        );
    }
}
