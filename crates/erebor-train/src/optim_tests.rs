use super::*;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;

/// `PyTorch`'s `_single_tensor_adamw` on one scalar, in f64: the reference.
fn reference_adamw(c: AdamWConfig, mut p: f64, grads: &[f64], lrs: &[f64], decay: bool) -> f64 {
    let (mut m, mut v) = (0.0, 0.0);
    for (step, (g, lr)) in (1..).zip(grads.iter().zip(lrs)) {
        if decay {
            p *= 1.0 - lr * c.weight_decay;
        }
        m = c.beta1 * m + (1.0 - c.beta1) * g;
        v = c.beta2 * v + (1.0 - c.beta2) * g * g;
        let bc1 = 1.0 - c.beta1.powi(step);
        let bc2 = 1.0 - c.beta2.powi(step);
        let denom = v.sqrt() / bc2.sqrt() + c.eps;
        p -= lr / bc1 * m / denom;
    }
    p
}

fn linear(device: &Device, weight: [[f32; 2]; 2], bias: [f32; 2]) -> Linear {
    let mut layer = LinearConfig::new(2, 2).init(device);
    layer.weight = layer
        .weight
        .map(|_| Tensor::from_floats(weight, device).require_grad());
    layer.bias = layer
        .bias
        .map(|b| b.map(|_| Tensor::from_floats(bias, device).require_grad()));
    layer
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec::<f32>().unwrap()
}

/// The layer's weight (row-major) and bias values.
fn weight_and_bias(layer: &Linear) -> (Vec<f32>, Vec<f32>) {
    let bias = layer.bias.as_ref().expect("a bias").val();
    (values(layer.weight.val()), values(bias))
}

/// Gradients of `sum(scale · (x W + b))` for a one-row input x: dW[i][j] = scale·x[i],
/// db[j] = scale.
fn grads_of(layer: &Linear, x: [f32; 2], scale: f32, device: &Device) -> GradientsParams {
    let input = Tensor::<2>::from_floats([x], device);
    let loss = layer.forward(input).sum().mul_scalar(scale);
    GradientsParams::from_grads(loss.backward(), layer)
}

#[test]
fn first_step_is_lr_times_sign_after_decoupled_decay() {
    let device = Device::flex().autodiff();
    let config = AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let layer = linear(&device, [[1.0, -2.0], [0.5, 0.25]], [0.3, -0.3]);
    let mut grads = grads_of(&layer, [2.0, -1.0], 1.0, &device);
    let mut adamw = AdamW::new(config);
    let layer = adamw.step(layer, &mut grads, 0.1);
    let (weight, bias) = weight_and_bias(&layer);
    // By hand: w ← w(1 − 0.01) − 0.1·sign(g), g = x[i] for row i: rows get −0.1 and +0.1.
    let expected = [0.99 - 0.1, -1.98 - 0.1, 0.495 + 0.1, 0.2475 + 0.1];
    for (got, want) in weight.iter().zip(expected) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{weight:?}");
    }
    // Biases are rank 1: no decay.
    assert!((f64::from(bias[0]) - 0.2).abs() < 1e-6 && (f64::from(bias[1]) + 0.4).abs() < 1e-6);
    assert_eq!(adamw.states()["weight"].step, 1);
    assert!(adamw.states().contains_key("bias"));
}

#[test]
fn several_steps_match_pytorch_adamw() {
    let device = Device::flex().autodiff();
    let config = AdamWConfig {
        beta1: 0.8,
        beta2: 0.95,
        eps: 1e-6,
        weight_decay: 0.05,
    };
    let scales = [1.0f32, -0.5, 2.0, 0.1, -3.0];
    let lrs = [0.05, 0.04, 0.03, 0.02, 0.01];
    let x = [1.5f32, -0.25];
    let w0 = [[0.2f32, -0.1], [0.4, 0.3]];
    let b0 = [0.0f32, 1.0];
    let mut layer = linear(&device, w0, b0);
    let mut adamw = AdamW::new(config);
    for (scale, lr) in scales.iter().zip(lrs) {
        let mut grads = grads_of(&layer, x, *scale, &device);
        layer = adamw.step(layer, &mut grads, lr);
    }
    let (weight, bias) = weight_and_bias(&layer);
    for i in 0..2 {
        for j in 0..2 {
            let grads: Vec<f64> = scales.iter().map(|s| f64::from(s * x[i])).collect();
            let want = reference_adamw(config, f64::from(w0[i][j]), &grads, &lrs, true);
            let got = f64::from(weight[i * 2 + j]);
            assert!((got - want).abs() < 1e-6, "w[{i}][{j}]: {got} vs {want}");
        }
        let grads: Vec<f64> = scales.iter().map(|s| f64::from(*s)).collect();
        let want = reference_adamw(config, f64::from(b0[i]), &grads, &lrs, false);
        assert!((f64::from(bias[i]) - want).abs() < 1e-6, "b[{i}]");
    }
}

#[test]
fn clipping_uses_the_global_norm_like_clip_grad_norm() {
    let device = Device::flex().autodiff();
    let layer = linear(&device, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]);
    // dW = [[3,3],[4,4]], db = [1,1]: global norm √(9+9+16+16+1+1) = √52.
    let mut grads = grads_of(&layer, [3.0, 4.0], 1.0, &device);
    let norm = clip_grad_norm(&layer, &mut grads, 1.0);
    assert!((norm - 52f64.sqrt()).abs() < 1e-5);
    let after = global_grad_norm(&layer, &grads);
    assert!((after - 1.0).abs() < 1e-5, "{after}");
    // Below the threshold nothing changes.
    let mut grads = grads_of(&layer, [3.0, 4.0], 1.0, &device);
    assert!((clip_grad_norm(&layer, &mut grads, 100.0) - 52f64.sqrt()).abs() < 1e-5);
    assert!((global_grad_norm(&layer, &grads) - 52f64.sqrt()).abs() < 1e-5);
}

#[test]
fn state_survives_a_host_round_trip() {
    let device = Device::flex().autodiff();
    let layer = linear(&device, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]);
    let mut grads = grads_of(&layer, [3.0, 4.0], 1.0, &device);
    let mut adamw = AdamW::new(AdamWConfig::default());
    let _ = adamw.step(layer, &mut grads, 0.1);
    let state = &adamw.states()["weight"];
    let host = state.to_host("weight").unwrap();
    assert_eq!(host.exp_avg.len(), 4);
    let back = MomentState::from_host(host.clone(), &Device::flex(), burn::tensor::DType::F32);
    assert_eq!(back.to_host("weight").unwrap().exp_avg_sq, host.exp_avg_sq);
    assert_eq!(back.step, 1);
}
