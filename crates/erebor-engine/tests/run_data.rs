//! The run's data gathered by the runner for kinds that need it (`report`): the runner asks its
//! [`RunDataSource`] before the attempt starts, writes `run-data.json` into the attempt folder and
//! names it in the request; the step reads it from `StepContext::run_data`. Without a gatherer,
//! or when gathering fails, the step fails with the failure's class and no process starts.

mod common;

use common::Harness;
use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs,
};
use erebor_engine::run_data::Gathering;
use erebor_engine::{RunControl, RunDataRequest, RunDataSource};
use erebor_store::{RunStatus, StepStatus, Store};
use std::path::Path;
use std::sync::Arc;

static ECHO: StepKindInfo = StepKindInfo {
    name: "echo-data",
    code_version: 1,
    summary: "outputs the `steps` list of the run data the runner gathered, as `id:status,…`",
    outputs: &[OutputDecl {
        name: "seen",
        ty: OutputType::Text,
        doc: "the gathered steps",
    }],
};

/// Needs the run's data; outputs what it found in it.
struct EchoData;

impl StepKind for EchoData {
    fn info(&self) -> &'static StepKindInfo {
        &ECHO
    }
    fn validate(&self, _with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        Ok(())
    }
    fn needs_run_data(&self) -> bool {
        true
    }
    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let path = ctx
            .run_data
            .as_ref()
            .ok_or_else(|| StepFailure::bad_input("no run data"))?;
        let data: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let seen: Vec<&str> = data["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        Ok(StepOutputs::new().with_text("seen", seen.join(",")))
    }
}

/// The steps of the run as `id:status`, read from the runner's store; fails with `fail` when set.
struct StepsFromStore {
    fail: Option<StepFailure>,
}

impl RunDataSource for StepsFromStore {
    fn gather<'a>(&'a self, store: &'a Store, request: RunDataRequest<'a>) -> Gathering<'a> {
        Box::pin(async move {
            if let Some(failure) = &self.fail {
                return Err(failure.clone());
            }
            assert_eq!((request.kind, request.step_id.as_str()), ("echo-data", "b"));
            let steps = store.steps_of(request.run_id).await.unwrap();
            let steps: Vec<String> = steps
                .iter()
                .map(|s| format!("{}:{}", s.step_id, s.status))
                .collect();
            Ok(serde_json::json!({ "steps": steps, "with": request.with }))
        })
    }
}

const WORKFLOW: &str = r"
name: run-data
steps:
  - id: a
    uses: noop
    with: {value: 1, points: 2}
  - id: b
    uses: echo-data
    needs: [a]
    with: {note: hello}
";

async fn harness() -> Harness {
    let mut h = Harness::new().await;
    h.registry = h.registry.clone().with(EchoData);
    h
}

async fn run(h: &Harness, source: Option<StepsFromStore>) -> erebor_engine::RunSummary {
    let workflow = h.workflow(WORKFLOW);
    let options = h.options(h.in_process(), 2, Vec::new());
    let mut engine = h.engine(h.store.clone(), options, RunControl::new());
    if let Some(source) = source {
        engine = engine.with_run_data(Arc::new(source));
    }
    engine.run(&workflow).await.unwrap()
}

#[tokio::test]
async fn the_runner_gathers_the_data_and_the_step_reads_it_from_its_context() {
    let h = harness().await;
    let summary = run(&h, Some(StepsFromStore { fail: None })).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    let steps = h.store.steps_of(&summary.run_id).await.unwrap();
    let b = steps.iter().find(|s| s.step_id.as_str() == "b").unwrap();
    let outputs = b.outputs.as_ref().unwrap().to_string();
    assert!(outputs.contains("a:succeeded,b:"), "{outputs}");

    let attempt = h
        .dir
        .path()
        .join(".erebor/runs")
        .join(summary.run_id.as_str())
        .join("attempts");
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(attempt.join("b/1/request.json")).unwrap()).unwrap();
    let data_file = attempt.join("b/1/run-data.json");
    assert_eq!(request["run_data"], data_file.display().to_string());
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&data_file).unwrap()).unwrap();
    assert_eq!(data["with"]["note"], "hello");
    // A kind that does not ask gets no data.
    let request_a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(attempt.join("a/1/request.json")).unwrap()).unwrap();
    assert!(request_a.get("run_data").is_none(), "{request_a}");
    assert!(!attempt.join("a/1/run-data.json").exists());
}

/// The class and message of step `b`'s failed attempt.
async fn failure_of_b(h: &Harness, summary: &erebor_engine::RunSummary) -> (String, String) {
    assert_eq!(summary.status, RunStatus::Failed, "{summary:?}");
    let steps = h.store.steps_of(&summary.run_id).await.unwrap();
    let b = steps.iter().find(|s| s.step_id.as_str() == "b").unwrap();
    assert_eq!(b.status, StepStatus::Failed);
    let attempts = h.store.attempts_of(&summary.run_id).await.unwrap();
    let attempt = attempts.iter().find(|a| a.step_id.as_str() == "b").unwrap();
    (
        attempt.failure_class.clone().unwrap(),
        attempt.failure_message.clone().unwrap(),
    )
}

#[tokio::test]
async fn without_a_gatherer_the_step_fails_as_bad_input() {
    let h = harness().await;
    let summary = run(&h, None).await;
    let (class, message) = failure_of_b(&h, &summary).await;
    assert_eq!(class, "bad_input");
    assert!(message.contains("no gatherer"), "{message}");
}

#[tokio::test]
async fn a_gathering_failure_fails_the_attempt_with_its_class() {
    let h = harness().await;
    let fail = StepFailure::transient("the store is away");
    let summary = run(&h, Some(StepsFromStore { fail: Some(fail) })).await;
    let (class, message) = failure_of_b(&h, &summary).await;
    assert_eq!(
        (class.as_str(), message.as_str()),
        ("transient", "the store is away")
    );
}
