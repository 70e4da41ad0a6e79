//! The engine's run loop with the in-process executor and process-free steps: retries and
//! backoff, GPU slots, cancellation, a store failing its k-th write (then a resume from the
//! state that left), an executor losing an attempt, and re-attaching after a runner restart.

mod common;

use common::{Cluster, FailKthWrite, Harness, Losing, eventually};
use erebor_engine::{InProcessExecutor, RunControl, StopLevel};
use erebor_store::{
    AttemptStatus, MetricFilter, RunFilter, RunId, RunStatus, StepStatus, Store, merge_attempts,
};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHAIN: &str = r#"
name: chain
steps:
  - id: a
    uses: noop
    with: {value: 1, points: 4}
  - id: b
    uses: noop
    needs: [a]
    matrix: {arm: [1, 2]}
    with: {value: "${{ matrix.arm }}", points: 4}
  - id: c
    uses: noop
    needs: [b]
    with: {value: 9, points: 4}
"#;

/// Every step done with exactly one succeeded attempt, no attempt live, the loss series of
/// every step complete.
async fn assert_complete(store: &Store, run: &RunId) {
    let record = store.get_run(run).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{record:?}");
    let attempts = store.attempts_of(run).await.unwrap();
    assert!(
        attempts.iter().all(|a| !a.status.is_live()),
        "{attempts:#?}"
    );
    for step in store.steps_of(run).await.unwrap() {
        assert!(step.status.is_done(), "{step:?}");
        let succeeded = attempts
            .iter()
            .filter(|a| a.step_id == step.step_id && a.status == AttemptStatus::Succeeded)
            .count();
        assert_eq!(succeeded, 1, "{}: {attempts:#?}", step.step_id);
        let filter = MetricFilter {
            step: Some(step.step_id.clone()),
            key: Some("loss".into()),
        };
        let merged = merge_attempts(&store.metrics(run, &filter).await.unwrap());
        let indexes: Vec<i64> = merged["loss"].iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [0, 1, 2, 3], "{}", step.step_id);
    }
}

#[tokio::test]
async fn retries_back_off_exponentially_then_succeed() {
    use AttemptStatus::{Failed, Succeeded};
    let h = Harness::new().await;
    let workflow = h.workflow(
        "name: flaky\nsteps:\n  - id: f\n    uses: flaky\n    retries: 2\n    retry_backoff: 150ms\n    with: {fail_times: 2}\n",
    );
    let summary = h.run(&workflow).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    let attempts = h.store.attempts_of(&summary.run_id).await.unwrap();
    let statuses: Vec<AttemptStatus> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Failed, Failed, Succeeded]);
    let gap = |i: usize| attempts[i + 1].started_at - attempts[i].finished_at.unwrap();
    assert!(gap(0) >= 150, "first backoff {} ms", gap(0));
    assert!(gap(1) >= 300, "second backoff {} ms (doubled)", gap(1));
    assert_eq!(attempts[0].failure_class.as_deref(), Some("transient"));
}

#[tokio::test]
async fn a_step_out_of_retries_fails_and_its_dependents_are_skipped() {
    let h = Harness::new().await;
    let workflow = h.workflow(
        "name: flaky\nsteps:\n  - id: f\n    uses: flaky\n    retries: 1\n    retry_backoff: 10ms\n    with: {fail_times: 5}\n  - id: after\n    uses: noop\n    needs: [f]\n",
    );
    let summary = h.run(&workflow).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(summary.summary.failed.len(), 1);
    assert_eq!(summary.summary.skipped.len(), 1);
    let steps = h.store.steps_of(&summary.run_id).await.unwrap();
    assert_eq!(steps[1].status, StepStatus::Skipped);
    let attempts = h.store.attempts_of(&summary.run_id).await.unwrap();
    assert_eq!(attempts.len(), 2, "one retry");
}

#[tokio::test]
async fn gpu_slots_are_assigned_without_overlap() {
    let h = Harness::new().await;
    let workflow = h.workflow(
        "name: gpus\nsteps:\n  - id: one\n    uses: noop\n    matrix: {arm: [1, 2, 3, 4]}\n    resources: {gpus: 1}\n    with: {sleep_ms: 60, value: \"${{ matrix.arm }}\"}\n  - id: two\n    uses: noop\n    resources: {gpus: 2}\n    with: {sleep_ms: 60}\n",
    );
    let options = h.options(h.in_process(), 8, vec![4, 7]);
    let summary = h
        .engine(h.store.clone(), options, RunControl::new())
        .run(&workflow)
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded);
    let attempts = h.store.attempts_of(&summary.run_id).await.unwrap();
    assert_eq!(attempts.len(), 5);
    for attempt in &attempts {
        let want = if attempt.step_id.as_str() == "two" {
            2
        } else {
            1
        };
        assert_eq!(attempt.gpus.len(), want, "{attempt:?}");
        assert!(
            attempt.gpus.iter().all(|g| [4, 7].contains(g)),
            "{attempt:?}"
        );
    }
    for (i, x) in attempts.iter().enumerate() {
        for y in &attempts[i + 1..] {
            let overlap =
                x.started_at < y.finished_at.unwrap() && y.started_at < x.finished_at.unwrap();
            let shared = x.gpus.iter().any(|g| y.gpus.contains(g));
            assert!(!(overlap && shared), "{x:?} and {y:?} shared a GPU slot");
        }
    }
}

#[tokio::test]
async fn cancelling_interrupts_the_running_step_and_resume_finishes_the_run() {
    let h = Harness::new().await;
    let release = h.release_file();
    let workflow = h.workflow(&format!(
        "name: cancel\nsteps:\n  - id: first\n    uses: noop\n  - id: wait\n    uses: block\n    needs: [first]\n    with: {{release: \"{}\"}}\n  - id: last\n    uses: noop\n    needs: [wait]\n",
        release.display()
    ));
    let control = RunControl::new();
    let engine = h.engine(
        h.store.clone(),
        h.options(h.in_process(), 2, vec![]),
        control.clone(),
    );
    let running = tokio::spawn(async move { engine.run(&workflow).await });
    let store = h.store.clone();
    eventually("the blocking step to run", async || {
        let runs = store.list_runs(&RunFilter::default()).await.unwrap();
        let Some(run) = runs.first() else {
            return false;
        };
        let attempts = store.attempts_of(&run.id).await.unwrap();
        attempts
            .iter()
            .any(|a| a.step_id.as_str() == "wait" && a.status == AttemptStatus::Running)
    })
    .await;
    control.stop(StopLevel::Graceful);
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert!(summary.summary.cancelled);
    let run = summary.run_id.clone();
    let steps = h.store.steps_of(&run).await.unwrap();
    let status: BTreeMap<&str, StepStatus> = steps
        .iter()
        .map(|s| (s.step_id.as_str(), s.status))
        .collect();
    assert_eq!(status["first"], StepStatus::Succeeded);
    assert_eq!(status["wait"], StepStatus::Interrupted);
    assert_eq!(status["last"], StepStatus::Pending);
    std::fs::write(&release, "go").unwrap();
    let resumed = h.resume(&run).await;
    assert_eq!(resumed.status, RunStatus::Succeeded);
    let attempts = h.store.attempts_of(&run).await.unwrap();
    let waits: Vec<AttemptStatus> = attempts
        .iter()
        .filter(|a| a.step_id.as_str() == "wait")
        .map(|a| a.status)
        .collect();
    assert_eq!(
        waits,
        [AttemptStatus::Interrupted, AttemptStatus::Succeeded]
    );
}

#[tokio::test]
async fn transient_store_errors_are_retried_without_failing_the_run() {
    let mut h = Harness::new().await;
    h.no_cache = true;
    let workflow = h.workflow(CHAIN);
    for k in [1, 2, 5, 9, 14, 20] {
        let gate = FailKthWrite::transient(k, 2);
        let store = h.store.with_write_gate(gate.clone());
        let options = h.options(h.in_process(), 4, vec![]);
        let summary = h
            .engine(store, options, RunControl::new())
            .run(&workflow)
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Succeeded, "k = {k}: {summary:?}");
        assert_eq!(gate.failed.lock().unwrap().len(), 2, "k = {k}");
        assert_complete(&h.store, &summary.run_id).await;
    }
}

/// For every k, a store that refuses its k-th write (and every later one) for good: the run
/// stops with the store failure (never "succeeded" with a write dropped), and a resume with a
/// working store finishes it from whatever state that left: steps pending, attempts recorded
/// before submission, running, finished but unrecorded.
#[tokio::test]
async fn a_store_failing_its_kth_write_fails_the_run_and_a_resume_finishes_it() {
    let mut h = Harness::new().await;
    h.no_cache = true;
    let workflow = h.workflow(CHAIN);
    let counting = FailKthWrite::permanent(u32::MAX);
    let options = h.options(h.in_process(), 4, vec![]);
    let clean = h
        .engine(
            h.store.with_write_gate(counting.clone()),
            options,
            RunControl::new(),
        )
        .run(&workflow)
        .await
        .unwrap();
    assert_eq!(clean.status, RunStatus::Succeeded);
    let writes = counting.write_count();
    assert!(writes >= 20, "a clean run made {writes} writes");
    for k in 2..=writes {
        let gate = FailKthWrite::permanent(k);
        let options = h.options(h.in_process(), 4, vec![]);
        let engine = h.engine(
            h.store.with_write_gate(gate.clone()),
            options,
            RunControl::new(),
        );
        let result = engine.run(&workflow).await;
        let run = match result {
            Ok(summary) => {
                assert_ne!(
                    summary.status,
                    RunStatus::Succeeded,
                    "k = {k}: a refused write went unnoticed"
                );
                assert!(
                    summary.summary.store_failure.is_some(),
                    "k = {k}: {summary:?}"
                );
                summary.run_id.clone()
            }
            // The run's end itself could not be recorded: it stays `running`, resumable.
            Err(error) => {
                let runs = h.store.list_runs(&RunFilter::default()).await.unwrap();
                assert!(
                    error.to_string().contains("injected failure"),
                    "k = {k}: {error}"
                );
                runs[0].id.clone()
            }
        };
        let resumed = h.resume(&run).await;
        assert_eq!(resumed.status, RunStatus::Succeeded, "k = {k}: {resumed:?}");
        assert_complete(&h.store, &run).await;
    }
}

#[tokio::test]
async fn a_lost_attempt_runs_again_without_using_a_retry() {
    let h = Harness::new().await;
    let workflow = h.workflow(
        "name: lost\nsteps:\n  - id: only\n    uses: noop\n    with: {sleep_ms: 50, points: 4}\n",
    );
    let executor = Arc::new(Losing {
        inner: InProcessExecutor::new(h.registry.clone()),
        lose: 1,
        lost: Mutex::default(),
        submitted: AtomicU32::default(),
    });
    let options = h.options(executor, 1, vec![]);
    let summary = h
        .engine(h.store.clone(), options, RunControl::new())
        .run(&workflow)
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    let attempts = h.store.attempts_of(&summary.run_id).await.unwrap();
    let statuses: Vec<AttemptStatus> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [AttemptStatus::Lost, AttemptStatus::Succeeded]);
    assert!(
        attempts[0]
            .failure_message
            .as_deref()
            .unwrap_or("")
            .contains("lost")
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.external_id.is_some() && a.submitted_at.is_some())
    );
    assert_complete(&h.store, &summary.run_id).await;
}

#[tokio::test]
async fn a_restarted_runner_reattaches_to_a_live_attempt_by_its_external_id() {
    let h = Harness::new().await;
    let release = h.release_file();
    let workflow = h.workflow(&format!(
        "name: reattach\nsteps:\n  - id: job\n    uses: block\n    with: {{release: \"{}\"}}\n  - id: after\n    uses: noop\n    needs: [job]\n",
        release.display()
    ));
    // One cluster, two runners: the first is killed while its job runs.
    let cluster: Arc<Cluster> = Arc::new(Cluster(InProcessExecutor::new(h.registry.clone())));
    let engine = h.engine(
        h.store.clone(),
        h.options(cluster.clone(), 2, vec![]),
        RunControl::new(),
    );
    let first = tokio::spawn(async move { engine.run(&workflow).await });
    let store = h.store.clone();
    eventually("the job to run", async || {
        let runs = store.list_runs(&RunFilter::default()).await.unwrap();
        let Some(run) = runs.first() else {
            return false;
        };
        let attempts = store.attempts_of(&run.id).await.unwrap();
        attempts.iter().any(|a| a.status == AttemptStatus::Running)
    })
    .await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let run = h.store.list_runs(&RunFilter::default()).await.unwrap()[0]
        .id
        .clone();
    let attempt = h.store.attempts_of(&run).await.unwrap().remove(0);
    assert_eq!(attempt.status, AttemptStatus::Running);
    let external_id = attempt.external_id.clone().expect("external id stored");

    let record = h.run_record(&run).await;
    let workflow = h.workflow(&record.workflow_text);
    let engine = h.engine(
        h.store.clone(),
        h.options(cluster.clone(), 2, vec![]),
        RunControl::new(),
    );
    let second = tokio::spawn(async move { engine.resume(&record, &workflow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !second.is_finished(),
        "the re-attached job is still blocked"
    );
    std::fs::write(&release, "go").unwrap();
    let summary = second.await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    let attempts = h.store.attempts_of(&run).await.unwrap();
    let jobs: Vec<_> = attempts
        .iter()
        .filter(|a| a.step_id.as_str() == "job")
        .collect();
    assert_eq!(
        jobs.len(),
        1,
        "the job was followed, not run again: {jobs:#?}"
    );
    assert_eq!(jobs[0].status, AttemptStatus::Succeeded);
    assert_eq!(jobs[0].external_id.as_deref(), Some(external_id.as_str()));
}

#[tokio::test]
async fn in_process_attempts_of_a_dead_runner_are_interrupted_and_run_again() {
    let h = Harness::new().await;
    let release = h.release_file();
    let workflow = h.workflow(&format!(
        "name: dead\nsteps:\n  - id: job\n    uses: block\n    with: {{release: \"{}\"}}\n",
        release.display()
    ));
    let executor = h.in_process();
    let engine = h.engine(
        h.store.clone(),
        h.options(executor, 2, vec![]),
        RunControl::new(),
    );
    let first = tokio::spawn(async move { engine.run(&workflow).await });
    let store = h.store.clone();
    eventually("the job to run", async || {
        let runs = store.list_runs(&RunFilter::default()).await.unwrap();
        let Some(run) = runs.first() else {
            return false;
        };
        let attempts = store.attempts_of(&run.id).await.unwrap();
        attempts.iter().any(|a| a.status == AttemptStatus::Running)
    })
    .await;
    first.abort();
    let _ = first.await;
    let run = h.store.list_runs(&RunFilter::default()).await.unwrap()[0]
        .id
        .clone();
    std::fs::write(&release, "go").unwrap();
    // A new runner has a new in-process executor: the old attempt cannot be followed.
    let resumed = h.resume(&run).await;
    assert_eq!(resumed.status, RunStatus::Succeeded);
    let statuses: Vec<AttemptStatus> = h
        .store
        .attempts_of(&run)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(
        statuses,
        [AttemptStatus::Interrupted, AttemptStatus::Succeeded]
    );
}

const PRODUCER: &str = r"
name: producer
steps:
  - id: dpop
    uses: noop
    with: {value: 2, points: 4}
";

const REUSER: &str = r#"
name: reuser
steps:
  - id: train
    uses: noop
    matrix: {loss: [1, 2]}
    with: {value: "${{ matrix.loss }}", points: 4}
"#;

/// A step reused from the cache links to the step that produced it (another run, another step
/// id) instead of copying its metrics, and the metrics query follows the link; a result reused
/// from a reusing run links to the producer, not to the middle run.
#[tokio::test]
async fn cache_hits_link_to_the_producing_step_and_its_metrics() {
    let h = Harness::new().await;
    let produced = h.run(&h.workflow(PRODUCER)).await;
    assert_eq!(produced.status, RunStatus::Succeeded);
    let producer_run = produced.run_id.clone();
    for round in 0..2 {
        let summary = h.run(&h.workflow(REUSER)).await;
        assert_eq!(summary.status, RunStatus::Succeeded);
        let run = summary.run_id.clone();
        let steps = h.store.steps_of(&run).await.unwrap();
        let dpop = steps
            .iter()
            .find(|s| s.step_id.as_str() == "train[2]")
            .unwrap();
        assert_eq!(dpop.status, StepStatus::Cached, "round {round}");
        let link = dpop.reused_from().expect("a reuse link");
        assert_eq!(
            (link.run_id.as_str(), link.step_id.as_str()),
            (producer_run.as_str(), "dpop")
        );
        let attempts = h.store.attempts_of(&run).await.unwrap();
        assert!(
            attempts.iter().all(|a| a.step_id.as_str() != "train[2]"),
            "no attempt for a reused step"
        );
        let (rows, via) = h.store.step_metrics(dpop, Some("loss")).await.unwrap();
        assert_eq!(via, Some(link));
        let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
        assert_eq!(values, [2.0, 12.0, 22.0, 32.0]);
        assert!(
            rows.iter().all(|r| r.run_id == producer_run),
            "linked, not copied"
        );
        let copied = h
            .store
            .metrics(
                &run,
                &MetricFilter {
                    step: Some("train[2]".into()),
                    key: None,
                },
            )
            .await
            .unwrap();
        assert!(
            copied.is_empty(),
            "the reusing run holds no copy: {copied:?}"
        );
        // The arm that ran in round 0 is itself reused in round 1, from round 0's run.
        let dpo = steps
            .iter()
            .find(|s| s.step_id.as_str() == "train[1]")
            .unwrap();
        let (own, own_link) = h.store.step_metrics(dpo, Some("score")).await.unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(own_link.is_some(), round == 1);
    }
}
