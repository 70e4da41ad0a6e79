//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub(crate) mod llama_cpp;

use std::path::PathBuf;

/// `../shared` beside the checkout (or `$EREBOR_SHARED`), if present. Tests that need it call
/// this and return early with a printed message when it is absent; under `CI=true` they fail
/// instead (see [`missing`]).
pub(crate) fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EREBOR_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(&format!(
            "shared fixtures not found at {} (set EREBOR_SHARED)",
            dir.display()
        ));
        None
    }
}

/// Reports a missing shared fixture: a skip message locally, a failure under `CI=true`, where
/// ../shared is always laid beside the checkout and a skip would hide a broken test.
pub(crate) fn missing(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}, and CI=true: shared fixtures are required on CI"
    );
    eprintln!("skipping: {what}");
}

/// A path inside `../shared`, or `None` (with a message) when absent.
pub(crate) fn shared(rel: &str) -> Option<PathBuf> {
    let p = shared_dir()?.join(rel);
    if p.exists() {
        Some(p)
    } else {
        missing(&format!("{} not found", p.display()));
        None
    }
}

/// Reads a JSON file.
pub(crate) fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A JSON array of numbers as f64.
pub(crate) fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON array of integers as u32.
pub(crate) fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

/// Largest absolute difference.
pub(crate) fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The device the tests run on: `$EREBOR_TEST_DEVICE` (`cpu`, `tch-cpu`, `cuda:N`), default
/// `cpu` (Burn flex). scripts/tch-cpu-check.sh runs the parity tests on LibTorch this way.
pub(crate) fn device() -> burn::tensor::Device {
    let name = std::env::var("EREBOR_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let spec: erebor_model::DeviceSpec = name.parse().expect("EREBOR_TEST_DEVICE");
    spec.device().expect("test device")
}

/// One prompt as a `[1, n]` id tensor on `device`.
pub(crate) fn prompt_tensor(
    prompt: &[u32],
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<2, burn::tensor::Int> {
    let ids: Vec<i64> = prompt.iter().map(|&i| i64::from(i)).collect();
    burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(ids, [1, prompt.len()]),
        device,
    )
}

/// A float tensor's values, row-major, as f64.
pub(crate) fn values_f64<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Vec<f64> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The logits of `model` for one prompt, `[n · vocab]` row-major, as f64.
pub(crate) fn prompt_logits(model: &erebor_model::CausalLm, prompt: &[u32]) -> Vec<f64> {
    values_f64(model.forward(prompt_tensor(prompt, &model.device())))
}
