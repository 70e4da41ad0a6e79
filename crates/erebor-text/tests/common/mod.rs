//! Helpers shared by erebor-text's integration tests.
#![allow(dead_code)]

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

/// A JSON array of integers as u32.
pub(crate) fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}
