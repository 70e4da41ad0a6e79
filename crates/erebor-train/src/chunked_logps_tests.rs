use super::*;
use crate::logps::{read_f32, token_logps};
use burn::tensor::{Device, TensorData};

const TOKENS: usize = 7;
const WIDTH: usize = 5;
const VOCAB: usize = 11;

fn inputs(device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<1, Int>) {
    let seeded = |seed: u64, shape: [usize; 2]| {
        let n = shape[0] * shape[1];
        let values: Vec<f32> = (0..n)
            .map(|i| (((i as u64 * 2_654_435_761 + seed * 97) % 1000) as f32 / 250.0) - 2.0)
            .collect();
        Tensor::<2>::from_data(TensorData::new(values, shape), device)
    };
    let targets: Vec<i64> = (0..TOKENS)
        .map(|i| i64::try_from((i * 4 + 3) % VOCAB).expect("a token id below VOCAB fits in i64"))
        .collect();
    (
        seeded(1, [TOKENS, WIDTH]),
        seeded(2, [WIDTH, VOCAB]),
        Tensor::from_data(TensorData::new(targets, [TOKENS]), device),
    )
}

/// Today's path: full logits, f32 log-softmax, gather.
fn composed(hidden: Tensor<2>, head: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let logits = hidden.matmul(head).unsqueeze_dim::<3>(0);
    token_logps(logits, targets.unsqueeze_dim(0)).squeeze_dim(0)
}

fn assert_all_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * scale,
            "{what}[{i}]: {g} vs {w} (tolerance {tolerance} × {scale})"
        );
    }
}

/// Values and the gradients of `Σ weights · logps` in `hidden` and `head`.
fn values_and_grads(
    device: &Device,
    dtype: DType,
    logps: impl Fn(Tensor<2>, Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (hidden, head, targets) = inputs(device);
    let hidden = hidden.require_grad();
    let head = head.require_grad();
    let out = logps(
        hidden.clone().cast(dtype),
        head.clone().cast(dtype),
        targets,
    );
    let weights: Vec<f32> = (0..TOKENS).map(|i| 0.3 * i as f32 - 1.0).collect();
    let weights = Tensor::<1>::from_data(TensorData::new(weights, [TOKENS]), device);
    let grads = (out.clone() * weights).sum().backward();
    (
        read_f32(out.detach(), "logps").unwrap(),
        read_f32(
            hidden.grad(&grads).unwrap().reshape([TOKENS * WIDTH]),
            "d hidden",
        )
        .unwrap(),
        read_f32(
            head.grad(&grads).unwrap().reshape([WIDTH * VOCAB]),
            "d head",
        )
        .unwrap(),
    )
}

fn check_against_composed(dtype: DType, tolerance: f32) {
    let device = Device::flex().autodiff();
    for chunk in [1, 3, TOKENS, 100] {
        let want = values_and_grads(&device, dtype, composed);
        let got = values_and_grads(&device, dtype, |h, w, t| {
            target_logps_in_chunks(h, w, t, chunk)
        });
        assert_all_close(&format!("logps, chunk {chunk}"), &got.0, &want.0, tolerance);
        assert_all_close(
            &format!("d hidden, chunk {chunk}"),
            &got.1,
            &want.1,
            tolerance,
        );
        assert_all_close(
            &format!("d head, chunk {chunk}"),
            &got.2,
            &want.2,
            tolerance,
        );
    }
}

#[test]
fn f32_values_and_gradients_match_the_composed_path() {
    check_against_composed(DType::F32, 1e-6);
}

#[test]
fn bf16_values_and_gradients_match_the_composed_path_to_bf16_rounding() {
    // bf16 has an 8-bit mantissa: one rounding of a logit or a gradient is 2^-8 ≈ 4e-3
    // relative; the head gradient sums chunk partials in f32 where the composed matmul rounds
    // its sum once, so they may differ by a rounding.
    check_against_composed(DType::BF16, 8e-3);
}

#[test]
fn plain_and_untracked_forwards_give_the_tracked_values() {
    let autodiff = Device::flex().autodiff();
    let (hidden, head, targets) = inputs(&autodiff);
    let tracked = read_f32(
        target_logps_in_chunks(
            hidden.clone().require_grad(),
            head.clone(),
            targets.clone(),
            2,
        ),
        "tracked",
    )
    .unwrap();
    let untracked = read_f32(
        target_logps_in_chunks(hidden.clone(), head.clone(), targets.clone(), 2),
        "untracked",
    )
    .unwrap();
    let (hidden, head, targets) = inputs(&Device::flex());
    let plain = read_f32(target_logps_in_chunks(hidden, head, targets, 2), "plain").unwrap();
    assert_eq!(tracked, untracked);
    assert_eq!(tracked, plain);
}

#[test]
fn chunk_positions_bound_the_logits_of_a_chunk() {
    assert_eq!(chunk_positions(151_936), CHUNK_ELEMENTS / 151_936);
    assert!(chunk_positions(151_936) * 151_936 <= CHUNK_ELEMENTS);
    assert_eq!(chunk_positions(CHUNK_ELEMENTS * 2), 1);
    assert_eq!(chunk_positions(0), CHUNK_ELEMENTS);
}

#[test]
fn no_positions_give_no_log_probs() {
    let device = Device::flex().autodiff();
    let hidden = Tensor::<2>::zeros([0, WIDTH], &device).require_grad();
    let head = Tensor::<2>::zeros([WIDTH, VOCAB], &device);
    let targets = Tensor::<1, Int>::zeros([0], &device);
    assert_eq!(target_logps(hidden, head, targets).dims(), [0]);
}
