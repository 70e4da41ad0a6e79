//! Tests of `erebor model` on the shared fixtures.

use super::load::DeviceArgs;
use super::*;
use crate::outcome::Outcome;
use crate::outcome::outcome_of_error;
use erebor_model::burn::tensor::DType;
use erebor_model::weights::SafetensorsSource;
use erebor_model::{Checkpoint, DeviceSpec};
use std::path::PathBuf;

fn shared(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

#[test]
fn convert_writes_a_loadable_folder_in_the_requested_dtype() {
    let Some(src) = shared("fixtures/hf-tiny/qwen2") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("qwen2-bf16");
    let args = ConvertArgs {
        input: src.clone(),
        output: dst.clone(),
        dtype: "bf16".into(),
        max_shard_bytes: 5_000_000_000,
        merge_adapter: None,
    };
    assert_eq!(args.execute().unwrap(), Outcome::Success);
    let written = SafetensorsSource::open_dir(&dst).unwrap();
    assert_eq!(written.dominant_dtype().as_deref(), Some("BF16"));
    assert_eq!(
        Checkpoint::read_config(&dst).unwrap(),
        Checkpoint::read_config(&src).unwrap()
    );
    assert!(dst.join("generation_config.json").is_file());
}

#[test]
fn bad_model_inputs_exit_with_code_2() {
    let out = tempfile::tempdir().unwrap();
    let missing = ConvertArgs {
        input: out.path().join("nope"),
        output: out.path().join("out"),
        dtype: "f32".into(),
        max_shard_bytes: 1,
        merge_adapter: None,
    };
    let err = missing.execute().unwrap_err();
    assert_eq!(outcome_of_error(&err), Outcome::BadInput, "{err:#}");
    let bad_dtype = ConvertArgs {
        input: out.path().to_path_buf(),
        output: out.path().join("out"),
        dtype: "int4".into(),
        max_shard_bytes: 1,
        merge_adapter: None,
    };
    let err = bad_dtype.execute().unwrap_err();
    assert!(err.to_string().contains("int4"), "{err:#}");
    let device = DeviceArgs {
        device: "tpu:0".into(),
        dtype: None,
    };
    let err = device.load(out.path()).unwrap_err();
    assert_eq!(outcome_of_error(&err), Outcome::BadInput);
    assert!(
        err.to_string().contains("cpu, tch-cpu or cuda:N"),
        "{err:#}"
    );
}

#[test]
fn convert_merges_a_peft_adapter() {
    let Some(src) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let adapter =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../erebor-model/tests/fixtures/lora-llama");
    let out = tempfile::tempdir().unwrap();
    let args = ConvertArgs {
        input: src.clone(),
        output: out.path().join("merged"),
        dtype: "f32".into(),
        max_shard_bytes: 5_000_000_000,
        merge_adapter: Some(adapter.clone()),
    };
    assert_eq!(args.execute().unwrap(), Outcome::Success);
    // The merged folder equals base + adapter, and differs from the base.
    let device = DeviceSpec::Cpu.device().unwrap();
    let merged = Checkpoint::load(out.path().join("merged"), &device, DType::F32).unwrap();
    let base = Checkpoint::load(&src, &device, DType::F32).unwrap();
    let (with_adapter, _) = erebor_model::lora::load_adapter(base.model, &adapter).unwrap();
    let prompt = erebor_model::TokenBatch::right_padded(&[vec![5, 17, 300, 42]], 0);
    let a: Vec<f32> = merged
        .model
        .forward_batch(&prompt, None)
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let b: Vec<f32> = with_adapter
        .forward_batch(&prompt, None)
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(d < 1e-5, "merged vs adapter: {d}");
}
