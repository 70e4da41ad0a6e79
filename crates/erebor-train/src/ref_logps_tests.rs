use super::*;
use erebor_model::lora::LoraTarget;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn key(dataset: &str) -> RefLogpsKey {
    RefLogpsKey {
        reference_sha256: "r".repeat(64),
        dataset_sha256: dataset.to_owned(),
        splits: vec!["train".into()],
        max_seq_len: 64,
        max_prompt_len: 32,
        precision: "f32".into(),
        device_kind: "cpu".into(),
        numerics_version: REF_LOGPS_NUMERICS_VERSION,
        erebor_version: EREBOR_VERSION.into(),
        adapter: None,
    }
}

fn artifact(key: &RefLogpsKey) -> RefLogps {
    RefLogps {
        format_version: REF_LOGPS_FORMAT_VERSION,
        key: key.clone(),
        splits: BTreeMap::from([(
            "train".to_owned(),
            vec![
                RefLogpsRow {
                    id: "a".into(),
                    chosen: -1.5,
                    rejected: -2.25,
                },
                RefLogpsRow {
                    id: "b".into(),
                    chosen: -0.125,
                    rejected: -9.0,
                },
            ],
        )]),
    }
}

#[test]
fn concurrent_arms_compute_once_and_share_the_file() {
    let cache = tempfile::tempdir().unwrap();
    let computed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.path().to_owned();
            let computed = Arc::clone(&computed);
            std::thread::spawn(move || {
                let key = key("d1");
                cached_ref_logps(&cache, &key, || {
                    computed.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(artifact(&key))
                })
                .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    let outcomes: Vec<_> = results.iter().map(|(_, _, o)| *o).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == CacheOutcome::Computed)
            .count(),
        1,
        "{outcomes:?}"
    );
    for (values, path, _) in &results {
        assert_eq!(values, &artifact(&key("d1")));
        assert_eq!(path, &results[0].1);
    }
    // Another dataset is another entry.
    let (_, other, outcome) =
        cached_ref_logps(cache.path(), &key("d2"), || Ok(artifact(&key("d2")))).unwrap();
    assert_eq!(outcome, CacheOutcome::Computed);
    assert_ne!(other, results[0].1);
}

#[test]
fn a_corrupt_entry_is_recomputed() {
    let cache = tempfile::tempdir().unwrap();
    let k = key("d1");
    let (_, path, _) = cached_ref_logps(cache.path(), &k, || Ok(artifact(&k))).unwrap();
    std::fs::write(&path, "{not json").unwrap();
    let (values, _, outcome) = cached_ref_logps(cache.path(), &k, || Ok(artifact(&k))).unwrap();
    assert_eq!(outcome, CacheOutcome::Computed);
    assert_eq!(values, artifact(&k));
}

#[test]
fn rows_must_match_the_dataset_ids() {
    let k = key("d1");
    let values = artifact(&k);
    let path = Path::new("/cache/x.json");
    assert_eq!(
        values.rows_for("train", &["a", "b"], path).unwrap().len(),
        2
    );
    let error = values
        .rows_for("train", &["a", "c"], path)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("row 1 is `b`, the dataset's is `c`"),
        "{error}"
    );
    let error = values
        .rows_for("eval", &["a"], path)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no reference log-probs for split `eval`"),
        "{error}"
    );
}

#[test]
fn another_numerics_version_erebor_version_or_adapter_is_never_reused() {
    let cache = tempfile::tempdir().unwrap();
    let base = key("d1");
    let (_, _, first) = cached_ref_logps(cache.path(), &base, || Ok(artifact(&base))).unwrap();
    assert_eq!(first, CacheOutcome::Computed);
    let (_, _, again) = cached_ref_logps(cache.path(), &base, || Ok(artifact(&base))).unwrap();
    assert_eq!(again, CacheOutcome::Reused);
    let lora = |rank| crate::config::LoraSettings {
        rank,
        alpha: 16.0,
        dropout: 0.05,
        targets: vec![LoraTarget::QProj, LoraTarget::VProj],
    };
    assert_eq!(
        fresh_lora_identity(&lora(8), 1),
        fresh_lora_identity(&lora(8), 1)
    );
    let variants = [
        RefLogpsKey {
            numerics_version: REF_LOGPS_NUMERICS_VERSION + 1,
            ..base.clone()
        },
        RefLogpsKey {
            erebor_version: "0.0.0-older".into(),
            ..base.clone()
        },
        RefLogpsKey {
            adapter: Some(fresh_lora_identity(&lora(8), 1)),
            ..base.clone()
        },
        RefLogpsKey {
            adapter: Some(fresh_lora_identity(&lora(4), 1)),
            ..base.clone()
        },
        RefLogpsKey {
            adapter: Some(fresh_lora_identity(&lora(8), 2)),
            ..base.clone()
        },
    ];
    for variant in &variants {
        assert_ne!(variant.digest(), base.digest(), "{variant:?}");
        let (_, _, outcome) =
            cached_ref_logps(cache.path(), variant, || Ok(artifact(variant))).unwrap();
        assert_eq!(outcome, CacheOutcome::Computed, "{variant:?}");
    }
}
