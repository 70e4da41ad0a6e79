//! Helpers of the integration tests: the tiny-arith model, hand-made datasets, a step context.

#![allow(dead_code)]

use erebor_core::dataset::{
    ChatMessage, DATASET_FORMAT_VERSION, DatasetKind, DatasetManifest, PreferenceRecord, SftRecord,
    SplitFiles, TokenisedPreference, TokenisedSft, TokenizerRef,
};
use erebor_core::jsonl::write_jsonl;
use erebor_core::{CancelToken, MemorySink, StepContext};
use erebor_model::Tokenizer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// workflows/models/tiny-arith: config, tokenizer and chat template, no weights.
pub(crate) fn tiny_arith() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows/models/tiny-arith")
}

pub(crate) fn tokenizer() -> Tokenizer {
    Tokenizer::from_dir(tiny_arith()).unwrap()
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode_ids(text, false).unwrap()
}

/// The ChatML prompt of one user turn, generation prompt included.
pub(crate) fn prompt_text(question: &str) -> String {
    format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
}

fn manifest(kind: DatasetKind, splits: &[(&str, usize)], tokenizer: &Tokenizer) -> DatasetManifest {
    DatasetManifest {
        format_version: DATASET_FORMAT_VERSION,
        kind,
        splits: splits
            .iter()
            .map(|(name, rows)| {
                (
                    (*name).to_owned(),
                    SplitFiles {
                        rows: *rows as u64,
                        records: format!("{name}.jsonl"),
                        tokens: Some(format!("{name}.tokens.jsonl")),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        tokenizer: Some(TokenizerRef {
            source: tiny_arith().display().to_string(),
            tokenizer_sha256: erebor_core::content::hash_path(tokenizer.path())
                .unwrap()
                .sha256,
            chat_template: "model".into(),
            chat_template_sha256: String::new(),
        }),
        stats: serde_json::Value::Null,
    }
}

/// Writes one split: its records and their tokenised rows.
fn write_split<R: serde::Serialize, T: serde::Serialize>(
    dir: &Path,
    name: &str,
    records: &[R],
    tokens: &[T],
) {
    write_jsonl(&dir.join(format!("{name}.jsonl")), records).unwrap();
    write_jsonl(&dir.join(format!("{name}.tokens.jsonl")), tokens).unwrap();
}

/// Writes the manifest of a dataset with these (split, rows).
fn write_manifest<'a>(
    dir: &Path,
    kind: DatasetKind,
    splits: impl Iterator<Item = (&'a str, usize)>,
) {
    let counts: Vec<(&str, usize)> = splits.collect();
    manifest(kind, &counts, &tokenizer()).write(dir).unwrap();
}

/// Writes an SFT dataset of (question, answer) conversations per split.
pub(crate) fn write_sft_dataset(dir: &Path, splits: &[(&str, Vec<(String, String)>)]) {
    let tokenizer = tokenizer();
    std::fs::create_dir_all(dir).unwrap();
    for (name, rows) in splits {
        let mut records = Vec::new();
        let mut tokens = Vec::new();
        for (i, (question, answer)) in rows.iter().enumerate() {
            let id = format!("{name}-{i}");
            records.push(SftRecord {
                id: id.clone(),
                messages: vec![
                    ChatMessage::new("user", question),
                    ChatMessage::new("assistant", answer),
                ],
            });
            let mut ids = encode(&tokenizer, &prompt_text(question));
            let start = u32::try_from(ids.len()).expect("a short test row");
            ids.extend(encode(&tokenizer, &format!("{answer}<|im_end|>")));
            let end = u32::try_from(ids.len()).expect("a short test row");
            ids.extend(encode(&tokenizer, "\n"));
            tokens.push(TokenisedSft {
                id,
                input_ids: ids,
                target_spans: vec![[start, end]],
            });
        }
        write_split(dir, name, &records, &tokens);
    }
    write_manifest(
        dir,
        DatasetKind::Sft,
        splits.iter().map(|(n, r)| (*n, r.len())),
    );
}

/// (question, chosen answer, rejected answer).
pub(crate) type PairRow = (String, String, String);

/// Writes a preference dataset of (question, chosen, rejected) rows per split.
pub(crate) fn write_preference_dataset(dir: &Path, splits: &[(&str, Vec<PairRow>)]) {
    let tokenizer = tokenizer();
    std::fs::create_dir_all(dir).unwrap();
    for (name, rows) in splits {
        let mut records = Vec::new();
        let mut tokens = Vec::new();
        for (i, (question, chosen, rejected)) in rows.iter().enumerate() {
            let id = format!("{name}-{i}");
            records.push(PreferenceRecord {
                id: id.clone(),
                prompt: vec![ChatMessage::new("user", question)],
                chosen: chosen.clone(),
                rejected: rejected.clone(),
            });
            tokens.push(TokenisedPreference {
                id,
                prompt_ids: encode(&tokenizer, &prompt_text(question)),
                chosen_ids: encode(&tokenizer, &format!("{chosen}<|im_end|>")),
                rejected_ids: encode(&tokenizer, &format!("{rejected}<|im_end|>")),
            });
        }
        write_split(dir, name, &records, &tokens);
    }
    write_manifest(
        dir,
        DatasetKind::Preference,
        splits.iter().map(|(n, r)| (*n, r.len())),
    );
}

/// A step context writing into `work`, with `cache` as the shared cache.
pub(crate) fn context<'a>(
    with: serde_json::Value,
    work: &Path,
    cache: &Path,
    sink: &'a MemorySink,
    cancel: CancelToken,
) -> StepContext<'a> {
    StepContext {
        run_id: "r-test".into(),
        step_id: "train".into(),
        attempt_id: "a1".into(),
        with,
        base_dir: PathBuf::from("/"),
        work_dir: work.to_owned(),
        cache_dir: cache.to_owned(),
        run_data: None,
        metrics: sink,
        progress: sink,
        cancel,
    }
}

/// A small addition task the tiny model learns quickly: "Ann has A apples. She gets B more."
pub(crate) fn addition_rows(count: usize, offset: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let k = i + offset;
            let a = 2 + (k * 7) % 13;
            let b = 1 + (k * 5) % 8;
            (
                format!(
                    "Ann has {a} apples. She gets {b} more. How many apples does Ann have now?"
                ),
                format!("{a} + {b} = {}\n#### {}", a + b, a + b),
            )
        })
        .collect()
}

/// `../shared` beside the checkout, or `$EREBOR_SHARED` when set (as in erebor-model's tests).
pub(crate) fn shared_dir() -> PathBuf {
    std::env::var_os("EREBOR_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    )
}

/// The device the parity tests run on: `$EREBOR_TEST_DEVICE` (`cpu`, `tch-cpu`, `cuda:N`),
/// default `cpu` (Burn flex), as in erebor-model's tests; the LibTorch ones need `--features tch`.
pub(crate) fn test_device() -> burn::tensor::Device {
    let name = std::env::var("EREBOR_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let spec: erebor_model::DeviceSpec = name.parse().expect("EREBOR_TEST_DEVICE");
    spec.device().expect("test device")
}

/// `fixtures/hf-tiny` of the shared folder (tiny HF models with `PyTorch` reference values), or
/// `None` with a message when it is absent.
pub(crate) fn hf_tiny_fixtures() -> Option<PathBuf> {
    let dir = shared_dir().join("fixtures/hf-tiny");
    if dir.exists() {
        Some(dir)
    } else {
        // Under CI=true ../shared is always laid beside the checkout: fail, never skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is absent and CI=true: shared fixtures are required on CI",
            dir.display()
        );
        println!("skipping: {} is absent", dir.display());
        None
    }
}

/// The `reference.json` of one architecture's hf-tiny fixture.
pub(crate) fn hf_tiny_reference(fixtures: &Path, arch: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures.join(arch).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers.
pub(crate) fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

/// A fixture's number as the `f32` the training path holds. The fixtures' log-probs were
/// computed in float32 and written as JSON numbers, so the narrowing rounds to nearest on purpose.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn narrow(value: f64) -> f32 {
    value as f32
}
