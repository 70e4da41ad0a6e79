//! Step kinds for the workflow tests: small configs with the same strictness as the real ones.

#![allow(dead_code)]

use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs, parse_with,
};
use erebor_workflow::KindRegistry;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertConfig {
    source: String,
    #[serde(default)]
    rows: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainConfig {
    model: String,
    data: String,
    #[serde(default)]
    loss: Option<String>,
    #[serde(default)]
    beta: Option<f64>,
    #[serde(default)]
    lambda: Option<f64>,
}

pub(crate) struct Convert;
pub(crate) struct Train;
pub(crate) struct Eval;

static CONVERT: StepKindInfo = StepKindInfo {
    name: "convert",
    code_version: 1,
    summary: "test convert",
    outputs: &[OutputDecl {
        name: "dataset",
        ty: OutputType::Dataset,
        doc: "",
    }],
};
static TRAIN: StepKindInfo = StepKindInfo {
    name: "sft",
    code_version: 3,
    summary: "test train",
    outputs: &[
        OutputDecl {
            name: "model",
            ty: OutputType::Model,
            doc: "",
        },
        OutputDecl {
            name: "loss",
            ty: OutputType::Metric,
            doc: "",
        },
    ],
};
static EVAL: StepKindInfo = StepKindInfo {
    name: "eval",
    code_version: 1,
    summary: "test eval",
    outputs: &[OutputDecl {
        name: "accuracy",
        ty: OutputType::Metric,
        doc: "",
    }],
};

impl StepKind for Convert {
    fn info(&self) -> &'static StepKindInfo {
        &CONVERT
    }
    fn validate(&self, with: &serde_json::Value, _: &Path) -> Result<(), ConfigError> {
        parse_with::<ConvertConfig>(with).map(|_| ())
    }
    fn run(&self, _: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        Err(StepFailure::fatal("not run in these tests"))
    }
}

impl StepKind for Train {
    fn info(&self) -> &'static StepKindInfo {
        &TRAIN
    }
    fn validate(&self, with: &serde_json::Value, _: &Path) -> Result<(), ConfigError> {
        let config: TrainConfig = parse_with(with)?;
        if config.beta.is_some_and(|b| b <= 0.0) {
            return Err(ConfigError::field("beta", "must be > 0"));
        }
        Ok(())
    }
    fn run(&self, _: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        Err(StepFailure::fatal("not run in these tests"))
    }
}

impl StepKind for Eval {
    fn info(&self) -> &'static StepKindInfo {
        &EVAL
    }
    fn validate(&self, _: &serde_json::Value, _: &Path) -> Result<(), ConfigError> {
        Ok(())
    }
    fn run(&self, _: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        Err(StepFailure::fatal("not run in these tests"))
    }
}

pub(crate) fn registry() -> KindRegistry {
    KindRegistry::new().with(Convert).with(Train).with(Eval)
}
