//! The `mt-bench` step kind (settings: [`super::config`]). The judgment cache comes from a
//! [`CacheProvider`] the binary supplies (the run store; erebor-eval knows no store).

use std::path::Path;
use std::sync::Arc;

use erebor_core::{
    ConfigError, FailureClass, OutputDecl, OutputType, StepContext, StepFailure, StepKind,
    StepKindInfo, StepOutputs,
};

use super::cache::CacheProvider;
use super::config::MtBenchConfig;
use super::error::MtBenchError;
use super::run::{RunContext, record_metrics, run};

/// Bump when a change alters what the kind produces from the same inputs.
const CODE_VERSION: u32 = 1;

const OUTPUTS: [OutputDecl; 2] = [
    OutputDecl {
        name: "answers",
        ty: OutputType::File,
        doc: "model_answer/<model_id>.jsonl: the answers in FastChat's answer JSONL",
    },
    OutputDecl {
        name: "judgments",
        ty: OutputType::File,
        doc: "model_judgment/<judge>_single.jsonl or _pair.jsonl in FastChat's judgment JSONL (with a judge)",
    },
];

static INFO: StepKindInfo = StepKindInfo {
    name: "mt-bench",
    code_version: CODE_VERSION,
    summary: "MT-Bench: answer the 80 two-turn questions, grade them with an LLM judge (single or pairwise), cached in the store",
    outputs: &OUTPUTS,
};

/// The `mt-bench` step kind.
#[derive(Clone)]
pub struct MtBenchKind {
    provider: Arc<dyn CacheProvider>,
}

impl MtBenchKind {
    /// The kind, keeping judgments in what `provider` opens.
    pub fn new(provider: Arc<dyn CacheProvider>) -> Self {
        MtBenchKind { provider }
    }
}

/// The failure class of an MT-Bench error: bad files and settings are bad input, endpoint and
/// cache failures transient (a retry may pass), a stop is a cancellation.
pub fn failure_of(error: &MtBenchError) -> StepFailure {
    let class = match error {
        MtBenchError::Data { .. }
        | MtBenchError::Prompt { .. }
        | MtBenchError::Question { .. }
        | MtBenchError::Config(_)
        | MtBenchError::ApiKeyMissing { .. }
        | MtBenchError::Model(_)
        | MtBenchError::Eval(_) => FailureClass::BadInput,
        MtBenchError::Endpoint { .. } | MtBenchError::Cache(_) => FailureClass::Transient,
        MtBenchError::Cancelled(_) => FailureClass::Cancelled,
        MtBenchError::Io { .. }
        | MtBenchError::HttpClient(_)
        | MtBenchError::JudgeTask(_)
        | MtBenchError::JudgeTaskLost => FailureClass::Unknown,
    };
    StepFailure::new(class, error.to_string())
}

impl StepKind for MtBenchKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        MtBenchConfig::parse(with).map(|_| ())
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config = MtBenchConfig::parse(&ctx.with)?;
        let run_ctx = RunContext {
            base_dir: &ctx.base_dir,
            work_dir: &ctx.work_dir,
            default_model_id: ctx.step_id.file_name(),
            provider: self.provider.as_ref(),
            progress: ctx.progress,
            cancel: &ctx.cancel,
        };
        let outcome = run(&config, &run_ctx).map_err(|error| failure_of(&error))?;
        record_metrics(&outcome, ctx.metrics);
        tracing::info!(
            judgments = outcome.judgments,
            from_cache = outcome.from_cache,
            answers_reused = outcome.answers_reused,
            "mt-bench finished"
        );
        let mut outputs = StepOutputs::new().with_path("answers", &outcome.answers_file);
        if let Some(file) = &outcome.judgments_file {
            outputs = outputs.with_path("judgments", file);
        }
        Ok(outputs)
    }
}
