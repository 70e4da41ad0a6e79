//! The `report` step gets the run's data through the step protocol (issues 18 and 13): the
//! runner gathers it and writes `run-data.json` into the attempt's folder, named in the request;
//! the step process never opens the run store. Proof: the report step's request, re-run by
//! `erebor step-exec` with `EREBOR_DB` pointing nowhere and the store deleted, writes the same
//! report.html and report.md as the step did in the run.

mod common;

use common::{Backend, Sandbox};
use std::path::Path;

const CURVES: &str = r#"#!/bin/sh
# Two curves of a training step.
set -eu
awk 'BEGIN {
  for (i = 0; i <= 40; i++) {
    print "erebor:metric train/loss " i " " 0.7 * exp(-i / 12) + 0.01 * sin(i)
    if (i % 10 == 0) print "erebor:metric eval/logps/chosen " i " " (-22.4 + 0.1 * i)
  }
}'
"#;

const WORKFLOW: &str = r"name: report-protocol
steps:
  - id: train
    uses: command
    with: {argv: [./bin/curves.sh]}
    expect: {train/loss: '<= 0.1'}

  - id: report
    uses: report
    needs: [train]
    with:
      title: Report from the runner's data
      steps: [train]
      keys: [train/loss, eval/logps/chosen]
";

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn report_step_runs_from_the_runners_data_without_the_store() {
    let sandbox = Sandbox::new(Backend::Sqlite).unwrap();
    sandbox.script("bin/curves.sh", CURVES);
    sandbox.write("report.yaml", WORKFLOW);
    sandbox.expect(&["run", "report.yaml", "-q"], 0);
    let run = sandbox.latest_run().unwrap();
    let run_dir = sandbox.home().join("runs").join(&run);
    let step_dir = run_dir.join("steps/report");
    let html = std::fs::read_to_string(step_dir.join("report.html")).unwrap();
    let markdown = std::fs::read_to_string(step_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("Report from the runner's data"),
        "{markdown}"
    );
    assert!(html.contains("<svg"), "{html}");

    // The request names the data file the runner wrote; it holds the run and its steps.
    let attempt = run_dir.join("attempts/report/1");
    let mut request = read_json(&attempt.join("request.json"));
    let data_file = request["run_data"]
        .as_str()
        .expect("request names run_data");
    assert_eq!(Path::new(data_file), attempt.join("run-data.json"));
    let data = read_json(Path::new(data_file));
    assert_eq!(data["run"]["id"], run.as_str());
    assert!(
        data["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|step| step["id"] == "train" && step["status"] == "succeeded"),
        "{data}"
    );
    // One chart per key, with every point the step recorded.
    let charts = data["charts"].as_array().unwrap();
    let points = |key: &str| {
        let chart = charts.iter().find(|c| c["title"] == key);
        let chart = chart.unwrap_or_else(|| panic!("no chart {key}: {data}"));
        chart["series"][0]["points"].as_array().unwrap().len()
    };
    assert_eq!(
        (
            charts.len(),
            points("train/loss"),
            points("eval/logps/chosen")
        ),
        (2, 41, 5)
    );
    // A step other than `report` gets no data file.
    let train_request = read_json(&run_dir.join("attempts/train/1/request.json"));
    assert!(train_request.get("run_data").is_none(), "{train_request}");

    // The same request again, in a process with no store: EREBOR_DB names a missing folder and
    // the run's database is gone.
    std::fs::remove_file(sandbox.home().join("erebor.db")).unwrap();
    let again = sandbox.path().join("again");
    request["work_dir"] = again.join("work").display().to_string().into();
    request["events_file"] = again.join("events.jsonl").display().to_string().into();
    request["result_file"] = again.join("result.json").display().to_string().into();
    request["runner_pid"] = 0.into();
    std::fs::create_dir_all(&again).unwrap();
    let request_file = again.join("request.json");
    std::fs::write(&request_file, request.to_string()).unwrap();
    let mut step_exec = sandbox.erebor();
    step_exec.env("EREBOR_DB", "sqlite:///nonexistent-erebor-folder/erebor.db");
    common::expect_exit(
        step_exec,
        &["step-exec", "--request", request_file.to_str().unwrap()],
        0,
    );
    let result = read_json(&again.join("result.json"));
    assert_eq!(result["status"], "succeeded", "{result}");
    let rerun = again.join("work");
    assert_eq!(
        std::fs::read_to_string(rerun.join("report.md")).unwrap(),
        markdown
    );
    assert_eq!(
        std::fs::read_to_string(rerun.join("report.html")).unwrap(),
        html
    );
}
