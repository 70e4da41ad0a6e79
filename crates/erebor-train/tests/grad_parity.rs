//! Log-probs, losses and embedding gradients of the real model against `PyTorch`
//! (`../shared/fixtures/hf-tiny/*/reference.json`, made by `make_fixtures.py` there).
//!
//! For each architecture the fixture holds a reference model (the folder) and a policy (./policy,
//! one SGD step away), two pairs sharing an 8-token prompt, and for each of DPO, DPOP, IPO and
//! `SLiC` the loss and the gradient of the input embedding: its norm and the row sums of the first
//! four tokens of pair 0. The policy's log-probs go through our forward, our f32 log-softmax and
//! our losses; the gradient comes from Burn's autodiff.

mod common;

use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};
use common::{floats, hf_tiny_fixtures, hf_tiny_reference, test_device};
use erebor_core::NullProgress;
use erebor_model::Checkpoint;
use erebor_train::batch::{PairExample, pair_batch};
use erebor_train::logps::{BatchTensors, forward_logits, read_f32, sequence_logps, token_logps};
use erebor_train::losses::{PairLogps, PreferenceLossKind, PreferenceObjective};
use erebor_train::preference::reference_logps;
use serde_json::Value;

fn ids(value: &Value) -> Vec<Vec<u32>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| u32::try_from(v.as_u64().unwrap()).expect("a token id"))
                .collect()
        })
        .collect()
}

fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    let relative = (got - want).abs() / want.abs().max(1e-6);
    assert!(
        relative < tolerance,
        "{what}: {got} vs PyTorch {want} (relative {relative:e})"
    );
}

/// Our reference pre-pass against the fixture's reference log-probs.
fn check_reference_logps(arch: &str, rc: &[f32], rr: &[f32], p: &Value) {
    for (what, got, key) in [
        ("chosen", rc, "ref_chosen_logps"),
        ("rejected", rr, "ref_rejected_logps"),
    ] {
        for (i, (got, want)) in got.iter().zip(floats(&p[key])).enumerate() {
            assert_close(
                &format!("{arch} ref {what} {i}"),
                f64::from(*got),
                want,
                1e-5,
            );
        }
    }
}

/// The policy's summed log-probs (the two chosen sequences, then the two rejected) against the
/// fixture's.
fn check_policy_logps(arch: &str, host: &[f32], p: &Value) {
    for (what, offset, key) in [
        ("chosen", 0, "policy_chosen_logps"),
        ("rejected", 2, "policy_rejected_logps"),
    ] {
        for (i, want) in floats(&p[key]).into_iter().enumerate() {
            assert_close(
                &format!("{arch} policy {what} {i}"),
                f64::from(host[offset + i]),
                want,
                1e-5,
            );
        }
    }
}

/// The input embedding's gradient under loss `name` against the fixture's (`want`): its norm,
/// and the row sums of the tokens of the first chosen sequence (`tokens`).
fn check_embedding_gradient(
    arch: &str,
    name: &str,
    embed: Tensor<2>,
    want: &Value,
    tokens: &[u32],
) {
    let norm = f64::from(embed.clone().square().sum().sqrt().into_scalar::<f32>());
    assert_close(
        &format!("{arch} {name} embed grad norm"),
        norm,
        want["embed_grad_norm"].as_f64().unwrap(),
        1e-4,
    );
    let row_sums = read_f32(embed.sum_dim(1).squeeze_dim::<1>(1), "row sums").unwrap();
    let wanted = floats(&want["embed_grad_row_sum"]);
    let largest = wanted.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (j, want) in wanted.into_iter().enumerate() {
        let token = tokens[j] as usize;
        let got = f64::from(row_sums[token]);
        if want.abs() >= 1e-3 * largest {
            assert_close(
                &format!("{arch} {name} row sum of token {token}"),
                got,
                want,
                1e-4,
            );
        } else {
            // A row sum that nearly cancels (qwen2 DPOP: −0.017 beside 63.0) carries the
            // f32 rounding of its 64 terms in both implementations: compare it at 1e-4 of
            // the largest reported row sum.
            assert!(
                (got - want).abs() <= 1e-4 * largest,
                "{arch} {name} row sum of token {token}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn log_probs_losses_and_embedding_gradients_match_pytorch() {
    let Some(dir) = hf_tiny_fixtures() else {
        return;
    };
    for arch in ["llama", "qwen2", "mistral"] {
        let folder = dir.join(arch);
        let reference = hf_tiny_reference(&dir, arch);
        let p = &reference["pairs"];
        let prompt_len = usize::try_from(p["prompt_len"].as_u64().unwrap()).unwrap();
        let chosen = ids(&p["chosen"]);
        let rejected = ids(&p["rejected"]);
        let pairs: Vec<PairExample> = chosen
            .iter()
            .zip(&rejected)
            .map(|(c, r)| PairExample {
                prompt_ids: c[..prompt_len].to_vec(),
                chosen_ids: c[prompt_len..].to_vec(),
                rejected_ids: r[prompt_len..].to_vec(),
            })
            .collect();
        let device = test_device().autodiff();

        // Reference log-probs: the reference model, no gradients, our pre-pass.
        let ref_model = Checkpoint::load(&folder, &device, DType::F32)
            .unwrap()
            .model;
        let refs = reference_logps(&ref_model, &pairs, 2, None, &NullProgress).unwrap();
        let (rc, rr): (Vec<f32>, Vec<f32>) = refs.into_iter().unzip();
        check_reference_logps(arch, &rc, &rr, p);

        let beta = p["beta"].as_f64().unwrap();
        let lambda = p["lambda"].as_f64().unwrap();
        for kind in [
            PreferenceLossKind::Dpo,
            PreferenceLossKind::Dpop,
            PreferenceLossKind::Ipo,
            PreferenceLossKind::Slic,
        ] {
            let policy = Checkpoint::load(folder.join("policy"), &device, DType::F32)
                .unwrap()
                .model;
            let refs: Vec<&PairExample> = pairs.iter().collect();
            let batch = pair_batch(&refs, 8);
            let tensors = BatchTensors::new(&batch, &device);
            let logits = forward_logits(&policy, &batch, &tensors).unwrap();
            let sums = sequence_logps(
                token_logps(logits, tensors.targets.clone()),
                tensors.mask.clone(),
            );
            let host = read_f32(sums.clone().detach(), "sums").unwrap();
            check_policy_logps(arch, &host, p);
            let constant = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
            let logps = PairLogps {
                policy_chosen: sums.clone().narrow(0, 0, 2),
                policy_rejected: sums.narrow(0, 2, 2),
                reference_chosen: constant(&rc),
                reference_rejected: constant(&rr),
            };
            let loss = PreferenceObjective { kind, beta, lambda }
                .loss(&logps)
                .per_pair
                .mean();
            let name = kind.as_str();
            let value = f64::from(loss.clone().into_scalar::<f32>());
            assert_close(
                &format!("{arch} {name} loss"),
                value,
                p["losses"][name].as_f64().unwrap(),
                1e-4,
            );

            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let embed: Tensor<2> = grads
                .get(policy.embed_tokens.id)
                .expect("embedding gradient");
            check_embedding_gradient(arch, name, embed, &p["grads"][name], &chosen[0]);
        }
    }
}
