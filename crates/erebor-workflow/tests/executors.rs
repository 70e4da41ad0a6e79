//! `executor:` at the top and on steps, and the resources a cluster executor reads: accepted
//! values reach the planned steps; bad ones are refused at their line and column.

mod kinds;

use erebor_workflow::{
    ExecutorKind, LoadOptions, MissingParams, Workflow, WorkflowErrors, load_str,
};
use std::path::Path;

fn load(text: &str) -> Result<Workflow, WorkflowErrors> {
    let options = LoadOptions {
        overrides: Vec::new(),
        env: &|_| None,
        missing: MissingParams::Error,
    };
    load_str(
        Path::new("workflows/slurm.yaml"),
        text,
        Path::new("/nonexistent"),
        &kinds::registry(),
        &options,
    )
}

const GOOD: &str = r#"name: on-slurm
executor:
  type: slurm
  partition: gpu
  account: lab-1
  extra: ["--qos=high"]
steps:
  - id: data
    uses: convert
    executor: local
    with: {source: a.jsonl}
  - id: train
    uses: sft
    timeout: 2h
    resources: {gpus: 2, cpus: 8, memory: 64G, sbatch: ["--constraint=a100"]}
    with: {model: m, data: "${{ steps.data.outputs.dataset }}"}
"#;

#[test]
fn slurm_settings_and_resources_reach_the_plan() {
    let workflow = load(GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(workflow.executor.kind, Some(ExecutorKind::Slurm));
    assert_eq!(workflow.executor.partition.as_deref(), Some("gpu"));
    assert_eq!(workflow.executor.account.as_deref(), Some("lab-1"));
    assert_eq!(workflow.executor.extra, vec!["--qos=high".to_owned()]);
    let data = workflow.step("data").unwrap();
    assert_eq!(data.executor, Some(ExecutorKind::Local));
    let train = workflow.step("train").unwrap();
    assert_eq!(train.executor, None);
    assert_eq!(train.gpus, 2);
    assert_eq!(train.resources.cpus, Some(8));
    assert_eq!(train.resources.memory_mb, Some(64 * 1024));
    assert_eq!(train.resources.sbatch, vec!["--constraint=a100".to_owned()]);
}

#[test]
fn a_plain_executor_name_is_enough() {
    let text = "name: w\nexecutor: slurm\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n";
    let workflow = load(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(workflow.executor.kind, Some(ExecutorKind::Slurm));
    assert_eq!(workflow.executor.partition, None);
}

fn error_of(text: &str) -> String {
    load(text)
        .expect_err("the workflow should be rejected")
        .to_string()
}

#[test]
fn bad_values_are_refused_where_they_are() {
    let unknown = error_of(
        "name: w\nexecutor: {type: kubernetes}\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n",
    );
    assert!(unknown.contains("slurm.yaml:2:"), "{unknown}");
    assert!(
        unknown.contains("`kubernetes`") && unknown.contains("`local` and `slurm`"),
        "{unknown}"
    );

    let step = error_of(
        "name: w\nsteps:\n  - id: data\n    uses: convert\n    executor: cloud\n    with: {source: a}\n",
    );
    assert!(step.contains("slurm.yaml:5:15"), "{step}");

    let memory = error_of(
        "name: w\nsteps:\n  - id: data\n    uses: convert\n    resources: {memory: lots}\n    with: {source: a}\n",
    );
    assert!(
        memory.contains("slurm.yaml:5:") && memory.contains("`16G`"),
        "{memory}"
    );

    let option = error_of(
        "name: w\nexecutor: {type: slurm, extra: [\"--export=ALL\"]}\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n",
    );
    assert!(
        option.contains("slurm.yaml:2:") && option.contains("erebor sets itself"),
        "{option}"
    );

    let partition = error_of(
        "name: w\nexecutor: {type: slurm, partition: \"gpu --wrap=x\"}\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n",
    );
    assert!(partition.contains("must be a name"), "{partition}");

    let local = error_of(
        "name: w\nexecutor: {type: local, partition: gpu}\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n",
    );
    assert!(local.contains("Slurm settings"), "{local}");

    let key = error_of(
        "name: w\nexecutor: {type: slurm, queue: gpu}\nsteps:\n  - id: data\n    uses: convert\n    with: {source: a}\n",
    );
    assert!(key.contains("queue"), "{key}");
}
