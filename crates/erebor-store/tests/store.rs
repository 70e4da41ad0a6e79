//! The store suite: the same scenarios on SQLite and on Postgres.

mod common;

use common::records::{attempt, new_run, new_step, point, success};
use erebor_store::*;
use serde_json::json;

async fn runs_are_created_found_listed_and_finished(store: Store) {
    store
        .create_run(&new_run("r-20260101-000000-aaaa", "quickstart"), &[])
        .await
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store
        .create_run(&new_run("r-20260101-000001-bbbb", "dpo-vs-dpop"), &[])
        .await
        .unwrap();

    let run = store.find_run("r-20260101-000000").await.unwrap();
    assert_eq!(run.workflow_name, "quickstart");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.params, json!({"beta": 0.3, "key": "***"}));
    assert_eq!(run.git_dirty, Some(false));
    assert_eq!(run.runner_pid, Some(4242));
    let ambiguous = store.find_run("r-2026").await.unwrap_err();
    assert!(
        ambiguous.to_string().contains("several runs"),
        "{ambiguous}"
    );
    let missing = store.find_run("r-1999").await.unwrap_err();
    assert!(missing.to_string().contains("no run `r-1999`"), "{missing}");

    store
        .set_run_status(
            &RunId::from("r-20260101-000000-aaaa"),
            RunStatus::Failed,
            Some("step x failed"),
        )
        .await
        .unwrap();
    let all = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r-20260101-000001-bbbb", "r-20260101-000000-aaaa"]
    );
    let failed = store
        .list_runs(&RunFilter {
            status: Some(RunStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.as_deref(), Some("step x failed"));
    assert!(failed[0].finished_at.is_some());
    let by_workflow = store
        .list_runs(&RunFilter {
            workflow: Some("dpo-vs-dpop".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_workflow.len(), 1);
    let future = store
        .list_runs(&RunFilter {
            since_ms: Some(now_ms() + 60_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(future.is_empty());
}

async fn finished_steps_are_found_by_fingerprint(store: Store) {
    store
        .create_run(&new_run("r-1", "w"), &[new_step("a", 0), new_step("b", 1)])
        .await
        .unwrap();
    // Inserting again (a resume) keeps existing rows.
    store
        .insert_steps(&RunId::from("r-1"), &[new_step("a", 0)])
        .await
        .unwrap();
    store
        .set_fingerprint(
            &RunId::from("r-1"),
            &StepId::from("a"),
            "fp-a",
            &json!({"kind": "command"}),
        )
        .await
        .unwrap();
    assert!(
        store.find_cached("fp-a").await.unwrap().is_empty(),
        "not finished yet"
    );

    store
        .start_attempt(&attempt("att-1", "r-1", "a", 1))
        .await
        .unwrap();
    store
        .finish_attempt(
            &AttemptId::from("att-1"),
            &success(json!({"values": {"out": {"path": "/x"}}})),
        )
        .await
        .unwrap();
    let hits = store.find_cached("fp-a").await.unwrap();
    assert_eq!(hits[0].run_id.as_str(), "r-1");
    assert_eq!(hits[0].outputs, json!({"values": {"out": {"path": "/x"}}}));

    // A later run reuses it; a lookup through that run still names the producer.
    store.create_run(&new_run("r-2", "w"), &[]).await.unwrap();
    store
        .insert_steps(&RunId::from("r-2"), &[new_step("a", 0)])
        .await
        .unwrap();
    store
        .set_fingerprint(
            &RunId::from("r-2"),
            &StepId::from("a"),
            "fp-a",
            &json!({"kind": "command"}),
        )
        .await
        .unwrap();
    store
        .mark_cached(&RunId::from("r-2"), &StepId::from("a"), &hits[0])
        .await
        .unwrap();
    let step = store
        .get_step(&RunId::from("r-2"), &StepId::from("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(step.status, StepStatus::Cached);
    assert_eq!(step.cached_from_run, Some(RunId::from("r-1")));
    assert!(
        store
            .find_cached("fp-a")
            .await
            .unwrap()
            .iter()
            .all(|h| h.run_id.as_str() == "r-1")
    );
    let last = store
        .last_finished_step("w", &StepId::from("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.fingerprint.as_deref(), Some("fp-a"));
}

/// Records `points` for step `train` of run `r-m` from `attempt`.
async fn record_train(store: &Store, attempt: &str, points: &[MetricPoint]) -> Result<u64> {
    store
        .record_metrics(
            &RunId::from("r-m"),
            &StepId::from("train"),
            &AttemptId::from(attempt),
            points,
        )
        .await
}

async fn metrics_are_recorded_exactly_once_and_stale_attempts_are_refused(store: Store) {
    store.create_run(&new_run("r-m", "w"), &[]).await.unwrap();
    store
        .insert_steps(&RunId::from("r-m"), &[new_step("train", 0)])
        .await
        .unwrap();
    store
        .start_attempt(&attempt("att-a", "r-m", "train", 1))
        .await
        .unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| point("train/loss", i, 1.0 / (i + 1) as f64))
        .collect();
    assert_eq!(record_train(&store, "att-a", &batch).await.unwrap(), 5);
    // The same events replayed (a runner re-reading an events file) add nothing.
    assert_eq!(record_train(&store, "att-a", &batch).await.unwrap(), 0);
    assert_eq!(
        record_train(&store, "att-a", &[point("train/loss", 5, f64::NAN)])
            .await
            .unwrap(),
        1
    );
    // An index the store's signed column cannot hold is refused, not wrapped to a negative one.
    let refused = record_train(&store, "att-a", &[point("train/loss", u64::MAX, 1.0)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::MetricIndex {
                index: u64::MAX,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(store.metric_count(&RunId::from("r-m")).await.unwrap(), 6);

    interrupted_attempts_are_refused(&store).await;

    // The resumed attempt records the rest; the merged series takes the newest value per index.
    store
        .start_attempt(&attempt("att-b", "r-m", "train", 2))
        .await
        .unwrap();
    let resumed = [point("train/loss", 5, 0.15), point("train/loss", 6, 0.14)];
    assert_eq!(record_train(&store, "att-b", &resumed).await.unwrap(), 2);
    let rows = store
        .metrics(&RunId::from("r-m"), &MetricFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter()
            .any(|r| r.index == 5 && r.value.is_nan() && r.attempt_id.as_str() == "att-a")
    );
    let merged = merge_attempts(&rows);
    let series = &merged["train/loss"];
    assert_eq!(series.len(), 7);
    assert_eq!(series[5], (5, 0.15));
    assert_eq!(series[6], (6, 0.14));
    assert_eq!(series[1], (1, 0.5));
}

/// Interrupts `att-a` (a resume took over): a second interrupt is a no-op, and its metrics
/// and its finish are refused as stale; the step is left interrupted.
async fn interrupted_attempts_are_refused(store: &Store) {
    assert!(
        store
            .interrupt_attempt(&AttemptId::from("att-a"), "runner died")
            .await
            .unwrap()
    );
    assert!(
        !store
            .interrupt_attempt(&AttemptId::from("att-a"), "again")
            .await
            .unwrap()
    );
    let refused = record_train(store, "att-a", &[point("train/loss", 9, 0.1)])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::StaleAttempt { .. }),
        "{refused}"
    );
    let refused = store
        .finish_attempt(&AttemptId::from("att-a"), &success(json!({"values": {}})))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::StaleAttempt { .. }),
        "{refused}"
    );
    assert_eq!(
        store
            .get_step(&RunId::from("r-m"), &StepId::from("train"))
            .await
            .unwrap()
            .unwrap()
            .status,
        StepStatus::Interrupted
    );
}

async fn large_batches_are_split_and_counted(store: Store) {
    store.create_run(&new_run("r-big", "w"), &[]).await.unwrap();
    store
        .insert_steps(&RunId::from("r-big"), &[new_step("s", 0)])
        .await
        .unwrap();
    store
        .start_attempt(&attempt("att-big", "r-big", "s", 1))
        .await
        .unwrap();
    let points: Vec<_> = (0..20_000)
        .map(|i| point(if i % 2 == 0 { "a" } else { "b" }, i / 2, i as f64))
        .collect();
    assert_eq!(
        store
            .record_metrics(
                &RunId::from("r-big"),
                &StepId::from("s"),
                &AttemptId::from("att-big"),
                &points
            )
            .await
            .unwrap(),
        20_000
    );
    let only_b = store
        .metrics(
            &RunId::from("r-big"),
            &MetricFilter {
                key: Some("b".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(only_b.len(), 10_000);
    assert_eq!(only_b[9_999].value.to_bits(), 19_999.0_f64.to_bits());
}

async fn finishing_records_outputs_artifacts_and_lineage(store: Store) {
    store.create_run(&new_run("r-a", "w"), &[]).await.unwrap();
    store
        .insert_steps(&RunId::from("r-a"), &[new_step("convert", 0)])
        .await
        .unwrap();
    store
        .start_attempt(&attempt("att-c", "r-a", "convert", 1))
        .await
        .unwrap();
    let mut end = success(json!({"values": {"dataset": {"path": "/runs/r-a/convert/data"}}}));
    end.artifacts = vec![NewArtifact {
        name: "dataset".into(),
        output_type: "dataset".into(),
        path: "/runs/r-a/convert/data".into(),
        sha256: "d".repeat(64),
        bytes: 1234,
        inputs: vec![("data/raw.jsonl".into(), "e".repeat(64), None)],
    }];
    end.expect_failures = vec!["rows >= 10 (got 3)".into()];
    store
        .finish_attempt(&AttemptId::from("att-c"), &end)
        .await
        .unwrap();
    let artifacts = store.artifacts_of(&RunId::from("r-a")).await.unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].bytes, 1234);
    assert_eq!(
        store.artifact_by_sha(&"d".repeat(64)).await.unwrap(),
        Some(artifacts[0].id.clone())
    );
    let inputs = store.artifact_inputs(&artifacts[0].id).await.unwrap();
    assert_eq!(
        inputs,
        vec![("data/raw.jsonl".to_owned(), "e".repeat(64), None)]
    );
    let step = store
        .get_step(&RunId::from("r-a"), &StepId::from("convert"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(step.status, StepStatus::Succeeded);
    assert_eq!(step.expect_failures, vec!["rows >= 10 (got 3)".to_owned()]);
    let attempts = store.attempts_of(&RunId::from("r-a")).await.unwrap();
    assert_eq!(attempts[0].status, AttemptStatus::Succeeded);
    assert_eq!(attempts[0].gpus, vec![0]);
    assert_eq!(
        store
            .next_attempt_number(&RunId::from("r-a"), &StepId::from("convert"))
            .await
            .unwrap(),
        2
    );
}

async fn only_one_resume_can_claim_a_run(store: Store) {
    store.create_run(&new_run("r-c", "w"), &[]).await.unwrap();
    let seen = store.get_run(&RunId::from("r-c")).await.unwrap().unwrap();
    assert!(store.claim_run(&seen, "host-b", 7).await.unwrap());
    assert!(
        !store.claim_run(&seen, "host-c", 8).await.unwrap(),
        "the lease changed"
    );
    assert!(
        store
            .heartbeat(&RunId::from("r-c"), "host-b", 7)
            .await
            .unwrap()
    );
    assert!(
        !store
            .heartbeat(&RunId::from("r-c"), "host-a", 4242)
            .await
            .unwrap(),
        "the old runner lost the lease"
    );
}

async fn schedules_are_stored(store: Store) {
    let mut nightly = Schedule {
        name: "nightly".into(),
        workflow_file: "/w/smaug-7b.yaml".into(),
        cron: "0 2 * * *".into(),
        params: json!({"beta": "0.3"}),
        enabled: true,
        last_run_id: None,
        next_run_at: Some(1),
        ..Schedule::default()
    };
    store.put_schedule(&nightly).await.unwrap();
    nightly.enabled = false;
    store.put_schedule(&nightly).await.unwrap();
    assert_eq!(store.schedules().await.unwrap(), vec![nightly]);
    assert!(store.delete_schedule("nightly").await.unwrap());
    assert!(!store.delete_schedule("nightly").await.unwrap());
}

async fn attempts_move_through_the_cluster_states(store: Store) {
    store
        .create_run(&new_run("r-s", "w"), &[new_step("a", 0)])
        .await
        .unwrap();
    store
        .start_attempt(&attempt("att-s", "r-s", "a", 1))
        .await
        .unwrap();
    let recorded = store
        .get_attempt(&AttemptId::from("att-s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.status, AttemptStatus::Recorded);
    assert!(recorded.status.is_live() && recorded.external_id.is_none());
    store
        .set_attempt_submitted(&AttemptId::from("att-s"), "job-77", AttemptStatus::Queued)
        .await
        .unwrap();
    let again = store
        .set_attempt_submitted(&AttemptId::from("att-s"), "job-78", AttemptStatus::Queued)
        .await;
    assert!(
        matches!(again, Err(StoreError::StaleAttempt { .. })),
        "submitted once: {again:?}"
    );
    store
        .set_attempt_status(&AttemptId::from("att-s"), AttemptStatus::Running)
        .await
        .unwrap();
    let running = store
        .get_attempt(&AttemptId::from("att-s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.status, AttemptStatus::Running);
    assert_eq!(running.external_id.as_deref(), Some("job-77"));
    assert!(running.submitted_at.is_some());
    let end = AttemptEnd {
        status: AttemptStatus::Lost,
        step_status: StepStatus::Pending,
        exit_code: None,
        failure: Some(("lost".into(), "the job vanished".into())),
        outputs: None,
        artifacts: Vec::new(),
        expect_failures: Vec::new(),
    };
    store
        .finish_attempt(&AttemptId::from("att-s"), &end)
        .await
        .unwrap();
    let lost = store
        .get_attempt(&AttemptId::from("att-s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost.status, AttemptStatus::Lost);
    assert!(!lost.status.is_live());
    let late = store
        .set_attempt_status(&AttemptId::from("att-s"), AttemptStatus::Running)
        .await;
    assert!(matches!(late, Err(StoreError::StaleAttempt { .. })));
    let metrics = store
        .record_metrics(
            &RunId::from("r-s"),
            &StepId::from("a"),
            &AttemptId::from("att-s"),
            &[point("loss", 0, 1.0)],
        )
        .await;
    assert!(matches!(metrics, Err(StoreError::StaleAttempt { .. })));
}

async fn reused_steps_link_to_the_producing_step(store: Store) {
    store
        .create_run(&new_run("r-p", "w"), &[new_step("dpop", 0)])
        .await
        .unwrap();
    store
        .start_attempt(&attempt("att-p", "r-p", "dpop", 1))
        .await
        .unwrap();
    store
        .record_metrics(
            &RunId::from("r-p"),
            &StepId::from("dpop"),
            &AttemptId::from("att-p"),
            &[point("loss", 0, 3.0)],
        )
        .await
        .unwrap();
    store
        .set_fingerprint(
            &RunId::from("r-p"),
            &StepId::from("dpop"),
            "fp-1",
            &json!({}),
        )
        .await
        .unwrap();
    store
        .finish_attempt(&AttemptId::from("att-p"), &success(json!({"values": {}})))
        .await
        .unwrap();
    // Two generations of reuse under another step id: both link to the producer.
    for (run, previous) in [("r-q", "r-p"), ("r-r", "r-q")] {
        store
            .create_run(&new_run(run, "w2"), &[new_step("train[dpop]", 0)])
            .await
            .unwrap();
        let hits = store.find_cached("fp-1").await.unwrap();
        let hit = hits[0].clone();
        assert_eq!(
            (hit.run_id.as_str(), hit.step_id.as_str()),
            ("r-p", "dpop"),
            "after {previous}"
        );
        store
            .mark_cached(&RunId::from(run), &StepId::from("train[dpop]"), &hit)
            .await
            .unwrap();
        store
            .set_fingerprint(
                &RunId::from(run),
                &StepId::from("train[dpop]"),
                "fp-1",
                &json!({}),
            )
            .await
            .unwrap();
        let step = store
            .get_step(&RunId::from(run), &StepId::from("train[dpop]"))
            .await
            .unwrap()
            .unwrap();
        let link = step.reused_from().unwrap();
        assert_eq!(link.to_string(), "r-p:dpop");
        let (rows, via) = store.step_metrics(&step, None).await.unwrap();
        assert_eq!(via, Some(link));
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].run_id.as_str(), rows[0].value), ("r-p", 3.0));
    }
}

on_both_backends!(
    attempts_move_through_the_cluster_states,
    reused_steps_link_to_the_producing_step,
    runs_are_created_found_listed_and_finished,
    finished_steps_are_found_by_fingerprint,
    metrics_are_recorded_exactly_once_and_stale_attempts_are_refused,
    large_batches_are_split_and_counted,
    finishing_records_outputs_artifacts_and_lineage,
    only_one_resume_can_claim_a_run,
    schedules_are_stored,
);

/// A malformed id in the database (here one the write API let through: padded with a space,
/// or holding a control character) is a typed error naming its table and column, not a panic.
async fn malformed_stored_ids_are_typed_errors(store: Store) {
    store
        .create_run(&new_run(" r-padded", "w"), &[new_step("train\u{7}", 0)])
        .await
        .unwrap();
    let listed = store.list_runs(&RunFilter::default()).await.unwrap_err();
    assert!(
        matches!(
            &listed,
            StoreError::BadId { table: "runs", column: "id", value, .. } if value == " r-padded"
        ),
        "{listed:?}"
    );
    assert!(listed.to_string().contains("runs.id"), "{listed}");
    let steps = store.steps_of(&RunId::from(" r-padded")).await.unwrap_err();
    assert!(
        matches!(
            &steps,
            StoreError::BadId {
                table: "steps",
                column: "run_id",
                ..
            }
        ),
        "{steps:?}"
    );
    store
        .create_run(&new_run("r-fine", "w"), &[new_step("train\u{7}", 0)])
        .await
        .unwrap();
    let step = store
        .get_step(&RunId::from("r-fine"), &StepId::from("train\u{7}"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &step,
            StoreError::BadId { table: "steps", column: "step_id", reason, .. }
                if reason.contains("control character")
        ),
        "{step:?}"
    );
}

on_both_backends!(malformed_stored_ids_are_typed_errors);
