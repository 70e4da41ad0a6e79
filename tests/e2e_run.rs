//! End-to-end, on the `command` step example (workflows/examples/command-pipeline.yaml, seconds
//! to run): a run is listed and cached; plan says what changed; bad YAML,
//! failing steps, retries, timeouts, out-of-memory deaths and `expect:` regressions give the
//! documented exit codes and records. Each scenario runs on SQLite and on Postgres.

mod common;

use common::Sandbox;
use erebor_store::{AttemptStatus, RunStatus, StepStatus};

fn pipeline_runs_is_listed_and_then_cached(sandbox: &Sandbox) {
    let workflow = sandbox.copy_command_pipeline();
    let workflow = workflow.to_str().unwrap();
    let out = sandbox.expect(&["run", workflow], 0);
    assert!(out.contains(": succeeded"), "{out}");
    let list = sandbox.expect(&["runs", "list"], 0);
    let first = sandbox.latest_run().unwrap();
    assert!(
        list.contains(&first)
            && list.contains("command-pipeline")
            && list.contains("succeeded")
            && list.contains("4/4"),
        "{list}"
    );

    // The split checks are real: 200 rows, every 7th answer off by one, eval gets every 5th row.
    let show = sandbox.expect(&["runs", "show", &first], 0);
    assert!(
        show.contains("stats[eval]") && show.contains("report.html"),
        "{show}"
    );
    let csv = sandbox.expect(
        &[
            "metrics",
            &first,
            "--key",
            "correct_rate",
            "--format",
            "csv",
        ],
        0,
    );
    // eval holds rows 5, 10, ..., 200 (40 rows); wrong ones are multiples of 35 among them: 35, 70, ..., 175 → 5.
    assert!(csv.contains("stats[eval],correct_rate,0,0.875,"), "{csv}");
    // train holds the other 160 rows; of the 28 wrong rows (multiples of 7 up to 196), 23 are in train.
    assert!(csv.contains("stats[train],correct_rate,0,0.8562,"), "{csv}");
    let report = std::fs::read_to_string(
        sandbox
            .home()
            .join("runs")
            .join(&first)
            .join("steps/report/report.html"),
    )
    .unwrap();
    assert!(
        report.contains("<svg")
            && report.contains("stats[train]")
            && report.contains("stats[eval]")
    );

    a_second_run_comes_from_the_cache(sandbox, workflow, &first);

    // A third run with fewer rows; compare the two runs that really ran.
    sandbox.expect(&["run", workflow, "--set", "rows=100", "-q"], 0);
    let third = sandbox.latest_run().unwrap();
    let compare = sandbox.expect(&["runs", "compare", &first, &third], 0);
    let row = |key: &str| {
        compare
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map_or_else(
                || panic!("no row {key} in\n{compare}"),
                |l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
            )
    };
    assert_eq!(row("params.rows"), "200 100");
    // rows=100: eval has rows 5..100 (20), wrong at 35 and 70; train has 80 rows, 12 wrong.
    assert_eq!(row("stats[eval]/correct_rate"), "0.875 0.9");
    assert_eq!(row("stats[train]/correct_rate"), "0.8562 0.85");
    assert!(
        !compare.contains("params.wrong_every"),
        "equal rows are hidden:\n{compare}"
    );
    let all = sandbox.expect(&["runs", "compare", &first, &third, "--all"], 0);
    assert!(all.contains("params.wrong_every"), "{all}");
    let json = sandbox.expect(&["metrics", &third, "--key", "rows", "--format", "json"], 0);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["value"], serde_json::json!(100.0), "{json}");
    let table = sandbox.expect(&["metrics", &third, "--step", "dataset"], 0);
    assert!(
        table.starts_with("step") && table.contains("dataset  rows  0      100"),
        "{table}"
    );
}

fn plan_marks_a_changed_input_and_its_descendants(sandbox: &Sandbox) {
    let workflow = sandbox.copy_command_pipeline();
    let workflow = workflow.to_str().unwrap();
    sandbox.expect(&["run", workflow], 0);
    let first = sandbox.latest_run().unwrap();
    // One byte of the dataset script changes (a comment, so the data stays the same).
    let script = sandbox
        .path()
        .join("workflows/examples/command-pipeline/make-dataset.sh");
    let text = std::fs::read_to_string(&script)
        .unwrap()
        .replacen("(80/20)", "(80/21)", 1);
    std::fs::write(&script, text).unwrap();
    let plan = sandbox.expect(&["plan", workflow], 0);
    assert!(plan.contains("4 steps, 0 cached, 4 to run"), "{plan}");
    assert!(
        plan.contains("runs because: input command-pipeline/make-dataset.sh changed (sha256 "),
        "{plan}"
    );
    assert!(plan.contains(&format!(") since run {first}")), "{plan}");
    for step in ["stats[train]", "stats[eval]", "report"] {
        assert!(
            plan.contains(&format!("{step}:\n  runs because: upstream step `")),
            "{step} in\n{plan}"
        );
    }
    let dot = sandbox.expect(&["plan", workflow, "--format", "dot"], 0);
    assert!(
        dot.contains("\"dataset\" -> \"stats[train]\";")
            && dot.contains("digraph \"command-pipeline\""),
        "{dot}"
    );
    // A param that only the checks... is used by the dataset step: changing it reruns all.
    let plan = sandbox.expect(&["plan", workflow, "--set", "rows=100"], 0);
    assert!(plan.contains("config changed: with.argv"), "{plan}");
}

fn bad_workflows_exit_2_with_the_place(sandbox: &Sandbox) {
    let path = sandbox.write(
        "bad.yaml",
        "name: bad\nsteps:\n  - id: a\n    uses: comand\n    with: {argv: [\"true\"]}\n",
    );
    for command in ["validate", "plan", "run"] {
        let output = sandbox.run(&[command, path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("bad.yaml:4:11") && stderr.contains("did you mean `command`?"),
            "{stderr}"
        );
    }
    let output = sandbox.run(&["runs", "show", "r-nope"]);
    assert_eq!(output.status.code(), Some(2));
    // Nothing was recorded for the rejected runs.
    let list = sandbox.expect(&["runs", "list"], 0);
    assert!(list.starts_with("no runs"), "{list}");
}

const FAILING: &str = r#"
name: failing
steps:
  - id: flaky
    uses: command
    retries: 2
    retry_backoff: 10ms
    with:
      argv: [./fail-twice.sh]
  - id: broken
    uses: command
    retries: 3
    retry_backoff: 10ms
    with:
      argv: [./no-such-program]
  - id: after
    uses: noop
    needs: [broken]
  - id: slow
    uses: command
    timeout: 300ms
    with:
      argv: [sleep, "30"]
      env_allow: [PATH]
  - id: oom
    uses: command
    retries: 2
    with:
      argv: [./kill-parent.sh]
"#;

fn failures_are_classified_retried_and_recorded(sandbox: &Sandbox) {
    // Fails on its first two attempts (it counts them in its work folder), then succeeds.
    sandbox.script("fail-twice.sh", "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0)\necho $((n+1)) > count\n[ \"$n\" -ge 2 ]\n");
    // Kills its step process with SIGKILL, as the kernel's OOM killer would.
    sandbox.script("kill-parent.sh", "#!/bin/sh\nkill -9 $PPID\nsleep 5\n");
    let path = sandbox.write("failing.yaml", FAILING);
    let out = sandbox.expect(&["run", path.to_str().unwrap(), "--stop-grace", "1s"], 1);
    let run = sandbox.latest_run().unwrap();
    assert!(
        out.contains("failed: broken") && out.contains("erebor resume"),
        "{out}"
    );
    sandbox.with_store(async |store| {
        let record = store
            .get_run(&erebor_store::RunId::new(&run))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, RunStatus::Failed);
        let steps = store
            .steps_of(&erebor_store::RunId::new(&run))
            .await
            .unwrap();
        let step = |id: &str| {
            steps
                .iter()
                .find(|s| s.step_id.as_str() == id)
                .unwrap()
                .clone()
        };
        let attempts = store
            .attempts_of(&erebor_store::RunId::new(&run))
            .await
            .unwrap();
        let count = |id: &str| attempts.iter().filter(|a| a.step_id.as_str() == id).count();

        assert_eq!(step("flaky").status, StepStatus::Succeeded);
        assert_eq!(count("flaky"), 3, "two retries");
        let flaky: Vec<_> = attempts
            .iter()
            .filter(|a| a.step_id.as_str() == "flaky")
            .collect();
        assert_eq!(
            flaky.iter().map(|a| a.status).collect::<Vec<_>>(),
            [
                AttemptStatus::Failed,
                AttemptStatus::Failed,
                AttemptStatus::Succeeded
            ]
        );

        assert_eq!(step("broken").status, StepStatus::Failed);
        assert_eq!(step("broken").failure_class.as_deref(), Some("bad_input"));
        assert_eq!(count("broken"), 1, "bad input is not retried");
        assert_eq!(step("after").status, StepStatus::Skipped);

        assert_eq!(step("slow").failure_class.as_deref(), Some("transient"));
        assert!(
            step("slow")
                .failure_message
                .unwrap()
                .contains("timed out after")
        );

        assert_eq!(step("oom").failure_class.as_deref(), Some("out_of_memory"));
        assert_eq!(count("oom"), 1, "out of memory is not retried");

        // Every attempt's log is an artifact.
        let logs = store
            .artifacts_of(&erebor_store::RunId::new(&run))
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.name == "log")
            .count();
        assert_eq!(logs, attempts.len());
    });
}

fn expectations_that_regress_exit_3(sandbox: &Sandbox) {
    let path = sandbox.write(
        "expect.yaml",
        "name: expect\nsteps:\n  - id: score\n    uses: command\n    with:\n      argv: [echo, \"erebor:metric accuracy 0 0.4\"]\n      metric_outputs: [accuracy]\n    expect: {accuracy: \">= 0.5\"}\n",
    );
    let out = sandbox.expect(&["run", path.to_str().unwrap()], 3);
    assert!(
        out.contains("expectation failed: score: accuracy >= 0.5 (got 0.4)"),
        "{out}"
    );
    let run = sandbox.latest_run().unwrap();
    let show = sandbox.expect(&["runs", "show", &run], 0);
    assert!(
        show.contains("expectations failed: accuracy >= 0.5 (got 0.4)"),
        "{show}"
    );
    // A cached result is checked again: `expect:` is not part of the fingerprint.
    let again = sandbox.expect(&["run", path.to_str().unwrap()], 3);
    assert!(
        again.contains("expectation failed: score: accuracy >= 0.5 (got 0.4)"),
        "{again}"
    );
    let second = sandbox.latest_run().unwrap();
    sandbox.with_store(async |store| {
        let step = store
            .get_step(
                &erebor_store::RunId::new(&second),
                &erebor_store::StepId::new("score"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(step.status, StepStatus::Cached);
        assert_eq!(
            step.expect_failures,
            vec!["accuracy >= 0.5 (got 0.4)".to_owned()]
        );
    });
}

/// A step reused under another id (the quickstart's DPOP `train` as dpo-vs-dpop's
/// `train[dpop]`) links to the step that produced it, and `runs show`, `metrics --step` and
/// `runs compare` follow the link, marking the values as reused (issue 10; before, they showed
/// nothing for the reused arm).
fn a_step_reused_under_another_id_shows_its_metrics(sandbox: &Sandbox) {
    sandbox.script(
        "train.sh",
        "#!/bin/sh\nif [ \"$1\" = dpop ]; then v=0.25; else v=0.75; fi\necho \"erebor:metric loss 0 1.5\"\necho \"erebor:metric loss 1 $v\"\n",
    );
    let producer = sandbox.write(
        "producer.yaml",
        "name: producer\nsteps:\n  - id: dpop\n    uses: command\n    with:\n      argv: [./train.sh, dpop]\n",
    );
    let arms = sandbox.write(
        "arms.yaml",
        "name: arms\nsteps:\n  - id: train\n    uses: command\n    matrix: {loss: [dpo, dpop]}\n    with:\n      argv: [./train.sh, \"${{ matrix.loss }}\"]\n",
    );
    sandbox.expect(&["run", producer.to_str().unwrap(), "-q"], 0);
    let first = sandbox.latest_run().unwrap();
    sandbox.expect(&["run", arms.to_str().unwrap(), "-q"], 0);
    let run = sandbox.latest_run().unwrap();
    let link = format!("reused from {first}:dpop");
    let show = sandbox.expect(&["runs", "show", &run], 0);
    let final_row = show
        .lines()
        .find(|l| l.starts_with("train[dpop]") && l.contains("loss"))
        .unwrap_or_else(|| panic!("no final loss of train[dpop] in\n{show}"));
    assert!(final_row.contains(&format!("0.25 ({link})")), "{show}");
    let csv = sandbox.expect(
        &["metrics", &run, "--step", "train[dpop]", "--format", "csv"],
        0,
    );
    assert!(
        csv.contains("train[dpop],loss,0,1.5,") && csv.contains("train[dpop],loss,1,0.25,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.ends_with(&format!(",{first}:dpop"))),
        "{csv}"
    );
    let compare = sandbox.expect(
        &[
            "runs",
            "compare",
            &format!("{run}:train[dpo]"),
            &format!("{run}:train[dpop]"),
        ],
        0,
    );
    let row = compare
        .lines()
        .find(|l| l.starts_with("loss"))
        .unwrap_or_else(|| panic!("no loss row in\n{compare}"));
    assert!(
        row.contains("0.75") && row.contains(&format!("0.25 ({link})")),
        "{compare}"
    );
}

on_both_backends!(
    a_step_reused_under_another_id_shows_its_metrics,
    pipeline_runs_is_listed_and_then_cached,
    plan_marks_a_changed_input_and_its_descendants,
    bad_workflows_exit_2_with_the_place,
    failures_are_classified_retried_and_recorded,
    expectations_that_regress_exit_3,
);

/// A second run of `workflow` reuses every step of run `first`: no attempts, every step cached
/// from it, its metrics shown and compared through the link.
fn a_second_run_comes_from_the_cache(sandbox: &Sandbox, workflow: &str, first: &str) {
    // Second run: everything comes from the cache.
    let plan = sandbox.expect(&["plan", workflow], 0);
    assert!(plan.contains("4 steps, 4 cached, 0 to run"), "{plan}");
    sandbox.expect(&["run", workflow], 0);
    let second = sandbox.latest_run().unwrap();
    assert_ne!(first, second);
    sandbox.with_store(async |store| {
        let steps = store
            .steps_of(&erebor_store::RunId::new(&second))
            .await
            .unwrap();
        assert!(
            steps.iter().all(|s| s.status == StepStatus::Cached),
            "{steps:?}"
        );
        assert!(
            steps.iter().all(
                |s| s.cached_from_run.as_ref().map(erebor_store::RunId::as_str) == Some(first)
            )
        );
        assert!(
            store
                .attempts_of(&erebor_store::RunId::new(&second))
                .await
                .unwrap()
                .is_empty()
        );
    });
    // Cached steps still show their metrics (from the run that produced them).
    let csv = sandbox.expect(
        &[
            "metrics",
            &second,
            "--key",
            "correct_rate",
            "--format",
            "csv",
        ],
        0,
    );
    assert!(csv.contains("stats[eval],correct_rate,0,0.875,"), "{csv}");
    let compare = sandbox.expect(&["runs", "compare", &format!("{second}:stats")], 0);
    assert!(
        compare.contains("matrix.split") && compare.contains("0.875") && compare.contains("0.8562"),
        "{compare}"
    );
}
