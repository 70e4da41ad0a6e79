//! Cancellation: SIGINT or SIGTERM to the runner stops running steps (SIGTERM, then SIGKILL
//! after the grace period), marks them interrupted and the run cancelled, keeps every metric
//! recorded so far, leaves no process behind, and `erebor resume` finishes the run.

mod common;

use common::{Sandbox, processes_mentioning};
use erebor_engine::process::{Signal, signal_process};
use erebor_store::{AttemptStatus, MetricFilter, RunStatus, StepStatus};
use std::time::{Duration, Instant};

const WORKFLOW: &str = r"
name: long
steps:
  - id: work
    uses: command
    with:
      argv: [./work.sh]
  - id: stubborn
    uses: command
    with:
      argv: [./stubborn.sh]
  - id: after
    uses: noop
    needs: [work, stubborn]
";

/// Emits a metric every 50 ms for a long time (or briefly once a marker file exists).
const WORK: &str = "#!/bin/sh\ni=0\nn=400\n[ -f \"$EREBOR_BASE_DIR/quick\" ] && n=3\nwhile [ $i -lt $n ]; do echo \"erebor:metric tick $i $i\"; i=$((i+1)); sleep 0.05; done\n";
/// Ignores SIGTERM: only the runner's SIGKILL after the grace period stops it.
const STUBBORN: &str = "#!/bin/sh\ntrap '' TERM\ni=0\nn=400\n[ -f \"$EREBOR_BASE_DIR/quick\" ] && n=3\nwhile [ $i -lt $n ]; do i=$((i+1)); sleep 0.05; done\n";

fn cancelled_by(sandbox: &Sandbox, signal: Signal) {
    sandbox.script("work.sh", WORK);
    sandbox.script("stubborn.sh", STUBBORN);
    let workflow = sandbox.write("long.yaml", WORKFLOW);
    let runner = sandbox
        .erebor()
        .args([
            "run",
            workflow.to_str().unwrap(),
            "-q",
            "--stop-grace",
            "1s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_until_both_steps_run(sandbox);
    // Metrics are readable while the run goes on, and a second runner cannot take it over.
    let csv = sandbox.expect(&["metrics", &run, "--key", "tick", "--format", "csv"], 0);
    assert!(
        csv.lines().count() >= 4 && csv.contains("work,tick,0,0,"),
        "{csv}"
    );
    let refused = sandbox.run(&["resume", &run]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is still being run by pid"),
        "{refused:?}"
    );
    let list = sandbox.expect(&["runs", "list"], 0);
    assert!(list.contains("running"), "{list}");

    let sent = Instant::now();
    signal_process(runner.id(), signal).unwrap();
    let output = runner.wait_with_output().unwrap();
    let took = sent.elapsed();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(took < Duration::from_secs(8), "stopping took {took:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("run {run}: cancelled")) && stdout.contains("interrupted: work"),
        "{stdout}"
    );

    let metrics_at_cancel = assert_cancelled_in_the_store(sandbox, &run);
    assert!(
        processes_mentioning(sandbox.path().to_str().unwrap()).is_empty(),
        "step processes survived the cancel"
    );

    // Resume finishes it; the metrics recorded before the cancel are still there.
    sandbox.write("quick", "");
    let out = sandbox.expect(&["resume", &run, "-q"], 0);
    assert!(out.contains(&format!("run {run}: succeeded")), "{out}");
    sandbox.with_store(async |store| {
        assert_eq!(
            store
                .get_run(&erebor_store::RunId::new(&run))
                .await
                .unwrap()
                .unwrap()
                .status,
            RunStatus::Succeeded
        );
        let rows = store
            .metrics(
                &erebor_store::RunId::new(&run),
                &MetricFilter {
                    step: Some("work".into()),
                    key: Some("tick".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            rows.len(),
            metrics_at_cancel + 3,
            "the old attempt's rows stay, the new attempt adds its own"
        );
    });
}

fn cancelled_by_sigint(sandbox: &Sandbox) {
    cancelled_by(sandbox, Signal::Int);
}

fn cancelled_by_sigterm(sandbox: &Sandbox) {
    cancelled_by(sandbox, Signal::Term);
}

on_both_backends!(cancelled_by_sigint, cancelled_by_sigterm);

/// The run's id once both long steps run and at least three metrics are recorded (30 s at
/// most).
fn wait_until_both_steps_run(sandbox: &Sandbox) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the steps did not start");
        std::thread::sleep(Duration::from_millis(100));
        let ready = sandbox.with_store(async |store| {
            let runs = store
                .list_runs(&erebor_store::RunFilter::default())
                .await
                .unwrap();
            let run = runs.first()?.id.to_string();
            let running = store
                .attempts_of(&erebor_store::RunId::new(&run))
                .await
                .unwrap()
                .iter()
                .filter(|a| a.status == AttemptStatus::Running)
                .count();
            let metrics = store
                .metric_count(&erebor_store::RunId::new(&run))
                .await
                .unwrap();
            (running == 2 && metrics >= 3).then_some(run)
        });
        if let Some(run) = ready {
            break run;
        }
    }
}

/// The cancelled run as the store holds it: cancelled, both running steps and their attempts
/// interrupted, the dependent step pending, the `work` metrics without gaps; their count.
fn assert_cancelled_in_the_store(sandbox: &Sandbox, run: &str) -> usize {
    sandbox.with_store(async |store| {
        let record = store
            .get_run(&erebor_store::RunId::new(run))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, RunStatus::Cancelled);
        let steps = store
            .steps_of(&erebor_store::RunId::new(run))
            .await
            .unwrap();
        let status = |id: &str| {
            steps
                .iter()
                .find(|s| s.step_id.as_str() == id)
                .unwrap()
                .status
        };
        assert_eq!(status("work"), StepStatus::Interrupted);
        assert_eq!(status("stubborn"), StepStatus::Interrupted);
        assert_eq!(status("after"), StepStatus::Pending);
        let attempts = store
            .attempts_of(&erebor_store::RunId::new(run))
            .await
            .unwrap();
        assert!(
            attempts
                .iter()
                .all(|a| a.status == AttemptStatus::Interrupted),
            "{attempts:?}"
        );
        let rows = store
            .metrics(
                &erebor_store::RunId::new(run),
                &MetricFilter {
                    step: Some("work".into()),
                    key: Some("tick".into()),
                },
            )
            .await
            .unwrap();
        assert!(rows.len() >= 3);
        let indexes: Vec<i64> = rows.iter().map(|r| r.index).collect();
        assert_eq!(
            indexes,
            (0..i64::try_from(rows.len()).unwrap()).collect::<Vec<_>>(),
            "no gaps, no duplicates"
        );
        rows.len()
    })
}
