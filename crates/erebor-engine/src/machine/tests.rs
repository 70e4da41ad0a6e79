//! The machine's transitions, driven without processes, a store or a clock.

use super::*;

fn spec(id: &str, needs: &[usize], gpus: u32, retries: u32) -> StepSpec {
    StepSpec {
        id: StepId::new(id),
        needs: needs.to_vec(),
        gpus,
        retries,
        retry_backoff: Duration::from_secs(2),
    }
}

fn prepared(starts: &[Start]) -> Vec<(usize, Vec<u32>, u32)> {
    starts
        .iter()
        .filter_map(|s| match s {
            Start::Prepare {
                index,
                gpus,
                number,
                ..
            } => Some((*index, gpus.clone(), *number)),
            _ => None,
        })
        .collect()
}

fn succeed(machine: &mut Machine, index: usize, now: Instant) {
    machine.on_submitted(index);
    let done = machine.on_finished(index, Ended::Succeeded(StepOutputs::new()), now);
    assert_eq!(done, Transition::Done);
}

#[test]
fn steps_start_in_plan_order_once_their_upstream_is_done() {
    // a -> b, a -> c; jobs = 1.
    let steps = vec![
        spec("a", &[], 0, 0),
        spec("b", &[0], 0, 0),
        spec("c", &[0], 0, 0),
    ];
    let mut machine = Machine::new(steps, &[], 1);
    let now = Instant::now();
    assert_eq!(prepared(&machine.start_ready(now)), [(0, vec![], 1)]);
    assert!(machine.start_ready(now).is_empty(), "b and c wait for a");
    succeed(&mut machine, 0, now);
    assert_eq!(
        prepared(&machine.start_ready(now)),
        [(1, vec![], 1)],
        "one job"
    );
    succeed(&mut machine, 1, now);
    assert_eq!(prepared(&machine.start_ready(now)), [(2, vec![], 1)]);
    succeed(&mut machine, 2, now);
    assert!(machine.is_over());
}

#[test]
fn gpu_slots_are_the_lowest_free_ids_and_come_back_when_a_step_ends() {
    let steps = vec![
        spec("a", &[], 2, 0),
        spec("b", &[], 1, 0),
        spec("c", &[], 2, 0),
    ];
    let mut machine = Machine::new(steps, &[3, 5, 7], 8);
    let now = Instant::now();
    let first = prepared(&machine.start_ready(now));
    assert_eq!(
        first,
        [(0, vec![3, 5], 1), (1, vec![7], 1)],
        "c waits for two free slots"
    );
    machine.on_submitted(0);
    machine.on_submitted(1);
    assert_eq!(machine.slot(0).gpus, [3, 5]);
    machine.on_finished(1, Ended::Succeeded(StepOutputs::new()), now);
    assert!(
        machine.start_ready(now).is_empty(),
        "one slot free, c needs two"
    );
    machine.on_finished(0, Ended::Succeeded(StepOutputs::new()), now);
    assert_eq!(prepared(&machine.start_ready(now)), [(2, vec![3, 5], 1)]);
}

#[test]
fn a_step_needing_more_gpus_than_the_runner_has_fails_and_its_dependents_are_skipped() {
    let steps = vec![spec("big", &[], 4, 0), spec("after", &[0], 0, 0)];
    let mut machine = Machine::new(steps, &[0, 1], 4);
    let now = Instant::now();
    let starts = machine.start_ready(now);
    assert!(
        matches!(&starts[..], [Start::Impossible { index: 0, message }, Start::Skip { index: 1, because }]
            if message.contains("needs 4 GPU slot(s) but this runner has 2") && because.as_str() == "big"),
        "{starts:?}"
    );
    assert!(machine.start_ready(now).is_empty());
    assert!(machine.is_over());
}

#[test]
fn retryable_failures_back_off_exponentially_until_the_retries_are_used() {
    let steps = vec![spec("flaky", &[], 0, 2)];
    let mut machine = Machine::new(steps, &[], 1);
    let t0 = Instant::now();
    assert_eq!(prepared(&machine.start_ready(t0)), [(0, vec![], 1)]);
    machine.on_submitted(0);
    let first = machine.on_finished(0, Ended::Failed { retryable: true }, t0);
    assert_eq!(
        first,
        Transition::Retry {
            delay: Duration::from_secs(2),
            attempts: 1
        }
    );
    assert_eq!(machine.next_wakeup(), Some(t0 + Duration::from_secs(2)));
    assert!(
        machine.start_ready(t0 + Duration::from_secs(1)).is_empty(),
        "backing off"
    );
    assert!(!machine.is_over(), "a retry is due");
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(prepared(&machine.start_ready(t1)), [(0, vec![], 2)]);
    machine.on_submitted(0);
    let second = machine.on_finished(0, Ended::Failed { retryable: true }, t1);
    assert_eq!(
        second,
        Transition::Retry {
            delay: Duration::from_secs(4),
            attempts: 2
        }
    );
    let t2 = t1 + Duration::from_secs(4);
    assert_eq!(prepared(&machine.start_ready(t2)), [(0, vec![], 3)]);
    machine.on_submitted(0);
    assert_eq!(
        machine.on_finished(0, Ended::Failed { retryable: true }, t2),
        Transition::Failed
    );
    assert_eq!(machine.next_wakeup(), None);
    assert!(machine.is_over());
}

#[test]
fn non_retryable_failures_fail_at_once() {
    let mut machine = Machine::new(vec![spec("bad", &[], 0, 5)], &[], 1);
    let now = Instant::now();
    machine.start_ready(now);
    machine.on_submitted(0);
    assert_eq!(
        machine.on_finished(0, Ended::Failed { retryable: false }, now),
        Transition::Failed
    );
}

#[test]
fn the_backoff_is_capped() {
    let mut long = spec("slow", &[], 0, 30);
    long.retry_backoff = Duration::from_mins(5);
    let mut machine = Machine::new(vec![long], &[], 1);
    let mut now = Instant::now();
    for _ in 0..3 {
        machine.start_ready(now);
        machine.on_submitted(0);
        match machine.on_finished(0, Ended::Failed { retryable: true }, now) {
            Transition::Retry { delay, .. } => {
                assert!(delay <= MAX_RETRY_DELAY);
                now += delay;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn cancelling_stops_starts_and_retries_and_leaves_waiting_steps_pending() {
    let steps = vec![
        spec("a", &[], 0, 3),
        spec("b", &[], 0, 0),
        spec("c", &[0], 0, 0),
    ];
    let mut machine = Machine::new(steps, &[], 1);
    let now = Instant::now();
    assert_eq!(prepared(&machine.start_ready(now)), [(0, vec![], 1)]);
    machine.on_submitted(0);
    machine.on_cancel();
    assert!(machine.start_ready(now).is_empty());
    assert!(!machine.is_over(), "a is still running");
    assert_eq!(
        machine.on_finished(0, Ended::Failed { retryable: true }, now),
        Transition::Failed,
        "no retry while stopping"
    );
    assert!(machine.is_over());
    assert_eq!(machine.next_wakeup(), None);
    assert!(matches!(
        machine.slot(1).state,
        SlotState::Waiting { not_before: None }
    ));
}

#[test]
fn an_interrupted_attempt_leaves_the_step_interrupted() {
    let mut machine = Machine::new(vec![spec("a", &[], 1, 3)], &[0], 1);
    let now = Instant::now();
    machine.start_ready(now);
    machine.on_submitted(0);
    machine.on_cancel();
    assert_eq!(
        machine.on_finished(0, Ended::Interrupted, now),
        Transition::Interrupted
    );
    assert!(machine.slot(0).gpus.is_empty());
    assert!(machine.is_over());
}

#[test]
fn cached_and_rejected_steps_give_back_their_job_slots_and_numbers() {
    let steps = vec![
        spec("a", &[], 1, 0),
        spec("b", &[], 1, 0),
        spec("c", &[0, 1], 0, 0),
    ];
    let mut machine = Machine::new(steps, &[0], 1);
    let now = Instant::now();
    assert_eq!(prepared(&machine.start_ready(now)), [(0, vec![0], 1)]);
    machine.on_cached(0, StepOutputs::new().with_metric("x", 1.0));
    assert_eq!(machine.slot(0).next_number, 1, "no attempt was made");
    assert!(machine.outputs(0).and_then(|o| o.get("x")).is_some());
    assert_eq!(prepared(&machine.start_ready(now)), [(1, vec![0], 1)]);
    machine.on_rejected(1);
    assert_eq!(
        machine.start_ready(now),
        [Start::Skip {
            index: 2,
            because: StepId::new("b")
        }]
    );
    assert!(machine.is_over());
}

#[test]
fn resumed_steps_keep_their_outputs_and_attempt_numbers_continue() {
    let steps = vec![spec("a", &[], 0, 0), spec("b", &[0], 0, 0)];
    let mut machine = Machine::new(steps, &[], 2);
    machine.restore_done(0, StepOutputs::new(), Some("fp-a".into()));
    machine.set_next_number(1, 3);
    let now = Instant::now();
    assert_eq!(prepared(&machine.start_ready(now)), [(1, vec![], 3)]);
    assert_eq!(machine.slot(0).fingerprint.as_deref(), Some("fp-a"));
}

#[test]
fn a_withdrawn_step_is_interrupted_and_frees_its_slots() {
    let mut machine = Machine::new(vec![spec("a", &[], 1, 0)], &[0], 1);
    let now = Instant::now();
    machine.start_ready(now);
    machine.on_cancel();
    machine.on_withdrawn(0);
    assert_eq!(machine.slot(0).state, SlotState::Interrupted);
    assert!(machine.is_over());
}
