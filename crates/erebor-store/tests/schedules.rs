//! Schedules and their ticks on SQLite and Postgres: every field round-trips, a tick is claimed
//! by exactly one of many concurrent claimers (`INSERT ... ON CONFLICT DO NOTHING`), a dead
//! owner's tick is taken over by compare and swap, a notice is claimed once.

mod common;

use common::records::new_run;
use erebor_store::*;
use serde_json::json;
use std::collections::BTreeMap;

fn nightly() -> Schedule {
    Schedule {
        name: "nightly".into(),
        workflow_file: "/w/smaug.yaml".into(),
        cron: "30 2 * * *".into(),
        params: json!({"loss": "dpop"}),
        enabled: true,
        last_run_id: None,
        next_run_at: Some(5),
        tz: "Europe/Berlin".into(),
        missed: "all:3".into(),
        overlap: "queue".into(),
        fresh: vec!["train".into(), "eval".into()],
        notify_env: Some("HOOK_URL".into()),
        regression_k: 2.5,
        seen_until: Some(1_000),
    }
}

fn tick(tick_at: i64, run_id: &str, pid: u32) -> NewTick<'_> {
    NewTick {
        schedule: "nightly",
        tick_at,
        state: TickState::Claimed,
        run_id: Some(run_id),
        error: None,
        host: "host-a",
        pid,
    }
}

async fn schedules_round_trip_pause_and_advance(store: Store) {
    store.put_schedule(&nightly()).await.unwrap();
    assert_eq!(
        store.get_schedule("nightly").await.unwrap(),
        Some(nightly())
    );
    // seen_until only moves forward.
    store
        .advance_schedule("nightly", 500, Some(9))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .seen_until,
        Some(1_000)
    );
    store
        .advance_schedule("nightly", 2_000, Some(9))
        .await
        .unwrap();
    let advanced = store.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!(
        (advanced.seen_until, advanced.next_run_at),
        (Some(2_000), Some(9))
    );
    // Pausing keeps seen_until; resuming moves it to now, so paused ticks never fire.
    assert!(
        store
            .set_schedule_enabled("nightly", false, 3_000)
            .await
            .unwrap()
    );
    let paused = store.get_schedule("nightly").await.unwrap().unwrap();
    assert!(!paused.enabled);
    assert_eq!(paused.seen_until, Some(2_000));
    assert!(
        store
            .set_schedule_enabled("nightly", true, 9_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .seen_until,
        Some(9_000)
    );
    assert!(!store.set_schedule_enabled("other", true, 1).await.unwrap());
}

async fn each_tick_is_claimed_once(store: Store) {
    let mut claims = Vec::new();
    for pid in 0..8u32 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            let run_id = format!("r-{pid}");
            store.claim_tick(&tick(60_000, &run_id, pid)).await.unwrap()
        }));
    }
    let mut won = 0;
    for claim in claims {
        won += usize::from(claim.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one claimer inserts the tick");
    let ticks = store.ticks_of("nightly").await.unwrap();
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].state, TickState::Claimed);
    // A skipped tick is a row too, and blocks a later claim of the same time.
    let skipped = NewTick {
        state: TickState::Skipped,
        run_id: None,
        error: Some("missed"),
        ..tick(120_000, "unused", 1)
    };
    assert!(store.claim_tick(&skipped).await.unwrap());
    assert!(!store.claim_tick(&tick(120_000, "r-late", 1)).await.unwrap());
    assert_eq!(
        store.open_ticks().await.unwrap().len(),
        1,
        "skipped ticks are not open"
    );
}

async fn ticks_move_through_their_states(store: Store) {
    store.put_schedule(&nightly()).await.unwrap();
    assert!(store.claim_tick(&tick(60_000, "r-1", 11)).await.unwrap());
    let seen = store.open_ticks().await.unwrap().remove(0);
    assert_eq!((seen.owner_host.as_str(), seen.owner_pid), ("host-a", 11));
    // Another scheduler takes it over once; a second try with the stale lease fails.
    assert!(store.take_over_tick(&seen, "host-b", 22).await.unwrap());
    assert!(!store.take_over_tick(&seen, "host-c", 33).await.unwrap());
    store
        .create_run(&new_run("r-1", "smaug"), &[])
        .await
        .unwrap();
    store
        .set_tick_state("nightly", 60_000, TickState::Started, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .last_run_id
            .as_deref(),
        Some("r-1")
    );
    store.heartbeat_ticks("host-b", 22).await.unwrap();
    let evaluation = evaluate_and_notify(&store).await;
    let stored = store.tick_of_run("r-1").await.unwrap().unwrap();
    assert_eq!(stored.state, TickState::Started);
    assert_eq!(
        (stored.owner_host.as_str(), stored.owner_pid),
        ("host-b", 22)
    );
    assert_eq!(stored.fresh, Some(true));
    assert_eq!(stored.measurements, evaluation.measurements);
    assert!(stored.regressed);
    assert_eq!(stored.reasons, evaluation.reasons);
    assert_eq!(
        stored.notify_error.as_deref(),
        Some("the webhook answered 500")
    );
    let history = store.schedule_history("nightly").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].run_status.as_deref(), Some("running"));
    assert_eq!(history[0].workflow_hash.as_deref(), Some("abc"));
    assert_eq!(history[0].erebor_version.as_deref(), Some("0.1.0"));
    a_tick_whose_workflow_no_longer_loads_fails(&store).await;
}

/// Records an evaluation of the `nightly` tick at 60 s (which closes it), claims its notice
/// (once only) and records a failed webhook; returns the evaluation recorded.
async fn evaluate_and_notify(store: &Store) -> TickEvaluation {
    let evaluation = TickEvaluation {
        fresh: true,
        measurements: BTreeMap::from([("eval/acc".to_owned(), 0.5)]),
        regressed: true,
        reasons: vec!["eval/acc = 0.5 is outside ...".into()],
    };
    store
        .record_tick_evaluation("nightly", 60_000, &evaluation)
        .await
        .unwrap();
    assert!(
        store.open_ticks().await.unwrap().is_empty(),
        "evaluated ticks are done"
    );
    assert!(store.claim_notice("nightly", 60_000).await.unwrap());
    assert!(
        !store.claim_notice("nightly", 60_000).await.unwrap(),
        "a notice is sent once"
    );
    store
        .set_notify_error("nightly", 60_000, "the webhook answered 500")
        .await
        .unwrap();
    evaluation
}

/// A tick whose workflow no longer loads ends `failed` with the load error.
async fn a_tick_whose_workflow_no_longer_loads_fails(store: &Store) {
    assert!(store.claim_tick(&tick(120_000, "r-2", 22)).await.unwrap());
    store
        .set_tick_state(
            "nightly",
            120_000,
            TickState::Failed,
            Some("smaug.yaml:3:5: unknown kind"),
        )
        .await
        .unwrap();
    let failed = store.ticks_of("nightly").await.unwrap().remove(1);
    assert_eq!(failed.state, TickState::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("smaug.yaml:3:5: unknown kind")
    );
}

on_both_backends!(
    schedules_round_trip_pause_and_advance,
    each_tick_is_claimed_once,
    ticks_move_through_their_states,
);
