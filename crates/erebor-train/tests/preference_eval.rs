//! The preference objective's held-out evaluation: deterministic with LoRA dropout on the
//! training device, and `chosen_after_edit` over the pairs that have tokens after the edit.

mod common;

use burn::tensor::{DType, Distribution, Tensor};
use common::tiny_arith;
use erebor_model::lora::{LoraConfig, apply_lora};
use erebor_model::{CausalLm, ModelConfig};
use erebor_train::batch::PairExample;
use erebor_train::losses::{PreferenceLossKind, PreferenceObjective};
use erebor_train::preference::{
    CHOSEN_AFTER_EDIT, CHOSEN_AFTER_EDIT_SKIPPED, PairObjective, PairUnit,
};
use erebor_train::trainer::Objective;

/// Serialises seeding and drawing from the flex device's random stream across test threads.
static DEVICE_STREAM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The tiny-arith model on the autodiff device with LoRA adapters of `dropout` whose `B` is
/// drawn at random (non-zero, so dropout changes the output), the same for every `dropout`.
fn adapted_model(dropout: f64) -> CausalLm {
    // The device's random stream is shared by every test thread of this binary: hold the lock
    // over every seed and draw, or another test's draws interleave and the weights differ.
    let _stream = DEVICE_STREAM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = ModelConfig::from_dir(tiny_arith()).unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let model = CausalLm::random(&config, 5, 0.02, &device, DType::F32);
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout,
        target_modules: vec!["all-linear".into()],
    };
    let mut model = apply_lora(model, &lora, 7).unwrap();
    device.seed(11);
    for (_, linear) in model.linear_layers_mut() {
        if let Some(adapter) = linear.lora.as_mut() {
            let shape = adapter.b.val().shape();
            let b = Tensor::<2>::random(shape, Distribution::Normal(0.0, 0.5), &device);
            adapter.b = burn::module::Param::from_tensor(b);
        }
    }
    model
}

fn unit(prompt: &[u32], chosen: &[u32], rejected: &[u32]) -> PairUnit {
    PairUnit {
        pair: PairExample {
            prompt_ids: prompt.to_vec(),
            chosen_ids: chosen.to_vec(),
            rejected_ids: rejected.to_vec(),
        },
        reference_chosen: -20.0,
        reference_rejected: -21.0,
    }
}

fn objective(units: Vec<PairUnit>) -> PairObjective {
    PairObjective::new(
        PreferenceObjective {
            kind: PreferenceLossKind::Dpop,
            beta: 0.3,
            lambda: 50.0,
        },
        units,
        2,
    )
}

fn eval_units() -> Vec<PairUnit> {
    vec![
        unit(&[1, 5, 9, 4], &[7, 8, 3, 2], &[7, 6, 3, 2]),
        unit(&[2, 6, 4], &[10, 11, 2], &[12, 11, 5, 2]),
        unit(&[3, 3, 8, 1, 5], &[9, 4, 2], &[9, 4, 6, 6, 2]),
    ]
}

#[test]
fn held_out_evaluation_runs_with_lora_dropout_off() {
    let with_dropout = adapted_model(0.5);
    let without = adapted_model(0.0);
    let mut objective = objective(eval_units());
    let first = objective.evaluate(&with_dropout).unwrap();
    let second = objective.evaluate(&with_dropout).unwrap();
    let reference = objective.evaluate(&without).unwrap();
    assert!(!first.is_empty());
    assert_eq!(first, second, "evaluation is not deterministic");
    assert_eq!(first, reference, "dropout changed held-out metrics");
}

fn metric(values: &[(String, f64)], key: &str) -> Option<f64> {
    values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

#[test]
fn pairs_with_no_chosen_token_after_the_edit_are_skipped_and_counted() {
    let model = adapted_model(0.0);
    let normal = eval_units();
    // The chosen answer a prefix of the rejected one, and two identical answers (an edit
    // truncated away): no chosen token after the edit.
    let mut with_empty = normal.clone();
    with_empty.insert(1, unit(&[4, 4, 1], &[7, 8], &[7, 8, 3, 2]));
    with_empty.push(unit(&[5, 2], &[9, 9, 2], &[9, 9, 2]));
    let normal_values = objective(normal).evaluate(&model).unwrap();
    let values = objective(with_empty).evaluate(&model).unwrap();
    let after_edit = CHOSEN_AFTER_EDIT;
    let expected = metric(&normal_values, after_edit).unwrap();
    let got = metric(&values, after_edit).unwrap();
    assert!(expected < 0.0);
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    assert_eq!(metric(&values, CHOSEN_AFTER_EDIT_SKIPPED), Some(2.0));
    assert_eq!(metric(&normal_values, CHOSEN_AFTER_EDIT_SKIPPED), Some(0.0));
    // Only such pairs: no mean at all, rather than a made-up 0.
    let only_empty = vec![unit(&[4, 4, 1], &[7, 8], &[7, 8, 3, 2])];
    let values = objective(only_empty).evaluate(&model).unwrap();
    assert_eq!(metric(&values, after_edit), None);
    assert_eq!(metric(&values, CHOSEN_AFTER_EDIT_SKIPPED), Some(1.0));
}

#[test]
fn ipo_divides_each_sequence_by_its_completion_length() {
    let model = adapted_model(0.0);
    // One pair with completions of 4 and 5 tokens.
    let pair = unit(&[1, 5, 9], &[7, 8, 3, 2], &[7, 6, 3, 4, 2]);
    let beta = 0.3;
    let with = |kind| {
        let mut objective = objective(vec![pair.clone()]);
        objective.objective = PreferenceObjective {
            kind,
            beta,
            lambda: 50.0,
        };
        objective.evaluate(&model).unwrap()
    };
    // DPO's statistics are the summed log-probs.
    let dpo = with(PreferenceLossKind::Dpo);
    let pc = metric(&dpo, "eval/logps/chosen").unwrap();
    let pr = metric(&dpo, "eval/logps/rejected").unwrap();
    let (rc, rr) = (
        f64::from(pair.reference_chosen),
        f64::from(pair.reference_rejected),
    );
    let (nc, nr) = (4.0, 5.0);
    let logits = (pc / nc - pr / nr) - (rc / nc - rr / nr);
    let want = (logits - 1.0 / (2.0 * beta)).powi(2);
    let ipo = with(PreferenceLossKind::Ipo);
    let got = metric(&ipo, "eval/loss").unwrap();
    assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
    // IPO reports the per-token log-probs its loss saw, as TRL does.
    let chosen = metric(&ipo, "eval/logps/chosen").unwrap();
    assert!((chosen - pc / nc).abs() < 1e-5, "{chosen} vs {}", pc / nc);
}
