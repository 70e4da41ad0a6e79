//! The four preference losses against `PyTorch`'s values in ../shared/fixtures/hf-tiny.
//!
//! `make_fixtures.py` there computed the per-sequence log-probs of a policy and a reference model
//! and the DPO/DPOP/IPO/SLiC losses from them in float32; here the same log-probs go through our
//! losses. The qwen2 fixture has the DPOP penalty active (its policy's chosen log-probs fell far
//! below the reference's), llama and mistral have it inactive.

mod common;

use burn::tensor::Tensor;
use common::{floats, hf_tiny_fixtures, hf_tiny_reference, narrow, test_device};
use erebor_train::losses::{PairLogps, PreferenceLossKind, PreferenceObjective};

#[test]
#[allow(clippy::float_cmp)] // an inactive penalty is exactly 0 (relu of a negative)
fn losses_match_pytorch_on_every_fixture() {
    let Some(dir) = hf_tiny_fixtures() else {
        return;
    };
    let device = test_device();
    let tensor = |v: &serde_json::Value| {
        let values: Vec<f32> = floats(v).into_iter().map(narrow).collect();
        Tensor::<1>::from_floats(values.as_slice(), &device)
    };
    for arch in ["llama", "qwen2", "mistral"] {
        let reference = hf_tiny_reference(&dir, arch);
        let pairs = &reference["pairs"];
        let logps = PairLogps {
            policy_chosen: tensor(&pairs["policy_chosen_logps"]),
            policy_rejected: tensor(&pairs["policy_rejected_logps"]),
            reference_chosen: tensor(&pairs["ref_chosen_logps"]),
            reference_rejected: tensor(&pairs["ref_rejected_logps"]),
        };
        let beta = pairs["beta"].as_f64().unwrap();
        let lambda = pairs["lambda"].as_f64().unwrap();
        for kind in [
            PreferenceLossKind::Dpo,
            PreferenceLossKind::Dpop,
            PreferenceLossKind::Ipo,
            PreferenceLossKind::Slic,
        ] {
            let objective = PreferenceObjective { kind, beta, lambda };
            let got = f64::from(objective.loss(&logps).per_pair.mean().into_scalar::<f32>());
            let want = pairs["losses"][kind.as_str()].as_f64().unwrap();
            let relative = (got - want).abs() / want.abs();
            assert!(relative < 1e-4, "{arch} {kind:?}: {got} vs PyTorch {want}");
        }
        let penalty = PreferenceObjective {
            kind: PreferenceLossKind::Dpop,
            beta,
            lambda,
        }
        .loss(&logps)
        .penalty
        .sum()
        .into_scalar::<f32>();
        if arch == "qwen2" {
            assert!(penalty > 1000.0, "qwen2's penalty is active: {penalty}");
        } else {
            assert_eq!(penalty, 0.0, "{arch}'s penalty is inactive");
        }
    }
}
