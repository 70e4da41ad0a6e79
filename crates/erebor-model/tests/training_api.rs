//! What training needs from the model: a Burn module whose parameters burn-optim's `AdamW`
//! updates, gradients through `sequence_logprobs`, and per-layer gradient checkpointing that
//! gives the same gradients as keeping every activation.

mod common;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::{ids, json, shared};
use erebor_model::{Checkpoint, sequence_logprobs, training_device};

fn batch(r: &serde_json::Value, device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let rows: Vec<Vec<u32>> = r["pairs"]["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    let p = usize::try_from(r["pairs"]["prompt_len"].as_u64().unwrap()).unwrap();
    let (b, s) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| i64::from(x)).collect();
    let mask: Vec<f32> = (0..b)
        .flat_map(|_| (0..s).map(move |t| f32::from(u8::from(t >= p))))
        .collect();
    (
        Tensor::from_data(TensorData::new(flat, [b, s]), device),
        Tensor::from_data(TensorData::new(mask, [b, s]), device),
    )
}

#[test]
fn gradient_checkpointing_gives_the_same_gradients() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let r = json(&dir.join("reference.json"));
    let mut grads_by_mode = Vec::new();
    for checkpointing in [false, true] {
        let device = training_device(common::device(), checkpointing);
        let want = if checkpointing {
            "Some(Balanced)"
        } else {
            "Some(Disabled)"
        };
        assert_eq!(
            format!("{:?}", device.gradient_checkpointing_strategy()),
            want
        );
        let model = Checkpoint::load(&dir, &device, DType::F32).unwrap().model;
        let (ids_t, mask) = batch(&r, &device);
        let loss = sequence_logprobs(model.forward(ids_t.clone()), ids_t, mask)
            .sum()
            .neg();
        let grads = loss.backward();
        let g: Vec<f32> = model.layers[1]
            .mlp
            .down_proj
            .weight
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        grads_by_mode.push(g);
    }
    let d = grads_by_mode[0]
        .iter()
        .zip(&grads_by_mode[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(d < 1e-6, "checkpointed gradients differ by {d}");
    assert!(grads_by_mode[0].iter().any(|x| *x != 0.0));
}

#[test]
fn adamw_steps_lower_the_sft_loss() {
    let Some(dir) = shared("fixtures/hf-tiny/qwen2") else {
        return;
    };
    let r = json(&dir.join("reference.json"));
    let device = training_device(common::device(), false);
    let mut model = Checkpoint::load(&dir, &device, DType::F32).unwrap().model;
    assert_eq!(model.num_params(), model.config().num_parameters());
    let (ids_t, mask) = batch(&r, &device);
    let mut optim = AdamWConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let loss = sequence_logprobs(model.forward(ids_t.clone()), ids_t.clone(), mask.clone())
            .mean()
            .neg();
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    assert!(
        losses[2] < losses[1] && losses[1] < losses[0],
        "losses {losses:?}"
    );
}
