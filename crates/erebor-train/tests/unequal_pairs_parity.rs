//! Preference pairs of unequal lengths in one padded batch, through the training path, against
//! transformers (crates/erebor-model/tests/fixtures/hf-extra/preference, made by
//! `scripts/hf_extra_fixtures.py` in float32).
//!
//! Three pairs whose prompts (5, 8, 3 tokens), chosen (6, 4, 10) and rejected (9, 3, 7) answers
//! all differ in length, on the Mistral fixture with a sliding window of 4: the reference
//! pre-pass and the policy's micro-batch pad them into one batch, where transformers scored
//! each sequence alone. Checked: the reference and policy log-probs, the DPO, DPOP, IPO (TRL's
//! length-normalised) and `SLiC` losses, and the gradients of six parameters for each loss.

mod common;

use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};
use common::{floats, narrow, test_device};
use erebor_core::NullProgress;
use erebor_model::{CausalLm, Checkpoint};
use erebor_train::batch::PairExample;
use erebor_train::logps::read_f32;
use erebor_train::losses::{PreferenceLossKind, PreferenceObjective};
use erebor_train::preference::{PairObjective, PairUnit, reference_logps};
use erebor_train::trainer::Objective;
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../erebor-model/tests/fixtures/hf-extra")
}

fn token_ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).expect("a token id"))
        .collect()
}

fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    let relative = (got - want).abs() / want.abs().max(1e-6);
    assert!(
        relative < tolerance,
        "{what}: {got} vs transformers {want} (relative {relative:e})"
    );
}

fn pairs(reference: &Value) -> Vec<PairExample> {
    reference["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PairExample {
            prompt_ids: token_ids(&p["prompt"]),
            chosen_ids: token_ids(&p["chosen"]),
            rejected_ids: token_ids(&p["rejected"]),
        })
        .collect()
}

/// The fixture's parameters by Hugging Face name, as (id, rank).
fn tracked(policy: &CausalLm) -> Vec<(&'static str, ParamId, usize)> {
    let id2 = |p: &Param<Tensor<2>>| p.id;
    vec![
        ("model.embed_tokens.weight", id2(&policy.embed_tokens), 2),
        (
            "model.layers.0.self_attn.q_proj.weight",
            id2(&policy.layers[0].self_attn.q_proj.weight),
            2,
        ),
        (
            "model.layers.1.self_attn.k_proj.weight",
            id2(&policy.layers[1].self_attn.k_proj.weight),
            2,
        ),
        (
            "model.layers.1.mlp.down_proj.weight",
            id2(&policy.layers[1].mlp.down_proj.weight),
            2,
        ),
        ("model.norm.weight", policy.norm.weight.id, 1),
        (
            "lm_head.weight",
            id2(&policy.lm_head.as_ref().unwrap().weight),
            2,
        ),
    ]
}

fn grad_norm(grads: &GradientsParams, id: ParamId, rank: usize) -> f64 {
    let norm = match rank {
        1 => grads.get::<1>(id).unwrap().square().sum().sqrt(),
        _ => grads.get::<2>(id).unwrap().square().sum().sqrt(),
    };
    f64::from(norm.into_scalar::<f32>())
}

/// The gradients under loss `name` against the fixture's (`want`): the norms of the tracked
/// parameters, the embedding's row sums of the listed tokens, and layer 0's first `q_proj` row.
fn check_gradients(name: &str, policy: &CausalLm, grads: &GradientsParams, want: &Value) {
    for (param, id, rank) in tracked(policy) {
        assert_close(
            &format!("{name} grad norm of {param}"),
            grad_norm(grads, id, rank),
            want["norms"][param].as_f64().unwrap(),
            1e-4,
        );
    }
    let embed: Tensor<2> = grads.get(policy.embed_tokens.id).unwrap();
    let row_sums = read_f32(embed.sum_dim(1).squeeze_dim::<1>(1), "row sums").unwrap();
    for (token, want) in want["embed_row_sums"].as_object().unwrap() {
        let token: usize = token.parse().unwrap();
        assert_close(
            &format!("{name} embedding grad row sum of token {token}"),
            f64::from(row_sums[token]),
            want.as_f64().unwrap(),
            1e-3,
        );
    }
    let q: Tensor<2> = grads
        .get(policy.layers[0].self_attn.q_proj.weight.id)
        .unwrap();
    // HF's `[out, in]` row 0 is Burn's `[in, out]` column 0.
    let q_row = read_f32(q.narrow(1, 0, 1).narrow(0, 0, 8).reshape([8]), "q row").unwrap();
    let wanted = floats(&want["q_proj_0_first_row"]);
    let scale = wanted.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (j, (got, want)) in q_row.iter().zip(wanted).enumerate() {
        assert!(
            (f64::from(*got) - want).abs() <= 1e-4 * scale,
            "{name} q_proj grad [0, {j}]: {got} vs {want}"
        );
    }
}

#[test]
fn unequal_length_pairs_match_transformers_log_probs_losses_and_gradients() {
    let dir = fixture();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("preference/reference.json")).unwrap(),
    )
    .unwrap();
    let pairs = pairs(&reference);
    let device = test_device().autodiff();

    let ref_model = Checkpoint::load(dir.join("mistral-sliding"), &device, DType::F32)
        .unwrap()
        .model;
    let refs = reference_logps(&ref_model, &pairs, 3, None, &NullProgress).unwrap();
    let (rc, rr) = (
        floats(&reference["ref_chosen_logps"]),
        floats(&reference["ref_rejected_logps"]),
    );
    for (i, (c, r)) in refs.iter().enumerate() {
        assert_close(&format!("reference chosen {i}"), f64::from(*c), rc[i], 1e-5);
        assert_close(
            &format!("reference rejected {i}"),
            f64::from(*r),
            rr[i],
            1e-5,
        );
    }

    // The policy scored the same way (its pre-pass path, padded batch of all six sequences).
    let policy = Checkpoint::load(dir.join("preference/policy"), &device, DType::F32)
        .unwrap()
        .model;
    let scored = reference_logps(&policy, &pairs, 3, None, &NullProgress).unwrap();
    let (pc, pr) = (
        floats(&reference["policy_chosen_logps"]),
        floats(&reference["policy_rejected_logps"]),
    );
    for (i, (c, r)) in scored.iter().enumerate() {
        assert_close(&format!("policy chosen {i}"), f64::from(*c), pc[i], 1e-5);
        assert_close(&format!("policy rejected {i}"), f64::from(*r), pr[i], 1e-5);
    }
    let active: Vec<bool> = (0..3).map(|i| rc[i] > pc[i]).collect();
    assert_eq!(
        active,
        [false, false, true],
        "DPOP's penalty acts on pair 2 only"
    );

    let units: Vec<PairUnit> = pairs
        .iter()
        .enumerate()
        .map(|(i, pair)| PairUnit {
            pair: pair.clone(),
            reference_chosen: narrow(rc[i]),
            reference_rejected: narrow(rr[i]),
        })
        .collect();
    let unit_refs: Vec<&PairUnit> = units.iter().collect();
    let beta = reference["beta"].as_f64().unwrap();
    let lambda = reference["lambda"].as_f64().unwrap();
    for kind in [
        PreferenceLossKind::Dpo,
        PreferenceLossKind::Dpop,
        PreferenceLossKind::Ipo,
        PreferenceLossKind::Slic,
    ] {
        let name = kind.as_str();
        let policy = Checkpoint::load(dir.join("preference/policy"), &device, DType::F32)
            .unwrap()
            .model;
        let mut objective =
            PairObjective::new(PreferenceObjective { kind, beta, lambda }, Vec::new(), 3);
        // The mean over the three pairs, as the fixture's loss.
        let loss = objective
            .micro_batch(&policy, &unit_refs, 3.0)
            .unwrap()
            .loss;
        let value = f64::from(read_f32(loss.clone().detach(), "loss").unwrap()[0]);
        assert_close(
            &format!("{name} loss"),
            value,
            reference["losses"][name].as_f64().unwrap(),
            1e-4,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &policy);
        check_gradients(name, &policy, &grads, &reference["grads"][name]);
    }
}
