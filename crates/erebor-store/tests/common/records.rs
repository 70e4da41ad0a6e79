//! Records the store tests insert.

use erebor_store::*;
use serde_json::json;

/// A run of `workflow` with fixed runner details.
pub(crate) fn new_run(id: &str, workflow: &str) -> NewRun {
    NewRun {
        id: id.into(),
        workflow_name: workflow.to_owned(),
        workflow_file: format!("/w/{workflow}.yaml"),
        workflow_text: "name: x\nsteps: []\n".to_owned(),
        workflow_hash: "abc".to_owned(),
        params: json!({"beta": 0.3, "key": "***"}),
        options: json!({"jobs": 2}),
        host: "host-a".to_owned(),
        runner_pid: 4242,
        git_commit: Some("0123abcd".to_owned()),
        git_dirty: Some(false),
        erebor_version: "0.1.0".to_owned(),
        run_dir: format!("/runs/{id}"),
    }
}

/// A `command` step at `position`.
pub(crate) fn new_step(id: &str, position: i64) -> NewStep {
    NewStep {
        step_id: id.into(),
        base_id: id.split('[').next().unwrap().to_owned(),
        arm: json!({}),
        kind: "command".to_owned(),
        position,
        needs: vec![],
        config: json!({"argv": ["true"]}),
    }
}

/// Attempt `number` of `step` on the local executor, GPU 0.
pub(crate) fn attempt(id: &str, run: &str, step: &str, number: i64) -> NewAttempt {
    NewAttempt {
        id: id.into(),
        run_id: run.into(),
        step_id: step.into(),
        number,
        executor: "local".to_owned(),
        host: "host-a".to_owned(),
        dir: format!("/runs/{run}/attempts/{step}/{number}"),
        gpus: vec![0],
    }
}

/// One metric point.
pub(crate) fn point(key: &str, index: u64, value: f64) -> MetricPoint {
    MetricPoint {
        key: key.to_owned(),
        index,
        value,
    }
}

/// A successful end with these outputs.
pub(crate) fn success(outputs: serde_json::Value) -> AttemptEnd {
    AttemptEnd {
        status: AttemptStatus::Succeeded,
        step_status: StepStatus::Succeeded,
        exit_code: Some(0),
        failure: None,
        outputs: Some(outputs),
        artifacts: vec![],
        expect_failures: vec![],
    }
}
