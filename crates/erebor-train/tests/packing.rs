//! Packed SFT rows: each example's log-probs inside a packed row equal those of the example run
//! alone (positions restart, attention stays within the example), and a packed SFT step trains.

mod common;

use burn::tensor::{DType, Device};
use common::*;
use erebor_core::{CancelToken, MemorySink, StepKind};
use erebor_model::{CausalLm, ModelConfig};
use erebor_train::TrainStepKind;
use erebor_train::batch::{SftExample, pack, packed_batch, sft_batch};
use erebor_train::logps::{BatchTensors, forward_logits, read_f32, token_logps};
use serde_json::json;

fn example(ids: &[u32], first_target: usize) -> SftExample {
    SftExample {
        input_ids: ids.to_vec(),
        is_target: (0..ids.len()).map(|i| i >= first_target).collect(),
    }
}

#[test]
fn packed_examples_score_as_if_alone() {
    let device = Device::flex().autodiff();
    let config = ModelConfig::from_dir(tiny_arith()).unwrap();
    let model = CausalLm::random(&config, 3, 0.02, &device, DType::F32);
    let examples = vec![
        example(&[2, 10, 11, 12, 13, 3], 2),
        example(&[2, 20, 21, 3], 1),
        example(&[2, 30, 31, 32, 33, 34, 35, 3], 4),
    ];
    let packed = pack(&examples, 32);
    assert_eq!(packed.len(), 1);
    let batch = packed_batch(&[&packed[0]], 1);
    let tensors = BatchTensors::new(&batch, &device);
    let logits = forward_logits(&model, &batch, &tensors).unwrap();
    let packed_logps = read_f32(token_logps(logits, tensors.targets.clone()), "packed").unwrap();

    let mut offset = 0;
    for example in &examples {
        let alone = sft_batch(&[example], 1);
        let tensors = BatchTensors::new(&alone, &device);
        let logits = forward_logits(&model, &alone, &tensors).unwrap();
        let single = read_f32(token_logps(logits, tensors.targets.clone()), "alone").unwrap();
        // Within the example (its last position predicts across the boundary and is masked).
        for t in 0..example.input_ids.len() - 1 {
            let (a, b) = (packed_logps[offset + t], single[t]);
            assert!(
                (a - b).abs() < 1e-5,
                "position {t} of an example at offset {offset}: {a} vs {b}"
            );
            assert_eq!(batch.loss_mask[offset + t] > 0.0, example.is_target[t + 1]);
        }
        offset += example.input_ids.len();
    }
}

#[test]
fn a_packed_sft_step_trains() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_sft_dataset(&data, &[("train", addition_rows(48, 0))]);
    let with = json!({
        "model": tiny_arith(), "init": "random", "dataset": data, "lr": 3e-3, "packing": true,
        "max_seq_len": 256, "batch_size": 2, "max_steps": 12, "seed": 1
    });
    let sink = MemorySink::new();
    TrainStepKind::SFT
        .run(&context(
            with,
            &dir.path().join("w"),
            &dir.path().join("c"),
            &sink,
            CancelToken::new(),
        ))
        .unwrap();
    let losses = sink.series("train/loss");
    assert_eq!(losses.len(), 12);
    assert!(losses[11].1 < losses[0].1 * 0.7, "{losses:?}");
}
