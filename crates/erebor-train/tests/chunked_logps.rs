//! The chunked target log-probs (`logps::model_token_logps`) against the composed path
//! (`forward_logits` → `token_logps`) on the hf-tiny models (llama and mistral with their own
//! LM head, qwen2 tied to the embeddings), on the test device (`EREBOR_TEST_DEVICE`, e.g.
//! `tch-cpu`): the log-probs and the gradient of every parameter, in f32 and in bf16-mixed.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};
use common::{hf_tiny_fixtures, test_device};
use erebor_model::{CausalLm, Checkpoint};
use erebor_train::batch::{PairExample, pair_batch};
use erebor_train::logps::{
    BatchTensors, compute_view, forward_logits, model_token_logps, read_f32, token_logps,
};

/// Gradients by parameter path, flattened.
struct GradsByPath<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    out: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for GradsByPath<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let n = grad.shape().num_elements();
            let values = read_f32(grad.cast(DType::F32).reshape([n]), "grad").unwrap();
            self.out.push((self.path.join("."), values));
        }
    }
}

/// Token log-probs `[rows × seq]` and every parameter's gradient of `Σ w · logps · mask`.
fn run(
    model: &CausalLm,
    pairs: &[PairExample],
    compute: Option<DType>,
    chunked: bool,
) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    let device = model.device();
    let refs: Vec<&PairExample> = pairs.iter().collect();
    let batch = pair_batch(&refs, 8);
    let tensors = BatchTensors::new(&batch, &device);
    let cast = compute_view(model, compute);
    let view = cast.as_ref().unwrap_or(model);
    let logps = if chunked {
        model_token_logps(view, &batch, &tensors).unwrap()
    } else {
        token_logps(
            forward_logits(view, &batch, &tensors).unwrap(),
            tensors.targets.clone(),
        )
    };
    let [rows, seq] = logps.dims();
    // Distinct upstream gradients per position, as a preference loss gives.
    let weights: Vec<f32> = (0..rows * seq)
        .map(|i| 1.0 - 0.13 * (i % 7) as f32)
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [rows, seq]), &device);
    let loss = (logps.clone() * tensors.mask.clone() * weights).sum();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let mut visitor = GradsByPath {
        grads: &grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    let values = read_f32(logps.detach().reshape([rows * seq]), "logps").unwrap();
    (values, visitor.out)
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * scale,
            "{what}[{i}]: {g} vs {w} (tolerance {tolerance} × {scale})"
        );
    }
}

fn pairs() -> Vec<PairExample> {
    let prompt: Vec<u32> = (1..9).collect();
    vec![
        PairExample {
            prompt_ids: prompt.clone(),
            chosen_ids: vec![11, 12, 13, 14, 15],
            rejected_ids: vec![11, 22, 23],
        },
        PairExample {
            prompt_ids: prompt[..5].to_vec(),
            chosen_ids: vec![31, 32, 33, 34, 35, 36, 37],
            rejected_ids: vec![41, 42, 43, 44],
        },
    ]
}

fn compare(compute: Option<DType>, tolerance: f32) {
    let Some(dir) = hf_tiny_fixtures() else {
        return;
    };
    let device = test_device().autodiff();
    for arch in ["llama", "mistral", "qwen2"] {
        let model = Checkpoint::load(dir.join(arch).join("policy"), &device, DType::F32)
            .unwrap()
            .model;
        let (want_logps, want_grads) = run(&model, &pairs(), compute, false);
        let (got_logps, got_grads) = run(&model, &pairs(), compute, true);
        assert_close(&format!("{arch} logps"), &got_logps, &want_logps, tolerance);
        assert_eq!(
            got_grads.len(),
            want_grads.len(),
            "{arch}: parameters with a gradient"
        );
        for ((path, got), (want_path, want)) in got_grads.iter().zip(&want_grads) {
            assert_eq!(path, want_path);
            assert_close(&format!("{arch} ∂{path}"), got, want, tolerance);
        }
    }
}

#[test]
fn f32_log_probs_and_gradients_match_the_composed_path() {
    compare(None, 1e-6);
}

#[test]
fn bf16_mixed_log_probs_and_gradients_match_the_composed_path() {
    // Both paths round the logits and the logits' gradient to bf16 (8-bit mantissa, 2^-8
    // relative); the head's gradient is summed over chunks in f32 where the composed matmul
    // rounds once. Differences stay within a few bf16 roundings of the largest value.
    compare(Some(DType::BF16), 2e-2);
}
