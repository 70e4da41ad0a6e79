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
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
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
    first_step_on(&Device::flex().autodiff());
}

fn first_step_on(device: &Device) {
    let device = device.clone();
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
    several_steps_on(&Device::flex().autodiff());
}

fn several_steps_on(device: &Device) {
    let device = device.clone();
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

/// The in-place LibTorch update against the composed one and against the f64 reference.
// burn-tch is deprecated in burn 0.22; erebor keeps LibTorch on purpose (erebor-model's device.rs).
#[cfg(feature = "tch")]
#[allow(deprecated)]
mod libtorch {
    use super::*;
    use burn::backend::LibTorch;
    use burn::tensor::DType;
    use erebor_model::DeviceSpec;
    use rand::{RngExt, SeedableRng};

    fn base() -> Device {
        DeviceSpec::TchCpu
            .device()
            .expect("a tch build has tch-cpu")
    }

    /// A `inputs → outputs` layer with a bias, random weights from `seed`, in `dtype`.
    fn random_linear(inputs: usize, outputs: usize, seed: u64, dtype: DType) -> Linear {
        let device = base().autodiff();
        device.seed(seed);
        let mut layer = LinearConfig::new(inputs, outputs).init(&device);
        let leaf = |t: Tensor<2>| Tensor::from_inner(t.inner().cast(dtype)).require_grad();
        layer.weight = layer.weight.map(leaf);
        layer.bias = layer.bias.map(|b| {
            b.map(|t: Tensor<1>| Tensor::from_inner(t.inner().cast(dtype)).require_grad())
        });
        layer
    }

    /// Uniform gradients in [-scale, scale] from `seed` for the layer's weight and bias, in the
    /// layer's dtype.
    fn random_grads(layer: &Linear, seed: u64, scale: f32) -> GradientsParams {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let weight = layer.weight.val();
        let bias = layer.bias.as_ref().expect("a bias").val();
        let mut draw = |shape: burn::tensor::Shape, dtype: DType| {
            let n = shape.num_elements();
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            let t = Tensor::<1>::from_data(TensorData::new(v, [n]), &base());
            t.cast(dtype)
        };
        let mut grads = GradientsParams::new();
        let [o, i] = weight.dims();
        let w = draw(weight.shape(), weight.dtype()).reshape([o, i]);
        let b = draw(bias.shape(), bias.dtype());
        grads.register::<2>(layer.weight.id, w);
        grads.register::<1>(layer.bias.as_ref().expect("a bias").id, b);
        grads
    }

    /// max |a − b| / max |b|.
    fn relative(a: &[f32], b: &[f32]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        f64::from(diff) / f64::from(scale.max(f32::MIN_POSITIVE))
    }

    /// The data pointer of the layer's weight (a clone of the handle, dropped at once).
    fn weight_ptr(layer: &Linear) -> usize {
        let primitive = layer
            .weight
            .val()
            .inner()
            .try_into_primitive::<LibTorch>()
            .expect("a LibTorch tensor");
        primitive.tensor.data_ptr() as usize
    }

    /// Runs `steps` steps of both updates from the same layer and gradients; returns the two
    /// layers and optimizers.
    fn run_both(
        config: AdamWConfig,
        dtype: DType,
        steps: u64,
    ) -> ((Linear, AdamW), (Linear, AdamW)) {
        let start = random_linear(40, 48, 11, dtype);
        let mut fast = (start.clone(), AdamW::new(config));
        let mut composed = (start, AdamW::new(config).with_update(AdamWUpdate::Composed));
        for step in 0..steps {
            // Gradients of different sizes, the learning rate decaying towards 0 (which the
            // last step reaches).
            let scale = [1.0f32, 0.01, 3.0, 0.2, 1e-4][usize::try_from(step % 5).unwrap()];
            let lr = 1e-2 * (1.0 - step as f64 / (steps - 1) as f64);
            for (layer, adamw) in [&mut fast, &mut composed] {
                let mut grads = random_grads(layer, 100 + step, scale);
                *layer = adamw.step(layer.clone(), &mut grads, lr);
            }
        }
        (fast, composed)
    }

    #[test]
    fn in_place_update_matches_composed_in_f32_with_and_without_decay() {
        for weight_decay in [0.1, 0.0] {
            let config = AdamWConfig {
                weight_decay,
                ..AdamWConfig::default()
            };
            let ((fast, fast_opt), (composed, composed_opt)) = run_both(config, DType::F32, 6);
            let (fw, fb) = weight_and_bias(&fast);
            let (cw, cb) = weight_and_bias(&composed);
            assert!(
                relative(&fw, &cw) < 1e-6,
                "weights, wd {weight_decay}: {}",
                relative(&fw, &cw)
            );
            assert!(
                relative(&fb, &cb) < 1e-6,
                "bias, wd {weight_decay}: {}",
                relative(&fb, &cb)
            );
            for key in ["weight", "bias"] {
                let f = fast_opt.states()[key].to_host(key).unwrap();
                let c = composed_opt.states()[key].to_host(key).unwrap();
                assert_eq!(f.step, 6);
                assert!(relative(&f.exp_avg, &c.exp_avg) < 1e-6, "{key} exp_avg");
                assert!(
                    relative(&f.exp_avg_sq, &c.exp_avg_sq) < 1e-6,
                    "{key} exp_avg_sq"
                );
            }
        }
    }

    #[test]
    fn in_place_update_matches_the_f64_reference() {
        first_step_on(&base().autodiff());
        several_steps_on(&base().autodiff());
    }

    #[test]
    fn bf16_parameters_keep_bf16_weights_and_moments() {
        let config = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let ((fast, fast_opt), (composed, _)) = run_both(config, DType::BF16, 4);
        assert_eq!(fast.weight.val().dtype(), DType::BF16);
        assert_eq!(fast_opt.states()["weight"].exp_avg.dtype(), DType::BF16);
        assert_eq!(fast_opt.states()["bias"].exp_avg_sq.dtype(), DType::BF16);
        // torch rounds each bf16 op once from f32 (lerp, addcdiv); the composed ops round
        // after every Burn op: the weights agree to a few bf16 ulps (2^-8 relative each).
        let (fw, _) = weight_and_bias(&fast);
        let (cw, _) = weight_and_bias(&composed);
        assert!(relative(&fw, &cw) < 2f64.powi(-6), "{}", relative(&fw, &cw));
    }

    #[test]
    fn weights_nothing_else_holds_are_updated_in_place_and_shared_ones_are_not() {
        let layer = random_linear(8, 4, 3, DType::F32);
        let kept = layer.clone();
        let kept_values = weight_and_bias(&kept);
        let mut adamw = AdamW::new(AdamWConfig::default());
        // `kept` shares the buffers: the first step must copy, leaving `kept` as it was.
        let mut grads = random_grads(&layer, 1, 1.0);
        let layer = adamw.step(layer, &mut grads, 0.1);
        assert_eq!(weight_and_bias(&kept), kept_values);
        assert_ne!(weight_and_bias(&layer).0, kept_values.0);
        drop(kept);
        // Now nothing else holds the weights: updated where they lie.
        let before = weight_ptr(&layer);
        let values = weight_and_bias(&layer).0;
        let mut grads = random_grads(&layer, 2, 1.0);
        let layer = adamw.step(layer, &mut grads, 0.1);
        assert_eq!(weight_ptr(&layer), before);
        assert_ne!(weight_and_bias(&layer).0, values);
    }
}
