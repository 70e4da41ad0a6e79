use super::*;
use crate::optim::{AdamW, AdamWConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::DType;

fn state(step: u64) -> TrainerState {
    TrainerState {
        format_version: CHECKPOINT_FORMAT_VERSION,
        step,
        total_steps: 10,
        epoch: 0,
        step_in_epoch: step,
        rng: RngState { seed: 7, stream: 0 },
        schedule: LrSchedule {
            peak: 1e-3,
            warmup_steps: 2,
            total_steps: 10,
            decay: crate::schedule::LrDecay::Cosine,
        },
        fingerprint: "abc".into(),
        precision: "f32".into(),
        last_loss: 0.5,
    }
}

fn trained_layer(device: &Device) -> (Linear, AdamW) {
    trained_layer_in(device, DType::F32)
}

/// A layer with parameters in `dtype` after one `AdamW` step (moments in `dtype` too).
fn trained_layer_in(device: &Device, dtype: DType) -> (Linear, AdamW) {
    let cast = |t: Tensor<2>| t.cast(dtype).detach().require_grad();
    let mut layer = LinearConfig::new(3, 2).init(device);
    layer.weight = layer.weight.map(cast);
    layer.bias = layer
        .bias
        .map(|b| b.map(|t| t.cast(dtype).detach().require_grad()));
    let input = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], device).cast(dtype);
    let grads = GradientsParams::from_grads(layer.forward(input).sum().backward(), &layer);
    let mut adamw = AdamW::new(AdamWConfig::default());
    let mut grads = grads;
    let layer = adamw.step(layer, &mut grads, 0.01);
    (layer, adamw)
}

#[test]
fn a_checkpoint_restores_weights_moments_and_state_exactly() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let (layer, adamw) = trained_layer(&device);
    let path = save_checkpoint(dir.path(), &layer, adamw.states(), &state(3), 2).unwrap();
    assert_eq!(path.file_name().unwrap(), "step-00000003");

    let fresh = LinearConfig::new(3, 2).init(&device);
    let loaded = load_checkpoint(&path, fresh, &device).unwrap();
    assert_eq!(loaded.state, state(3));
    assert_eq!(
        module_tensors(&loaded.module).unwrap(),
        module_tensors(&layer).unwrap()
    );
    assert!(loaded.module.weight.val().is_require_grad());
    assert_eq!(loaded.moments.len(), 2);
    let want = adamw.states()["weight"].to_host("weight").unwrap();
    let got = loaded.moments["weight"].to_host("weight").unwrap();
    assert_eq!(got.step, want.step);
    assert_eq!(got.exp_avg, want.exp_avg);
    assert_eq!(got.exp_avg_sq, want.exp_avg_sq);
}

#[test]
fn only_the_newest_checkpoints_are_kept_and_leftovers_are_cleaned() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let (layer, adamw) = trained_layer(&device);
    // A half-written checkpoint of a killed attempt.
    std::fs::create_dir_all(dir.path().join(".tmp-step-00000009-1")).unwrap();
    for step in [2, 4, 6] {
        save_checkpoint(dir.path(), &layer, adamw.states(), &state(step), 2).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["step-00000004", "step-00000006"]);
    assert_eq!(
        latest_checkpoint(dir.path()).unwrap().unwrap(),
        dir.path().join("step-00000006")
    );
    assert_eq!(latest_checkpoint(&dir.path().join("none")).unwrap(), None);
}

#[test]
fn a_checkpoint_of_another_model_is_refused_naming_the_tensor() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let (layer, adamw) = trained_layer(&device);
    let path = save_checkpoint(dir.path(), &layer, adamw.states(), &state(1), 1).unwrap();
    let other = LinearConfig::new(4, 2).init(&device);
    let error = load_checkpoint(&path, other, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("`weight` has shape [3, 2] in the checkpoint, [4, 2] in the model"),
        "{error}"
    );
    std::fs::write(path.join("state.json"), "{\"step\": 1").unwrap();
    let fresh = LinearConfig::new(3, 2).init(&device);
    let error = load_checkpoint(&path, fresh, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("state.json"), "{error}");
}

#[test]
fn moments_of_bf16_parameters_are_loaded_as_bf16() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let (layer, adamw) = trained_layer_in(&device, DType::BF16);
    assert_eq!(adamw.states()["weight"].exp_avg.dtype(), DType::BF16);
    let path = save_checkpoint(dir.path(), &layer, adamw.states(), &state(1), 2).unwrap();

    let (fresh, _) = trained_layer_in(&device, DType::BF16);
    let loaded = load_checkpoint(&path, fresh, &device).unwrap();
    assert_eq!(loaded.module.weight.val().dtype(), DType::BF16);
    for key in ["weight", "bias"] {
        let moments = &loaded.moments[key];
        assert_eq!(moments.exp_avg.dtype(), DType::BF16, "{key}");
        assert_eq!(moments.exp_avg_sq.dtype(), DType::BF16, "{key}");
        let want = adamw.states()[key].to_host(key).unwrap();
        let got = moments.to_host(key).unwrap();
        assert_eq!(got.exp_avg, want.exp_avg, "{key}");
        assert_eq!(got.exp_avg_sq, want.exp_avg_sq, "{key}");
    }
}
