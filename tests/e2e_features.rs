//! End-to-end: GPU slots become `CUDA_VISIBLE_DEVICES` (and plan shows them), the README's
//! commands are the ones CI and users run, a device typo stops a run before any step, and spans
//! reach an OTLP collector.

mod common;

use common::Sandbox;

const GPUS: &str = r#"
name: gpus
steps:
  - id: train
    uses: command
    matrix: {seed: [1, 2, 3]}
    resources: {gpus: 1}
    with:
      argv: [./record.sh, "${{ matrix.seed }}"]
      outputs: {devices: devices.txt}
  - id: big
    uses: command
    needs: [train]
    resources: {gpus: 2}
    with:
      argv: [./record.sh]
      outputs: {devices: devices.txt}
"#;

fn gpu_slots_become_cuda_visible_devices(sandbox: &Sandbox) {
    // Each step records its CUDA_VISIBLE_DEVICES and the time it ran.
    sandbox.script(
        "record.sh",
        "#!/bin/sh
start=$(date +%s%N)
sleep 0.3
echo \"$CUDA_VISIBLE_DEVICES $start $(date +%s%N)\" > devices.txt\n",
    );
    let path = sandbox.write("gpus.yaml", GPUS);
    let path = path.to_str().unwrap();
    let plan = sandbox.expect(&["plan", path, "--gpus", "3,5", "--jobs", "8"], 0);
    let slots: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains(" command "))
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(
        slots,
        ["3", "5", "3", "3,5"],
        "two GPUs: two of the three arms start at once\n{plan}"
    );
    let refused = sandbox.expect(&["plan", path, "--gpus", "1"], 0);
    assert!(
        refused.contains("needs 2 GPU(s) but only 1 are available"),
        "{refused}"
    );

    sandbox.expect(&["run", path, "--gpus", "3,5", "--jobs", "8", "-q"], 0);
    let run = sandbox.latest_run().unwrap();
    let read = |step: &str| {
        let text = std::fs::read_to_string(
            sandbox
                .home()
                .join("runs")
                .join(&run)
                .join("steps")
                .join(step)
                .join("devices.txt"),
        )
        .unwrap();
        let parts: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        (
            parts[0].clone(),
            parts[1].parse::<u128>().unwrap(),
            parts[2].parse::<u128>().unwrap(),
        )
    };
    let arms: Vec<_> = ["train-1", "train-2", "train-3"]
        .iter()
        .map(|s| read(s))
        .collect();
    for (i, a) in arms.iter().enumerate() {
        assert!(a.0 == "3" || a.0 == "5", "{a:?}");
        for b in &arms[i + 1..] {
            let overlap = a.1 < b.2 && b.1 < a.2;
            assert!(
                !(overlap && a.0 == b.0),
                "two steps shared GPU {} at once",
                a.0
            );
        }
    }
    // Most arms running at one instant: the count at some arm's start (where it can only rise).
    // Not "arms overlapping one arm": an arm on one GPU may overlap two arms that run back to
    // back on the other, which is two at a time, not three.
    let busiest = arms
        .iter()
        .map(|a| arms.iter().filter(|b| b.1 <= a.1 && a.1 < b.2).count())
        .max()
        .unwrap();
    assert_eq!(
        busiest, 2,
        "with two GPU slots, two one-GPU steps run at a time"
    );
    assert_eq!(read("big").0, "3,5");
    // Without enough GPUs the step fails as bad input instead of waiting forever.
    let out = sandbox.expect(&["run", path, "--gpus", "1", "--no-cache"], 1);
    assert!(out.contains("failed: big"), "{out}");
}

fn readme_commands_are_the_ones_ci_and_users_run(sandbox: &Sandbox) {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(common::repo_root().join(".ci/run")).unwrap();
    assert!(readme.contains("cargo run -p erebor-cli -- run workflows/quickstart.yaml"));
    let marker = readme
        .find("<!-- ci:test-command")
        .expect("README marks its test command");
    let block = readme[marker..].split("```sh\n").nth(1).unwrap();
    let command = block.lines().next().unwrap();
    assert!(command.starts_with("cargo test"), "{command}");
    assert!(
        ci.contains("ci:test-command") && ci.contains("bash -c \"$test_command\""),
        ".ci/run runs the README's command"
    );
    // The workflows the README names validate as the README runs them (from the repository root).
    for workflow in [
        "workflows/quickstart.yaml",
        "workflows/dpo-vs-dpop.yaml",
        "workflows/examples/command-pipeline.yaml",
    ] {
        assert!(readme.contains(workflow), "README names {workflow}");
        let out = sandbox
            .erebor()
            .current_dir(common::repo_root())
            .args(["validate", workflow])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{workflow}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

on_both_backends!(
    gpu_slots_become_cuda_visible_devices,
    readme_commands_are_the_ones_ci_and_users_run
);

/// A command step, then a training step whose device is a typo (`gpu`).
const DEVICE_TYPO: &str = r#"
name: device-typo
steps:
  - id: first
    uses: command
    with:
      argv: [sh, -c, "echo ran > touched.txt"]
      outputs: {touched: touched.txt}
  - id: train
    uses: sft
    needs: [first]
    with:
      model: m
      dataset: d
      lr: 1.0e-5
      device: gpu
"#;

/// `device: gpu` is refused by `validate`, `plan` and `run` at its line and column, with the
/// supported devices, before any step runs: the command step upstream never starts.
#[test]
fn a_device_typo_fails_validation_before_any_step_runs() {
    let sandbox = Sandbox::new(common::Backend::Sqlite).unwrap();
    let path = sandbox.write("typo.yaml", DEVICE_TYPO);
    for command in ["validate", "plan", "run"] {
        let output = sandbox.run(&[command, path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "error[type-mismatch]: `with.device` of step `train` (sft): unknown value `gpu`"
            ) && stderr.contains("typo.yaml:16:15")
                && stderr.contains("help: supported values: `cpu`, `tch-cpu`, `cuda:N`"),
            "{command}: {stderr}"
        );
    }
    // The command step writes touched.txt in its work folder, wherever that is under the sandbox.
    assert!(!contains_file(sandbox.path(), "touched.txt"), "no step ran");
    let list = sandbox.expect(&["runs", "list"], 0);
    assert!(list.starts_with("no runs"), "{list}");
}

fn contains_file(dir: &std::path::Path, name: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        path.file_name().is_some_and(|n| n == name) || (path.is_dir() && contains_file(&path, name))
    })
}

/// `--otlp-endpoint` exports the run's spans over OTLP/HTTP (protobuf) to the collector.
#[test]
fn spans_are_exported_to_an_otlp_collector() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = std::sync::mpsc::channel::<(String, String, Vec<u8>)>();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut content_type = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if let Some(value) = lower.strip_prefix("content-type:") {
                    content_type = value.trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            let _ = sender.send((request_line, content_type, body));
        }
    });
    let sandbox = Sandbox::new(common::Backend::Sqlite).unwrap();
    let workflow = sandbox.copy_command_pipeline();
    let endpoint = format!("http://127.0.0.1:{port}");
    sandbox.expect(
        &[
            "run",
            workflow.to_str().unwrap(),
            "-q",
            "--otlp-endpoint",
            &endpoint,
        ],
        0,
    );
    let (request_line, content_type, body) = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(
        request_line.starts_with("POST /v1/traces "),
        "{request_line}"
    );
    assert_eq!(content_type, "application/x-protobuf");
    // The protobuf carries the service name and the per-step spans with their attributes.
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("erebor") && text.contains("step") && text.contains("stats[eval]"),
        "{text}"
    );
}
