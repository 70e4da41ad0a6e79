//! The `noop` kind: does nothing and succeeds. It joins dependencies (a step that needs every
//! arm of a fan-out, for later steps to depend on) and measures the engine's own overhead.

use erebor_core::{ConfigError, StepContext, StepFailure, StepKind, StepKindInfo, StepOutputs};
use std::path::Path;

static INFO: StepKindInfo = StepKindInfo {
    name: "noop",
    code_version: 1,
    summary: "Do nothing (join dependencies; measure engine overhead); `with:` must be empty",
    outputs: &[],
};

/// The `noop` step kind.
pub struct NoopKind;

impl StepKind for NoopKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        match with.as_object() {
            Some(map) if map.is_empty() => Ok(()),
            Some(map) => {
                let key = map.keys().next().cloned().unwrap_or_default();
                Err(ConfigError {
                    path: vec![erebor_core::config::PathSegment::Key(key.clone())],
                    message: format!("unknown field `{key}`: `noop` takes no config"),
                    expected_keys: Vec::new(),
                })
            }
            None => Err(ConfigError::at(Vec::new(), "must be an empty mapping")),
        }
    }

    fn run(&self, _ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        Ok(StepOutputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn with_must_be_an_empty_mapping() {
        let base = Path::new(".");
        assert!(NoopKind.validate(&json!({}), base).is_ok());
        let key = NoopKind.validate(&json!({"sleep": 1}), base).unwrap_err();
        assert!(key.message.contains("unknown field `sleep`"), "{key}");
        assert!(NoopKind.validate(&json!([]), base).is_err());
    }
}
