//! A runner killed with SIGKILL at 20 random moments, each followed by `erebor resume` to
//! completion. After every resume: the run succeeded, each step has exactly one succeeded
//! attempt, no two attempts of a step overlapped, every metric index of every step is present
//! with the value the step computes, outputs exist, and no step process outlived its runner.

mod common;

use common::{Sandbox, processes_mentioning};
use erebor_store::{AttemptStatus, MetricFilter, RunStatus, merge_attempts};
use std::time::{Duration, Instant};

const WORKFLOW: &str = r#"
name: resumable
steps:
  - id: prepare
    uses: command
    with:
      argv: [./prepare.sh]
      outputs: {data: data.txt}
  - id: train
    uses: command
    matrix: {arm: [1, 2]}
    with:
      argv: [./train.sh, "${{ matrix.arm }}", "${{ steps.prepare.outputs.data }}"]
      outputs: {model: model.txt}
      metric_outputs: [final]
  - id: report
    uses: report
    needs: [train]
    with: {steps: [train]}
"#;

/// Resumable: continues from the index in its checkpoint file (in its work folder).
const TRAIN: &str = r#"#!/bin/sh
set -eu
arm=$1
data=$2
test -s "$data"
i=$(cat ckpt 2>/dev/null || echo 0)
while [ "$i" -lt 20 ]; do
    sleep 0.03
    echo "erebor:metric loss $i $(( arm * 1000 + i ))"
    i=$(( i + 1 ))
    echo "$i" > ckpt.tmp
    mv ckpt.tmp ckpt
done
echo "arm $arm" > model.txt
echo "erebor:metric final 0 $(( arm * 1000 + 19 ))"
"#;

const PREPARE: &str = "#!/bin/sh\nsleep 0.1\necho data > data.txt\n";

/// A deterministic sequence of kill delays spread over the run (seeded, so failures replay).
fn delays(count: usize, max_ms: u64) -> Vec<u64> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            20 + seed % max_ms
        })
        .collect()
}

fn killed_runs_resume_to_completion(sandbox: &Sandbox) {
    sandbox.script("train.sh", TRAIN);
    sandbox.script("prepare.sh", PREPARE);
    let workflow = sandbox.write("resumable.yaml", WORKFLOW);
    let workflow = workflow.to_str().unwrap();
    // How long an uninterrupted run takes here (the second one: the first also creates the
    // database), to spread the kills over it.
    sandbox.expect(&["run", workflow, "--no-cache", "-q"], 0);
    let started = Instant::now();
    sandbox.expect(&["run", workflow, "--no-cache", "-q"], 0);
    let full = u64::try_from(started.elapsed().as_millis()).unwrap();
    let mut killed_before_start = 0;
    let mut interrupted_rounds = 0;
    for (round, delay) in delays(20, full.max(200)).into_iter().enumerate() {
        let before = run_count(sandbox);
        let mut runner = sandbox
            .erebor()
            .args(["run", workflow, "--no-cache", "-q", "--stop-grace", "2s"])
            .spawn()
            .unwrap();
        // Even rounds count from the start of the process (kills may land in start-up and
        // migration); odd rounds from the moment the run is recorded.
        if round % 2 == 1 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while newest_run_since(sandbox, before).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(delay));
        runner.kill().unwrap(); // SIGKILL
        let status = runner.wait().unwrap();
        let Some(run) = newest_run_since(sandbox, before) else {
            killed_before_start += 1;
            continue;
        };
        if status.success() {
            // The run finished before the kill landed; it must be complete as it is.
            check_complete(sandbox, &run);
            continue;
        }
        let output = sandbox.run(&["resume", &run, "-q", "--stop-grace", "2s"]);
        assert!(
            output.status.success(),
            "round {round}, killed after {delay} ms: resume failed\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        check_complete(sandbox, &run);
        if interrupted_attempts(sandbox, &run) > 0 {
            interrupted_rounds += 1;
        }
        assert!(
            processes_mentioning(sandbox.path().to_str().unwrap()).is_empty(),
            "round {round}: step processes outlived their runner"
        );
    }
    eprintln!(
        "{interrupted_rounds} of 20 kills interrupted a running step; {killed_before_start} landed before the run was recorded"
    );
    assert!(
        interrupted_rounds >= 8,
        "most kills should interrupt a running step (only {interrupted_rounds} did)"
    );
}

fn interrupted_attempts(sandbox: &Sandbox, run: &str) -> usize {
    sandbox.with_store(async |store| {
        store
            .attempts_of(&erebor_store::RunId::new(run))
            .await
            .unwrap()
            .iter()
            .filter(|a| a.status == AttemptStatus::Interrupted)
            .count()
    })
}

fn run_count(sandbox: &Sandbox) -> usize {
    sandbox.with_store(async |store| {
        store
            .list_runs(&erebor_store::RunFilter::default())
            .await
            .unwrap()
            .len()
    })
}

/// The newest run, if there are more than `before` runs (it was created in this round).
fn newest_run_since(sandbox: &Sandbox, before: usize) -> Option<String> {
    sandbox.with_store(async |store| {
        let runs = store
            .list_runs(&erebor_store::RunFilter::default())
            .await
            .unwrap();
        (runs.len() > before).then(|| runs[0].id.to_string())
    })
}

fn check_complete(sandbox: &Sandbox, run: &str) {
    sandbox.with_store(async |store| {
        let record = store
            .get_run(&erebor_store::RunId::new(run))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, RunStatus::Succeeded, "{run}");
        let steps = store
            .steps_of(&erebor_store::RunId::new(run))
            .await
            .unwrap();
        assert_eq!(steps.len(), 4);
        let attempts = store
            .attempts_of(&erebor_store::RunId::new(run))
            .await
            .unwrap();
        for step in &steps {
            assert!(step.status.is_done(), "{step:?}");
            let mine: Vec<_> = attempts
                .iter()
                .filter(|a| a.step_id == step.step_id)
                .collect();
            assert_eq!(
                mine.iter()
                    .filter(|a| a.status == AttemptStatus::Succeeded)
                    .count(),
                1,
                "{run} {}: {step:?}\n{mine:?}",
                step.step_id
            );
            assert!(mine.iter().all(|a| a.status != AttemptStatus::Running));
            for pair in mine.windows(2) {
                let first_end = pair[0].finished_at.expect("finished");
                assert!(
                    first_end <= pair[1].started_at,
                    "attempts of {} overlapped",
                    step.step_id
                );
            }
            for (name, value) in step.outputs.as_ref().unwrap()["values"]
                .as_object()
                .unwrap()
            {
                if let Some(path) = value.get("path") {
                    assert!(
                        std::path::Path::new(path.as_str().unwrap()).exists(),
                        "output {name} of {}",
                        step.step_id
                    );
                }
            }
        }
        for arm in [1i64, 2] {
            let step = format!("train[{arm}]");
            let rows = store
                .metrics(
                    &erebor_store::RunId::new(run),
                    &MetricFilter {
                        step: Some(step.clone().into()),
                        key: Some("loss".into()),
                    },
                )
                .await
                .unwrap();
            // One row per (attempt, index): a replayed events file added nothing.
            let mut keys: Vec<_> = rows
                .iter()
                .map(|r| (r.attempt_id.clone(), r.index))
                .collect();
            let total = keys.len();
            keys.dedup();
            assert_eq!(keys.len(), total);
            let merged = merge_attempts(&rows);
            let series = &merged["loss"];
            let expected: Vec<(i64, f64)> = (0..20).map(|i| (i, (arm * 1000 + i) as f64)).collect();
            assert_eq!(series, &expected, "{run} {step}");
        }
    });
}

on_both_backends!(killed_runs_resume_to_completion);
