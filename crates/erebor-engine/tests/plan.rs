//! `erebor plan`'s reasons are typed: a changed config is the step's own change, the steps
//! after it run because their upstream changed.

mod common;

use common::Harness;
use erebor_engine::plan::{PlanReason, PlanStatus, plan, refusals};
use erebor_store::RunStatus;
use erebor_workflow::HashCache;

fn chain(value: u32) -> String {
    format!(
        "name: chain\nsteps:\n  - id: a\n    uses: noop\n    with: {{value: {value}}}\n  - id: b\n    uses: noop\n    needs: [a]\n  - id: c\n    uses: noop\n    needs: [b]\n"
    )
}

#[tokio::test]
async fn reasons_tell_own_changes_from_upstream_ones() {
    let h = Harness::new().await;
    let first = h.run(&h.workflow(&chain(1))).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let run = first.run_id.to_string();
    let hashes = HashCache::open(&h.dir.path().join("hashes.json"));
    let limits = h.options(h.in_process(), 2, vec![]).limits;

    let same = plan(
        &h.workflow(&chain(1)),
        &h.registry,
        &h.store,
        &hashes,
        &limits,
    )
    .await
    .unwrap();
    assert!(same.iter().all(|e| e.status
        == PlanStatus::Cached {
            from_run: run.clone()
        }));

    let changed = plan(
        &h.workflow(&chain(2)),
        &h.registry,
        &h.store,
        &hashes,
        &limits,
    )
    .await
    .unwrap();
    let reasons: Vec<&[PlanReason]> = changed.iter().map(|e| e.reasons.as_slice()).collect();
    match reasons[0] {
        [
            PlanReason::Changed {
                what,
                since_run,
                upstream: false,
            },
        ] => {
            assert!(what.contains("config changed"), "{what}");
            assert_eq!(since_run, &run);
        }
        other => panic!("a: {other:?}"),
    }
    for (step, reasons) in ["b", "c"].iter().zip(&reasons[1..]) {
        assert!(
            !reasons.is_empty() && reasons.iter().all(PlanReason::is_upstream),
            "{step}: {reasons:?}"
        );
    }
    assert_eq!(
        reasons[1][0].to_string(),
        format!("upstream step `a` changed since run {run}")
    );

    let mut forced = limits.clone();
    forced.no_cache = true;
    let all = plan(
        &h.workflow(&chain(1)),
        &h.registry,
        &h.store,
        &hashes,
        &forced,
    )
    .await
    .unwrap();
    assert!(
        all.iter()
            .all(|e| e.reasons.first() == Some(&PlanReason::NoCache))
    );
}

/// A step the hardware cannot run is refused only when the plan runs it: reused from the
/// cache, its refusal is a note and the workflow proceeds; forced, it is refused again.
#[tokio::test]
async fn a_cached_step_is_not_refused_only_noted() {
    let h = Harness::new().await;
    let text = "name: big\nsteps:\n  - id: train\n    uses: noop\n    with: {refuse_key: cached-big}\n  - id: after\n    uses: noop\n    needs: [train]\n";
    let first = h.run(&h.workflow(text)).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    common::REFUSING
        .lock()
        .unwrap()
        .insert("cached-big".to_owned());
    let hashes = HashCache::open(&h.dir.path().join("hashes.json"));
    let limits = h.options(h.in_process(), 2, vec![]).limits;
    let workflow = h.workflow(text);

    let cached = plan(&workflow, &h.registry, &h.store, &hashes, &limits)
        .await
        .unwrap();
    assert!(matches!(cached[0].status, PlanStatus::Cached { .. }));
    assert_eq!(cached[0].refusal, None);
    assert_eq!(refusals(&cached), Vec::<String>::new());
    let note = format!(
        "not refused: reused from run {}; running it here would be refused: \
         needs 1000.0 GB of memory, sees 1.0 GB (cached-big)",
        first.run_id
    );
    assert!(cached[0].notes.contains(&note), "{:?}", cached[0].notes);

    let mut forced = limits.clone();
    forced.force = vec!["train".to_owned()];
    let forced = plan(&workflow, &h.registry, &h.store, &hashes, &forced)
        .await
        .unwrap();
    assert_eq!(forced[0].status, PlanStatus::Run);
    assert_eq!(
        refusals(&forced),
        vec!["step train: needs 1000.0 GB of memory, sees 1.0 GB (cached-big)".to_owned()]
    );
    assert!(forced[0].notes.is_empty(), "{:?}", forced[0].notes);
}
