//! IPO through the preference objective against TRL's length-normalised IPO: the real policy
//! model of each ../shared/fixtures/hf-tiny fixture, its pairs and its reference log-probs, and
//! the loss `scripts/ipo_trl_reference.py` computed with transformers
//! (`tests/fixtures/ipo_trl.json`).

mod common;

use burn::tensor::DType;
use common::{floats, hf_tiny_fixtures, hf_tiny_reference, narrow, test_device};
use erebor_model::Checkpoint;
use erebor_train::batch::PairExample;
use erebor_train::losses::{PreferenceLossKind, PreferenceObjective};
use erebor_train::preference::{PairObjective, PairUnit};
use erebor_train::trainer::Objective;
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

#[test]
fn ipo_matches_trl_length_normalised_loss_on_every_fixture() {
    let Some(dir) = hf_tiny_fixtures() else {
        return;
    };
    let trl: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ipo_trl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let device = test_device().autodiff();
    for arch in ["llama", "qwen2", "mistral"] {
        let reference = hf_tiny_reference(&dir, arch);
        let p = &reference["pairs"];
        let prompt_len = usize::try_from(p["prompt_len"].as_u64().unwrap()).unwrap();
        let (rc, rr) = (
            floats(&p["ref_chosen_logps"]),
            floats(&p["ref_rejected_logps"]),
        );
        let units: Vec<PairUnit> = ids(&p["chosen"])
            .into_iter()
            .zip(ids(&p["rejected"]))
            .enumerate()
            .map(|(i, (c, r))| PairUnit {
                pair: PairExample {
                    prompt_ids: c[..prompt_len].to_vec(),
                    chosen_ids: c[prompt_len..].to_vec(),
                    rejected_ids: r[prompt_len..].to_vec(),
                },
                reference_chosen: narrow(rc[i]),
                reference_rejected: narrow(rr[i]),
            })
            .collect();
        let policy = Checkpoint::load(dir.join(arch).join("policy"), &device, DType::F32)
            .unwrap()
            .model;
        let beta = p["beta"].as_f64().unwrap();
        let mut objective = PairObjective::new(
            PreferenceObjective {
                kind: PreferenceLossKind::Ipo,
                beta,
                lambda: 50.0,
            },
            units,
            2,
        );
        let values = objective.evaluate(&policy).unwrap();
        let got = values.iter().find(|(k, _)| k == "eval/loss").unwrap().1;
        let want = trl[arch]["ipo_loss"].as_f64().unwrap();
        let relative = (got - want).abs() / want.abs();
        assert!(relative < 1e-4, "{arch}: {got} vs TRL {want}");
        // The summed-log-prob IPO of make_fixtures.py is another number.
        let summed = p["losses"]["ipo"].as_f64().unwrap();
        assert!(
            (summed - want).abs() > 0.01 * want.abs(),
            "{arch}: {summed}"
        );
    }
}
