use super::*;
use erebor_core::FailureClass;
use erebor_report::model::{Report, StepTiming};
use serde_json::json;

fn step(id: &str, status: &str) -> StepTiming {
    StepTiming {
        id: id.to_owned(),
        kind: "sft".to_owned(),
        status: status.to_owned(),
        ..StepTiming::default()
    }
}

fn config(steps: &[&str]) -> ReportConfig {
    ReportConfig {
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        keys: Vec::new(),
        title: None,
    }
}

#[test]
fn validate_wants_steps_and_no_unknown_fields() {
    let base = Path::new(".");
    assert!(
        ReportKind
            .validate(&json!({"steps": ["train"]}), base)
            .is_ok()
    );
    let empty = ReportKind
        .validate(&json!({"steps": []}), base)
        .unwrap_err();
    assert!(empty.message.contains("at least one step"), "{empty}");
    let unknown = ReportKind
        .validate(&json!({"steps": ["train"], "colour": "red"}), base)
        .unwrap_err();
    assert!(unknown.message.contains("colour"), "{unknown}");
}

#[test]
fn charted_steps_must_have_finished() {
    let report = Report {
        steps: vec![
            step("train[dpop]", "succeeded"),
            step("train[dpo]", "cached"),
            step("eval", "running"),
        ],
        ..Report::default()
    };
    assert!(check_finished(&report, &config(&["train"])).is_ok());
    assert!(check_finished(&report, &config(&["train[dpop]"])).is_ok());
    let failure = check_finished(&report, &config(&["train", "eval"])).unwrap_err();
    assert_eq!(failure.class, FailureClass::BadInput);
    assert!(
        failure
            .message
            .contains("`eval` has not finished (status running)"),
        "{}",
        failure.message
    );
}

#[test]
fn run_data_is_read_from_the_request_file() {
    let missing = read_run_data(None).unwrap_err();
    assert_eq!(missing.class, FailureClass::BadInput);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run_data.json");
    let report = Report {
        title: "nightly".to_owned(),
        steps: vec![step("train", "succeeded")],
        ..Report::default()
    };
    std::fs::write(&path, serde_json::to_vec(&report).unwrap()).unwrap();
    assert_eq!(read_run_data(Some(&path)).unwrap(), report);

    std::fs::write(&path, b"{not json").unwrap();
    let broken = read_run_data(Some(&path)).unwrap_err();
    assert!(
        broken.message.contains("run_data.json"),
        "{}",
        broken.message
    );
}

#[test]
fn write_makes_the_page_markdown_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let report = Report {
        title: "nightly".to_owned(),
        steps: vec![step("train", "succeeded")],
        ..Report::default()
    };
    let (html, markdown) = write(&report, &out).unwrap();
    assert_eq!(html, out.join("report.html"));
    assert!(std::fs::read_to_string(&html).unwrap().contains("nightly"));
    assert!(
        std::fs::read_to_string(&markdown)
            .unwrap()
            .contains("nightly")
    );
    assert!(out.join("charts/steps.svg").is_file());
    assert!(out.join("charts/steps.png").is_file());
}

#[test]
fn write_names_the_path_it_could_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let error = write(&Report::default(), &blocked).unwrap_err();
    assert!(matches!(error, WriteError::Io { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&blocked.join("charts").display().to_string()),
        "{error}"
    );
}
