//! What a finished step returns: named outputs that later steps reference as
//! `${{ steps.ID.outputs.NAME }}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One output value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputValue {
    /// A file or folder the step wrote (recorded as an artifact with its hash and size).
    Path(PathBuf),
    /// A scalar metric (also recorded as a metric).
    Metric(f64),
    /// A short text value.
    Text(String),
}

impl OutputValue {
    /// The value as it is substituted into a template.
    pub fn to_template_string(&self) -> String {
        match self {
            OutputValue::Path(path) => path.display().to_string(),
            OutputValue::Metric(value) => format_number(*value),
            OutputValue::Text(text) => text.clone(),
        }
    }
}

/// Formats a metric without a trailing `.0` for integers (`3`, `0.25`).
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// The named outputs of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutputs {
    /// Output name to value, in name order.
    pub values: BTreeMap<String, OutputValue>,
}

impl StepOutputs {
    /// No outputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path output.
    #[must_use]
    pub fn with_path(mut self, name: &str, path: impl AsRef<Path>) -> Self {
        self.values
            .insert(name.to_owned(), OutputValue::Path(path.as_ref().to_owned()));
        self
    }

    /// Adds a metric output.
    #[must_use]
    pub fn with_metric(mut self, name: &str, value: f64) -> Self {
        self.values
            .insert(name.to_owned(), OutputValue::Metric(value));
        self
    }

    /// Adds a text output.
    #[must_use]
    pub fn with_text(mut self, name: &str, text: impl Into<String>) -> Self {
        self.values
            .insert(name.to_owned(), OutputValue::Text(text.into()));
        self
    }

    /// The output called `name`.
    pub fn get(&self, name: &str) -> Option<&OutputValue> {
        self.values.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_serialise_with_their_type_and_render_for_templates() {
        let outputs = StepOutputs::new()
            .with_path("model", "/runs/r1/train/model")
            .with_metric("steps", 120.0)
            .with_metric("loss", 0.25);
        let json = serde_json::to_string(&outputs).unwrap();
        assert_eq!(
            json,
            r#"{"values":{"loss":{"metric":0.25},"model":{"path":"/runs/r1/train/model"},"steps":{"metric":120.0}}}"#
        );
        let back: StepOutputs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, outputs);
        assert_eq!(back.get("steps").unwrap().to_template_string(), "120");
        assert_eq!(back.get("loss").unwrap().to_template_string(), "0.25");
        assert_eq!(
            back.get("model").unwrap().to_template_string(),
            "/runs/r1/train/model"
        );
    }
}
