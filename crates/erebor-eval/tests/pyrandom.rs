//! The CPython `random.Random` port against sequences CPython 3.11 wrote
//! (`scripts/pyrandom_goldens.py` → `tests/fixtures/pyrandom.json`).

use erebor_eval::pyrandom::{PyRandom, sample_setsize};
use serde_json::Value;

fn goldens() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pyrandom.json");
    let text = std::fs::read_to_string(path).expect("read pyrandom.json");
    serde_json::from_str(&text).expect("parse pyrandom.json")
}

fn seeds(goldens: &Value) -> impl Iterator<Item = (u64, &Value)> {
    goldens["seeds"].as_array().unwrap().iter().map(|record| {
        let seed: u64 = record["seed_str"].as_str().unwrap().parse().unwrap();
        (seed, record)
    })
}

fn parse_u128(value: &Value) -> u128 {
    value.as_str().unwrap().parse().unwrap()
}

fn usize_list(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| usize::try_from(v.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn random_floats_are_cpythons_bit_for_bit() {
    let goldens = goldens();
    for (seed, record) in seeds(&goldens) {
        let mut rng = PyRandom::new(seed);
        for (i, expected) in record["random"].as_array().unwrap().iter().enumerate() {
            let got = rng.random();
            let int53: u64 = expected["int53"].as_str().unwrap().parse().unwrap();
            let want: f64 = expected["repr"].as_str().unwrap().parse().unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "seed {seed}, draw {i}");
            assert_eq!(
                (got * 9_007_199_254_740_992.0).to_bits(),
                (int53 as f64).to_bits(),
                "seed {seed}, draw {i}"
            );
        }
    }
}

#[test]
fn raw_outputs_cross_two_state_regenerations() {
    let goldens = goldens();
    let expected = goldens["seeds"][0]["uint32_first_1300"].as_array().unwrap();
    assert_eq!(goldens["seeds"][0]["seed"], 42);
    let mut rng = PyRandom::new(42);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            u64::from(rng.next_u32()),
            want.as_u64().unwrap(),
            "output {i}"
        );
    }
}

#[test]
fn getrandbits_of_every_width() {
    let goldens = goldens();
    for (seed, record) in seeds(&goldens) {
        for (k, values) in record["getrandbits_fresh"].as_object().unwrap() {
            let k: u32 = k.parse().unwrap();
            let mut rng = PyRandom::new(seed);
            for want in values.as_array().unwrap() {
                assert_eq!(rng.getrandbits(k), parse_u128(want), "seed {seed}, k {k}");
            }
        }
        let mut rng = PyRandom::new(seed);
        for step in record["getrandbits_mixed"].as_array().unwrap() {
            let k = u32::try_from(step["k"].as_u64().unwrap()).unwrap();
            assert_eq!(
                rng.getrandbits(k),
                parse_u128(&step["value"]),
                "seed {seed}, mixed k {k}"
            );
        }
    }
}

#[test]
// `start`, `stop` and `step` are CPython's names.
#[allow(clippy::similar_names)]
fn randbelow_and_randrange() {
    let goldens = goldens();
    for (seed, record) in seeds(&goldens) {
        for (n, values) in record["randbelow_fresh"].as_object().unwrap() {
            let n: u64 = n.parse().unwrap();
            let mut rng = PyRandom::new(seed);
            for want in values.as_array().unwrap() {
                assert_eq!(
                    u128::from(rng.randbelow(n)),
                    parse_u128(want),
                    "seed {seed}, n {n}"
                );
            }
        }
        let mut rng = PyRandom::new(seed);
        for call in record["randrange_sequence"].as_array().unwrap() {
            let args: Vec<i64> = call["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_i64().unwrap())
                .collect();
            let got = match args.as_slice() {
                [stop] => rng.randrange(*stop, None, 1),
                [start, stop] => rng.randrange(*start, Some(*stop), 1),
                [start, stop, step] => rng.randrange(*start, Some(*stop), *step),
                other => panic!("unexpected randrange args {other:?}"),
            };
            let want: i64 = call["value"].as_str().unwrap().parse().unwrap();
            assert_eq!(got, want, "seed {seed}, randrange{args:?}");
        }
    }
}

#[test]
fn shuffle_matches() {
    let goldens = goldens();
    for (seed, record) in seeds(&goldens) {
        for (n, want) in record["shuffle_fresh"].as_object().unwrap() {
            let mut items: Vec<usize> = (0..n.parse().unwrap()).collect();
            PyRandom::new(seed).shuffle(&mut items);
            assert_eq!(items, usize_list(want), "seed {seed}, n {n}");
        }
    }
}

#[test]
fn sample_both_branches_and_the_stream_after() {
    let goldens = goldens();
    for (k, want) in goldens["setsize_by_k"].as_object().unwrap() {
        assert_eq!(
            sample_setsize(k.parse().unwrap()),
            usize::try_from(want.as_u64().unwrap()).unwrap(),
            "k {k}"
        );
    }
    let mut branches = std::collections::BTreeSet::new();
    for (seed, record) in seeds(&goldens) {
        for case in record["sample_fresh"].as_array().unwrap() {
            let n = usize::try_from(case["n"].as_u64().unwrap()).unwrap();
            let k = usize::try_from(case["k"].as_u64().unwrap()).unwrap();
            let mut rng = PyRandom::new(seed);
            assert_eq!(
                rng.sample_indices(n, k),
                usize_list(&case["result"]),
                "seed {seed}, n {n}, k {k}"
            );
            let next: f64 = case["next_random_after"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                rng.random().to_bits(),
                next.to_bits(),
                "seed {seed}, n {n}, k {k}"
            );
            branches.insert(case["branch"].as_str().unwrap().to_string());
        }
        let dicts = &record["sample_dicts"];
        let population: Vec<usize> =
            (0..usize::try_from(dicts["n"].as_u64().unwrap()).unwrap()).collect();
        let picked = PyRandom::new(seed).sample(
            &population,
            usize::try_from(dicts["k"].as_u64().unwrap()).unwrap(),
        );
        assert_eq!(
            picked,
            usize_list(&dicts["picked_doc_fields"]),
            "seed {seed}"
        );
    }
    assert_eq!(
        branches.len(),
        2,
        "the goldens cover the pool and the set branch"
    );
}

#[test]
fn harness_shuffle_then_per_document_draws() {
    let goldens = goldens();
    for case in goldens["harness_draws"].as_array().unwrap() {
        let n_docs = usize::try_from(case["n_docs"].as_u64().unwrap()).unwrap();
        let n_train = usize::try_from(case["n_train"].as_u64().unwrap()).unwrap();
        let k = usize::try_from(case["k"].as_u64().unwrap()).unwrap();
        let mut rng = PyRandom::new(case["seed"].as_u64().unwrap());
        let mut docs: Vec<usize> = (0..n_docs).collect();
        rng.shuffle(&mut docs);
        let shuffled = case
            .get("shuffled_docs")
            .or(case.get("shuffled_docs_first_100"));
        let want = usize_list(shuffled.unwrap());
        assert_eq!(&docs[..want.len()], want.as_slice(), "{n_docs} docs");
        for (draw, doc) in case["draws"].as_array().unwrap().iter().zip(&docs) {
            assert_eq!(
                usize::try_from(draw["doc"].as_u64().unwrap()).unwrap(),
                *doc
            );
            let got = rng.sample_indices(n_train, k);
            assert_eq!(got, usize_list(&draw["fewshot_train_indices"]), "doc {doc}");
        }
    }
}
