//! The fused attention of the LibTorch build (torch's `scaled_dot_product_attention`, with
//! torch's own backward under autodiff) against the composed path (Burn's matmuls and softmax
//! with an additive bias) on the same LibTorch device and weights: logits with right and left
//! padding, KV-cache decoding, a sliding window shorter than the sequence and packed segments,
//! and the gradients of a log-prob loss in every parameter, with and without Burn's gradient
//! checkpointing. f32 throughout: logits within 1e-5, gradients within 1e-5 of the largest
//! gradient of their tensor (at least 1e-5 absolute).
//!
//! Runs on `$EREBOR_TEST_DEVICE` when it names a LibTorch device (`tch-cpu`, `cuda:N`), else on
//! `tch-cpu`: never on flex, where both paths are the same code.
#![cfg(feature = "tch")]

mod common;

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{DType, Device, Gradients, Int, Tensor, TensorData};
use common::{shared, values_f64};
use erebor_model::model::{AttentionPath, with_attention_path};
use erebor_model::{
    CausalLm, Checkpoint, DeviceSpec, KvCache, TokenBatch, sequence_logprobs, training_device,
};

/// The LibTorch device the tests run on.
fn tch_device() -> Device {
    let name = std::env::var("EREBOR_TEST_DEVICE").unwrap_or_default();
    let spec = match name.parse::<DeviceSpec>() {
        Ok(spec @ (DeviceSpec::TchCpu | DeviceSpec::Cuda(_))) => spec,
        _ => DeviceSpec::TchCpu,
    };
    spec.device().expect("a LibTorch device")
}

/// The in-repo Mistral fixture with a sliding window of 4 (transformers' reference in
/// `parity_hf_extra.rs`).
fn mistral_sliding() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-extra/mistral-sliding")
}

fn load(dir: &Path, device: &Device) -> CausalLm {
    Checkpoint::load(dir, device, DType::F32).unwrap().model
}

/// `f()` on the fused path, then on the composed path.
fn both<T>(f: impl Fn() -> T) -> (T, T) {
    (
        with_attention_path(AttentionPath::Fused, &f),
        with_attention_path(AttentionPath::Composed, &f),
    )
}

/// Deterministic token ids below `vocab`, one row per length.
fn sequences(lengths: &[usize], vocab: usize, seed: usize) -> Vec<Vec<u32>> {
    lengths
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            (0..len)
                .map(|t| u32::try_from((t * 37 + row * 101 + seed * 13 + 5) % vocab).unwrap())
                .collect()
        })
        .collect()
}

/// Sequences padded on the left with positions starting at 0 at the first real token, as
/// generation pads prompts.
fn left_padded(seqs: &[Vec<u32>]) -> TokenBatch {
    let len = seqs.iter().map(Vec::len).max().unwrap();
    let mut batch = TokenBatch {
        ids: Vec::new(),
        valid: Vec::new(),
        positions: Vec::new(),
    };
    for s in seqs {
        let pad = len - s.len();
        batch.ids.push([vec![0; pad], s.clone()].concat());
        batch.valid.push((0..len).map(|i| i >= pad).collect());
        batch
            .positions
            .push((0..len).map(|i| i.saturating_sub(pad)).collect());
    }
    batch
}

/// The logits `[batch, seq, vocab]` at the valid positions of `batch`, row-major.
fn valid_logits(logits: Tensor<3>, batch: &TokenBatch) -> Vec<f64> {
    let [_, seq, vocab] = logits.dims();
    let values = values_f64(logits);
    let mut out = Vec::new();
    for (b, row) in batch.valid.iter().enumerate() {
        for (t, valid) in row.iter().enumerate() {
            if *valid {
                let start = (b * seq + t) * vocab;
                out.extend_from_slice(&values[start..start + vocab]);
            }
        }
    }
    out
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    assert!(!want.is_empty(), "{what}: nothing compared");
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| {
            if g.is_finite() {
                (g - w).abs()
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max);
    assert!(
        worst <= tolerance,
        "{what}: the paths differ by {worst} (tolerance {tolerance})"
    );
}

#[test]
fn right_and_left_padded_logits_match_the_composed_path() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let device = tch_device();
    let model = load(&dir, &device);
    let seqs = sequences(&[9, 4, 6], model.config().vocab_size, 1);
    for (what, batch) in [
        ("right padding", TokenBatch::right_padded(&seqs, 0)),
        ("left padding", left_padded(&seqs)),
    ] {
        let (fused, composed) = both(|| model.forward_batch(&batch, None));
        let all = values_f64(fused.clone());
        assert!(
            all.iter().all(|x| x.is_finite()),
            "{what}: NaN or inf in the logits"
        );
        assert_close(
            what,
            &valid_logits(fused, &batch),
            &valid_logits(composed, &batch),
            1e-5,
        );
    }
}

#[test]
fn kv_cache_decoding_matches_the_composed_path() {
    let Some(dir) = shared("fixtures/hf-tiny/qwen2") else {
        return;
    };
    let device = tch_device();
    let model = load(&dir, &device);
    let vocab = model.config().vocab_size;
    let prompts = left_padded(&sequences(&[7, 3], vocab, 2));
    let steps = sequences(&[4, 4], vocab, 3);
    let (fused, composed) = both(|| {
        let mut cache = KvCache::default();
        let mut logits = vec![valid_logits(
            model.forward_batch(&prompts, Some(&mut cache)),
            &prompts,
        )];
        for step in 0..4 {
            let batch = TokenBatch {
                ids: steps.iter().map(|row| vec![row[step]]).collect(),
                valid: vec![vec![true]; 2],
                positions: vec![vec![7 + step], vec![3 + step]],
            };
            let out = model.forward_batch(&batch, Some(&mut cache));
            let values = values_f64(out);
            assert!(
                values.iter().all(|x| x.is_finite()),
                "decode step {step}: NaN"
            );
            logits.push(values);
        }
        logits
    });
    for (step, (got, want)) in fused.iter().zip(&composed).enumerate() {
        assert_close(&format!("cache step {step}"), got, want, 1e-5);
    }
}

#[test]
fn a_sliding_window_shorter_than_the_sequence_matches_the_composed_path() {
    let dir = mistral_sliding();
    let device = tch_device();
    let model = load(&dir, &device);
    assert!(model.layers.iter().all(|l| l.self_attn.window == 4));
    let seqs = sequences(&[11, 7], model.config().vocab_size, 4);
    let batch = TokenBatch::right_padded(&seqs, 0);
    let (fused, composed) = both(|| model.forward_batch(&batch, None));
    assert_close(
        "window",
        &valid_logits(fused, &batch),
        &valid_logits(composed, &batch),
        1e-5,
    );
    // Decoding past the window with a KV cache.
    let prompts = left_padded(&seqs);
    let (fused, composed) = both(|| {
        let mut cache = KvCache::default();
        model.forward_batch(&prompts, Some(&mut cache));
        let batch = TokenBatch {
            ids: vec![vec![3], vec![4]],
            valid: vec![vec![true]; 2],
            positions: vec![vec![11], vec![7]],
        };
        values_f64(model.forward_batch(&batch, Some(&mut cache)))
    });
    assert_close("window, cached", &fused, &composed, 1e-5);
}

/// Every parameter's gradient, flattened, named by its position in the model.
fn parameter_grads(model: &CausalLm, grads: &Gradients) -> Vec<(String, Vec<f64>)> {
    fn grad<const D: usize>(
        name: String,
        param: &Param<Tensor<D>>,
        grads: &Gradients,
    ) -> (String, Vec<f64>) {
        let g = param
            .val()
            .grad(grads)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        (name, values_f64(g))
    }
    let mut out = vec![grad("embed_tokens".into(), &model.embed_tokens, grads)];
    for (i, layer) in model.layers.iter().enumerate() {
        let attn = &layer.self_attn;
        for (name, linear) in [
            ("q_proj", &attn.q_proj),
            ("k_proj", &attn.k_proj),
            ("v_proj", &attn.v_proj),
            ("o_proj", &attn.o_proj),
            ("gate_proj", &layer.mlp.gate_proj),
            ("up_proj", &layer.mlp.up_proj),
            ("down_proj", &layer.mlp.down_proj),
        ] {
            out.push(grad(
                format!("layers.{i}.{name}.weight"),
                &linear.weight,
                grads,
            ));
            if let Some(bias) = &linear.bias {
                out.push(grad(format!("layers.{i}.{name}.bias"), bias, grads));
            }
        }
        out.push(grad(
            format!("layers.{i}.input_layernorm"),
            &layer.input_layernorm.weight,
            grads,
        ));
    }
    out.push(grad("norm".into(), &model.norm.weight, grads));
    if let Some(head) = &model.lm_head {
        out.push(grad("lm_head".into(), &head.weight, grads));
    }
    out
}

/// Which forward a training check runs.
#[derive(Clone, Copy, Debug)]
enum Forward {
    /// `CausalLm::forward`: ids, causal (the training path; right padding is harmless).
    Causal,
    /// `forward_batch` of a left-padded batch (fully masked pad queries).
    LeftPadded,
    /// `packed_hidden`: two examples per row, segments and restarting positions.
    Packed,
}

/// The loss `−Σ log p(target)` over the real tokens and every parameter's gradient.
fn loss_and_grads(model: &CausalLm, forward: Forward) -> (f64, Vec<(String, Vec<f64>)>) {
    let device = model.device();
    let vocab = model.config().vocab_size;
    let seqs = sequences(&[12, 12, 12], vocab, 5);
    let (batch, seq) = (seqs.len(), seqs[0].len());
    let flat: Vec<i64> = seqs.iter().flatten().map(|&x| i64::from(x)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [batch, seq]), &device);
    let (logits, valid) = match forward {
        Forward::Causal => (model.forward(ids.clone()), vec![vec![true; seq]; batch]),
        Forward::LeftPadded => {
            let short = sequences(&[12, 5, 9], vocab, 5);
            let padded = left_padded(&short);
            let flat: Vec<i64> = padded.ids.iter().flatten().map(|&x| i64::from(x)).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [batch, seq]), &device);
            return finish(
                model,
                model.forward_batch(&padded, None),
                ids,
                &padded.valid,
            );
        }
        Forward::Packed => {
            let split = [5, 8, 3];
            let positions: Vec<Vec<usize>> = split
                .iter()
                .map(|&s| (0..seq).map(|t| if t < s { t } else { t - s }).collect())
                .collect();
            let segments: Vec<Vec<u32>> = split
                .iter()
                .map(|&s| (0..seq).map(|t| u32::from(t >= s)).collect())
                .collect();
            let hidden = model.packed_hidden(ids.clone(), &positions, segments);
            (model.lm_head_forward(hidden), vec![vec![true; seq]; batch])
        }
    };
    finish(model, logits, ids, &valid)
}

fn finish(
    model: &CausalLm,
    logits: Tensor<3>,
    ids: Tensor<2, Int>,
    valid: &[Vec<bool>],
) -> (f64, Vec<(String, Vec<f64>)>) {
    let [batch, seq] = ids.dims();
    // A target counts when it and the position predicting it are real tokens (the first real
    // token of a left-padded row is predicted from a padding position, whose output the two
    // paths define differently).
    let mask: Vec<f32> = valid
        .iter()
        .flat_map(|row| (0..seq).map(move |t| f32::from(u8::from(t > 0 && row[t] && row[t - 1]))))
        .collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, seq]), &ids.device());
    let loss = sequence_logprobs(logits, ids, mask).sum().neg();
    let value = f64::from(loss.clone().into_scalar::<f32>());
    let grads = loss.backward();
    (value, parameter_grads(model, &grads))
}

fn check_training(dir: &Path, forwards: &[Forward]) {
    for checkpointing in [false, true] {
        let device = training_device(tch_device(), checkpointing);
        let model = load(dir, &device);
        for &forward in forwards {
            let what = format!(
                "{} {forward:?}, checkpointing {checkpointing}",
                dir.display()
            );
            let ((loss, grads), (want_loss, want_grads)) = both(|| loss_and_grads(&model, forward));
            assert_close(
                &format!("{what}: loss"),
                &[loss],
                &[want_loss],
                1e-5 * want_loss.abs().max(1.0),
            );
            for ((name, got), (_, want)) in grads.iter().zip(&want_grads) {
                let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
                assert_close(&format!("{what}: d {name}"), got, want, 1e-5 * scale);
            }
        }
    }
}

#[test]
fn training_gradients_match_the_composed_path() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    check_training(
        &dir,
        &[Forward::Causal, Forward::LeftPadded, Forward::Packed],
    );
}

#[test]
fn training_gradients_with_a_sliding_window_match_the_composed_path() {
    check_training(&mistral_sliding(), &[Forward::Causal, Forward::Packed]);
}
