//! The chunked target log-probs in training, on the quickstart's model (workflows/models/
//! tiny-arith: a Llama whose LM head is its embedding matrix, vocabulary 152, random weights):
//! a DPOP loss over a padded pair batch and an SFT loss over packed rows, computed through the
//! composed path (`forward_logits` → `token_logps`) and through `model_token_logps`, must give
//! every parameter the same gradient (1e-5 of that parameter's largest gradient, f32), with and
//! without gradient checkpointing, and `AdamW` steps from them the same weights.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::optim::SgdConfig;
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::tiny_arith;
use erebor_model::{CausalLm, ModelConfig};
use erebor_train::batch::{PairExample, SftExample, TokenBatch, pack, packed_batch, pair_batch};
use erebor_train::logps::{
    BatchTensors, forward_logits, model_token_logps, read_f32, sequence_logps, token_logps,
};
use erebor_train::losses::{PairLogps, PreferenceLossKind, PreferenceObjective};
use erebor_train::optim::{AdamW, AdamWConfig};

/// The two ways of computing the target log-probs.
#[derive(Clone, Copy, Debug)]
enum LogpsPath {
    /// Full logits, then an f32 log-softmax and a gather, all through Burn's autodiff.
    Composed,
    /// `model_token_logps`: chunks of positions with the handwritten backward.
    Chunked,
}

fn token_logps_by(path: LogpsPath, model: &CausalLm, batch: &TokenBatch) -> (Tensor<2>, Tensor<2>) {
    let tensors = BatchTensors::new(batch, &model.device());
    let logps = match path {
        LogpsPath::Composed => token_logps(
            forward_logits(model, batch, &tensors).unwrap(),
            tensors.targets.clone(),
        ),
        LogpsPath::Chunked => model_token_logps(model, batch, &tensors).unwrap(),
    };
    (logps, tensors.mask)
}

fn tiny_arith_model(device: &Device) -> CausalLm {
    let config = ModelConfig::from_dir(tiny_arith()).unwrap();
    assert!(
        config.tie_word_embeddings,
        "the quickstart's model ties its LM head"
    );
    CausalLm::random(&config, 1, 0.02, device, DType::F32)
}

/// Pairs of different lengths (the batch pads the shorter rows), one chosen answer a prefix of
/// its rejected one.
fn pairs() -> Vec<PairExample> {
    let pair = |prompt: &[u32], chosen: &[u32], rejected: &[u32]| PairExample {
        prompt_ids: prompt.to_vec(),
        chosen_ids: chosen.to_vec(),
        rejected_ids: rejected.to_vec(),
    };
    vec![
        pair(&[2, 40, 41, 42, 43, 44], &[50, 51, 52, 3], &[50, 61, 52, 3]),
        pair(&[2, 70, 71], &[80, 81, 82, 83, 84, 85, 86, 3], &[80, 91, 3]),
        pair(
            &[2, 100, 101, 102, 103],
            &[110, 111],
            &[110, 111, 112, 113, 3],
        ),
        pair(
            &[2, 120],
            &[130, 131, 132, 3],
            &[140, 141, 142, 143, 144, 3],
        ),
    ]
}

/// Reference log-probs: the policy's own minus and plus 0.5 nats in turn, so that half of the
/// pairs have a DPOP penalty (and its λ-weighted gradient) and half have none.
fn references(model: &CausalLm, pairs: &[PairExample]) -> Vec<f32> {
    let refs: Vec<&PairExample> = pairs.iter().collect();
    let (logps, mask) = token_logps_by(LogpsPath::Composed, model, &pair_batch(&refs, 8));
    let sums = read_f32(sequence_logps(logps, mask).detach(), "sums").unwrap();
    sums.iter()
        .enumerate()
        .map(|(i, s)| s + if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect()
}

/// DPOP (λ = 50, β = 0.2, the quickstart's) over the pairs, plus the mean token log-prob, so
/// the log-probs feed two consumers (sequence sums and a per-token term) as in training.
fn dpop_loss(path: LogpsPath, model: &CausalLm, pairs: &[PairExample], refs: &[f32]) -> Tensor<1> {
    let device = model.device();
    let n = pairs.len();
    let batch = pair_batch(&pairs.iter().collect::<Vec<_>>(), 8);
    let (logps, mask) = token_logps_by(path, model, &batch);
    let sums = sequence_logps(logps.clone(), mask.clone());
    let constant =
        |values: &[f32]| Tensor::<1>::from_data(TensorData::new(values.to_vec(), [n]), &device);
    let objective = PreferenceObjective {
        kind: PreferenceLossKind::Dpop,
        beta: 0.2,
        lambda: 50.0,
    };
    let output = objective.loss(&PairLogps {
        policy_chosen: sums.clone().narrow(0, 0, n),
        policy_rejected: sums.narrow(0, n, n),
        reference_chosen: constant(&refs[..n]),
        reference_rejected: constant(&refs[n..]),
    });
    let per_token = (logps * mask.clone()).sum() / mask.sum();
    output.per_pair.sum() - per_token.mul_scalar(0.1)
}

/// Summed target NLL of packed SFT rows (two rows, three examples, one padded).
fn sft_loss(path: LogpsPath, model: &CausalLm) -> Tensor<1> {
    let example = |ids: &[u32], first_target: usize| SftExample {
        input_ids: ids.to_vec(),
        is_target: (0..ids.len()).map(|i| i >= first_target).collect(),
    };
    let examples = vec![
        example(&[2, 10, 11, 12, 13, 3], 2),
        example(&[2, 20, 21, 3], 1),
        example(&[2, 30, 31, 32, 33, 34, 35, 36, 37, 3], 4),
    ];
    let rows = pack(&examples, 12);
    assert_eq!(rows.len(), 2, "two packed rows");
    let batch = packed_batch(&rows.iter().collect::<Vec<_>>(), 8);
    let (logps, mask) = token_logps_by(path, model, &batch);
    (logps * mask).sum().neg()
}

/// Flattened f32 values of every parameter, or of every parameter's gradient, by module path.
struct ByPath<'a> {
    grads: Option<&'a GradientsParams>,
    path: Vec<String>,
    out: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for ByPath<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = match self.grads {
            Some(grads) => grads.get::<D>(param.id),
            None => Some(param.val()),
        };
        let name = self.path.join(".");
        let tensor = tensor.unwrap_or_else(|| panic!("{name}: no gradient"));
        let n = tensor.shape().num_elements();
        let values = read_f32(tensor.cast(DType::F32).reshape([n]), &name).unwrap();
        self.out.push((name, values));
    }
}

fn by_path(model: &CausalLm, grads: Option<&GradientsParams>) -> Vec<(String, Vec<f32>)> {
    let mut visitor = ByPath {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

/// Asserts that each named tensor of `got` is within `tolerance` of the largest magnitude of
/// the same tensor in `want`.
fn assert_close_by_path(
    what: &str,
    got: &[(String, Vec<f32>)],
    want: &[(String, Vec<f32>)],
    tolerance: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: tensors");
    for ((name, got), (want_name, want)) in got.iter().zip(want) {
        assert_eq!(name, want_name);
        let scale = want.iter().fold(0f32, |m, w| m.max(w.abs()));
        assert!(scale > 0.0, "{what} {name}: all zero");
        let (worst, at) = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .enumerate()
            .fold(
                (0f32, 0),
                |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) },
            );
        assert!(
            worst <= tolerance * scale,
            "{what} {name}[{at}]: {} vs {} (largest {scale}, tolerance {tolerance})",
            got[at],
            want[at]
        );
    }
}

fn gradients(model: &CausalLm, loss: &Tensor<1>) -> GradientsParams {
    GradientsParams::from_grads(loss.backward(), model)
}

fn check_gradients(device: &Device) {
    let model = tiny_arith_model(device);
    let pairs = pairs();
    let refs = references(&model, &pairs);
    let losses: [(&str, &dyn Fn(LogpsPath) -> Tensor<1>); 2] = [
        ("dpop", &|path| dpop_loss(path, &model, &pairs, &refs)),
        ("sft", &|path| sft_loss(path, &model)),
    ];
    for (what, loss) in losses {
        let want = gradients(&model, &loss(LogpsPath::Composed));
        let got = gradients(&model, &loss(LogpsPath::Chunked));
        assert_close_by_path(
            &format!("{what} gradient"),
            &by_path(&model, Some(&got)),
            &by_path(&model, Some(&want)),
            1e-5,
        );
    }
}

#[test]
fn every_parameter_gets_the_composed_gradient_from_dpop_and_sft_losses() {
    check_gradients(&Device::flex().autodiff());
}

#[test]
fn every_parameter_gets_the_composed_gradient_under_gradient_checkpointing() {
    check_gradients(&Device::flex().autodiff().gradient_checkpointing());
}

/// How one training step updates the weights.
#[derive(Clone, Copy)]
enum Update {
    /// Plain gradient descent: the new weights are a smooth function of the gradients.
    Sgd,
    /// The trainer's `AdamW` (the quickstart's DPOP settings) on the loss scaled by the factor.
    AdamW(f64),
}

/// Learning rate of the gradient-descent steps: small, as the DPOP loss's gradients are large
/// (λ = 50 on summed log-probs), but enough to move the weights by more than 1% (asserted).
const SGD_LR: f64 = 5e-5;

/// The weights after `steps` updates on the DPOP loss computed through `path`.
fn trained(path: LogpsPath, update: Update, steps: usize) -> Vec<(String, Vec<f32>)> {
    let mut model = tiny_arith_model(&Device::flex().autodiff());
    let pairs = pairs();
    let refs = references(&model, &pairs);
    let mut sgd = SgdConfig::new().init();
    let mut adamw = AdamW::new(AdamWConfig {
        weight_decay: 0.01,
        ..AdamWConfig::default()
    });
    for _ in 0..steps {
        let loss = dpop_loss(path, &model, &pairs, &refs);
        model = match update {
            Update::Sgd => sgd.step(SGD_LR, model.clone(), gradients(&model, &loss)),
            Update::AdamW(scale) => {
                let mut grads = gradients(&model, &loss.mul_scalar(scale));
                adamw.step(model, &mut grads, 1.5e-3)
            }
        };
    }
    by_path(&model, None)
}

/// The largest difference between `got` and `want` over all tensors, each relative to the
/// largest magnitude of its tensor in `want`.
fn largest_relative_difference(got: &[(String, Vec<f32>)], want: &[(String, Vec<f32>)]) -> f32 {
    got.iter()
        .zip(want)
        .map(|((_, got), (_, want))| {
            let scale = want.iter().fold(0f32, |m, w| m.max(w.abs()));
            let worst = got
                .iter()
                .zip(want)
                .map(|(g, w)| (g - w).abs())
                .fold(0f32, f32::max);
            worst / scale
        })
        .fold(0f32, f32::max)
}

#[test]
fn gradient_descent_steps_on_either_path_give_the_same_weights() {
    let composed = trained(LogpsPath::Composed, Update::Sgd, 3);
    let moved =
        largest_relative_difference(&composed, &trained(LogpsPath::Composed, Update::Sgd, 0));
    assert!(moved > 0.01, "the steps barely moved the weights ({moved})");
    assert_close_by_path(
        "weights after 3 SGD steps",
        &trained(LogpsPath::Chunked, Update::Sgd, 3),
        &composed,
        1e-5,
    );
}

/// `AdamW` divides each gradient element by its own running magnitude, so an element whose
/// gradient is rounding noise (near zero) takes a step of up to the learning rate whatever its
/// size: the weights after a few steps move with the last bits of the gradients, not only with
/// their values. Measured here: scaling the loss by 1 + 1e-6 (which `AdamW` is invariant to up to
/// rounding) moves them by about 2.5e-3 of a tensor's largest weight. The chunked path's
/// gradients round differently from the composed path's, and its weights must stay within the
/// same order as that: a real error in a gradient would move them by far more.
#[test]
fn adamw_steps_on_either_path_differ_only_as_rounding_does() {
    let steps = 3;
    let composed = trained(LogpsPath::Composed, Update::AdamW(1.0), steps);
    let rescaled = trained(LogpsPath::Composed, Update::AdamW(1.0 + 1e-6), steps);
    let chunked = trained(LogpsPath::Chunked, Update::AdamW(1.0), steps);
    let rounding = largest_relative_difference(&rescaled, &composed);
    let chunking = largest_relative_difference(&chunked, &composed);
    assert!(
        rounding > 1e-4,
        "AdamW amplified the rescaling by only {rounding}"
    );
    assert!(
        chunking <= 10.0 * rounding,
        "chunked vs composed {chunking}, rounding alone {rounding}"
    );
}
