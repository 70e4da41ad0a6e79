//! Schedules and `erebor scheduler`, on SQLite and Postgres, driven by a test clock file
//! (`EREBOR_TEST_CLOCK`) that every daemon reads each pass, so no test waits for a real minute.
//!
//! The workflow is one `command` step printing a metric that `--set score=...` moves, with an
//! `expect: {score: ">= 0"}` check: about a second a run.

mod common;

use common::{Sandbox, expect_exit};
use erebor_store::{TickRecord, TickState};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKFLOW: &str = r#"name: nightly-score
params:
  score: 1.0
steps:
  - id: measure
    uses: command
    with:
      argv: [./measure.sh, "${{ params.score }}"]
      metric_outputs: [score]
    expect: {score: ">= 0"}
"#;

const MEASURE: &str = "#!/bin/sh\necho \"erebor:metric score 0 $1\"\n";

/// 2030-01-01T00:00:00Z in ms.
const T0: i64 = 1_893_456_000_000;

/// A sandbox with the workflow and a test clock at `start`.
struct Setup<'a> {
    sandbox: &'a Sandbox,
    clock: PathBuf,
    workflow: PathBuf,
}

impl<'a> Setup<'a> {
    fn new(sandbox: &'a Sandbox, start: i64) -> Self {
        let workflow = sandbox.write("wf/score.yaml", WORKFLOW);
        sandbox.script("wf/measure.sh", MEASURE);
        let clock = sandbox.path().join("clock");
        let setup = Self {
            sandbox,
            clock,
            workflow,
        };
        setup.set_clock(start);
        setup
    }

    fn set_clock(&self, ms: i64) {
        let tmp = self.clock.with_extension("tmp");
        std::fs::write(&tmp, ms.to_string()).unwrap();
        std::fs::rename(&tmp, &self.clock).unwrap();
    }

    /// `erebor ARGS` with the test clock; expects exit `code`, returns stdout.
    fn erebor(&self, args: &[&str], code: i32) -> String {
        let mut command = self.sandbox.erebor();
        command.env("EREBOR_TEST_CLOCK", &self.clock);
        expect_exit(command, args, code)
    }

    /// `schedule add NAME wf/score.yaml ARGS`.
    fn add(&self, name: &str, args: &[&str]) -> String {
        let file = self.workflow.display().to_string();
        let mut all = vec!["schedule", "add", name, file.as_str()];
        all.extend_from_slice(args);
        self.erebor(&all, 0)
    }

    /// `wait_evaluated` with a longer limit, for ticks whose runs train models.
    fn wait_evaluated_within(
        &self,
        schedule: &str,
        count: usize,
        limit: Duration,
    ) -> Vec<TickRecord> {
        let start = Instant::now();
        loop {
            let ticks = self.ticks(schedule);
            if ticks.iter().filter(|t| t.evaluated_at.is_some()).count() >= count {
                return ticks;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {count} evaluated ticks; ticks: {ticks:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Starts a daemon (polling every 100 ms); `env` adds variables.
    fn daemon(&self, tag: &str, env: &[(&str, &str)]) -> Daemon {
        let log = self.sandbox.path().join(format!("daemon-{tag}.log"));
        let mut command = self.sandbox.erebor();
        command
            .env("EREBOR_TEST_CLOCK", &self.clock)
            .env("RUST_LOG", "info")
            .args([
                "scheduler",
                "--poll",
                "100ms",
                "--late-after",
                "5s",
                "--stop-grace",
                "3s",
                "-j",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        Daemon {
            child: Some(command.spawn().unwrap()),
            log,
        }
    }

    fn ticks(&self, schedule: &str) -> Vec<TickRecord> {
        let name = schedule.to_owned();
        self.sandbox
            .with_store(async move |store| store.ticks_of(&name).await.unwrap())
    }

    /// Waits until the schedule's ticks satisfy `done` (60 s at most).
    fn wait_ticks(
        &self,
        schedule: &str,
        what: &str,
        done: impl Fn(&[TickRecord]) -> bool,
    ) -> Vec<TickRecord> {
        let start = Instant::now();
        loop {
            let ticks = self.ticks(schedule);
            if done(&ticks) {
                return ticks;
            }
            assert!(
                start.elapsed() < Duration::from_mins(1),
                "timed out waiting for {what}; ticks: {ticks:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `count` ticks have been evaluated (their runs ended).
    fn wait_evaluated(&self, schedule: &str, count: usize) -> Vec<TickRecord> {
        self.wait_ticks(schedule, &format!("{count} evaluated ticks"), |ticks| {
            ticks.iter().filter(|t| t.evaluated_at.is_some()).count() >= count
        })
    }

    fn run_count(&self) -> usize {
        self.sandbox.with_store(async |store| {
            store
                .list_runs(&erebor_store::RunFilter::default())
                .await
                .unwrap()
                .len()
        })
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.sandbox.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("daemon-") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                out.push_str(&format!("--- {name} (last lines)\n"));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A running daemon; killed with SIGKILL (and reaped) when dropped.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits for it to exit (30 s at most); returns its exit code.
    fn terminate(mut self) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                let _ = child.wait();
                panic!(
                    "the scheduler did not stop on SIGTERM:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reaps it.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A webhook receiver on 127.0.0.1: records each POST body, answers 200.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/T0KEN-secret",
            listener.local_addr().unwrap()
        );
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_request(&stream) {
                    seen.lock().unwrap().push(body);
                }
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { url, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

fn started(ticks: &[TickRecord]) -> Vec<&TickRecord> {
    ticks
        .iter()
        .filter(|t| t.state == TickState::Started)
        .collect()
}

/// Two daemons over five ticks: five runs, each tick once. Ticks 1-3 measure score 1; tick 4
/// runs with `--set score=5` (outside median ± k·MAD of the three earlier fresh runs) and tick
/// 5 with `--set score=-1` (an `expect:` miss): both are marked regressed in `schedule
/// history` and `runs list`, and the webhook gets exactly one notice for each.
// The measurements are the integer scores the test wrote: equality is the check.
#[allow(clippy::float_cmp)]
fn two_daemons_fire_each_tick_once(sandbox: &Sandbox) {
    let setup = Setup::new(sandbox, T0);
    let hook = Webhook::start();
    let add = |score: &str, replace: bool| {
        let set = format!("score={score}");
        let mut args = vec![
            "--cron",
            "*/10 * * * * *",
            "--fresh",
            "measure",
            "--notify-env",
            "SCORE_HOOK",
            "--set",
            &set,
        ];
        if replace {
            args.push("--replace");
        }
        setup.add("nightly", &args);
    };
    add("1.0", false);
    let env = [("SCORE_HOOK", hook.url.as_str())];
    let a = setup.daemon("a", &env);
    let b = setup.daemon("b", &env);
    for (i, score) in ["1.0", "1.0", "1.0", "5", "-1"].iter().enumerate() {
        if i >= 3 {
            add(score, true);
        }
        setup.set_clock(T0 + 10_000 * (i64::try_from(i).unwrap() + 1) + 300);
        setup.wait_evaluated("nightly", i + 1);
    }
    let ticks = setup.ticks("nightly");
    assert_eq!(ticks.len(), 5, "{ticks:#?}");
    assert_eq!(started(&ticks).len(), 5);
    assert_eq!(setup.run_count(), 5, "exactly one run per tick");
    let owners: std::collections::BTreeSet<i64> = ticks.iter().map(|t| t.owner_pid).collect();
    assert!(owners.is_subset(&[i64::from(a.pid()), i64::from(b.pid())].into()));
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(tick.tick_at, T0 + 10_000 * (i64::try_from(i).unwrap() + 1));
        assert_eq!(
            tick.fresh,
            Some(true),
            "tick {i}: --fresh measure ran: {tick:?}"
        );
        assert_eq!(tick.regressed, i >= 3, "tick {i}: {tick:?}");
    }
    assert_eq!(ticks[0].measurements["measure/score"], 1.0);
    assert_eq!(ticks[3].measurements["measure/score"], 5.0);
    assert!(
        ticks[3].reasons[0].contains("measure/score = 5 is outside median 1"),
        "{:?}",
        ticks[3].reasons
    );
    assert!(
        ticks[4].reasons[0].contains("expect: measure: score >= 0 (got -1)"),
        "{:?}",
        ticks[4].reasons
    );

    assert_one_notice_per_regressed_tick(&hook, &ticks[3..]);

    let history = setup.erebor(&["schedule", "history", "nightly"], 0);
    assert_eq!(history.matches("regressed").count(), 2, "{history}");
    assert!(history.contains("measure/score=5"), "{history}");
    let runs = setup.erebor(&["runs", "list"], 0);
    assert_eq!(runs.matches("regressed").count(), 2, "{runs}");
    let list = setup.erebor(&["schedule", "list"], 0);
    assert!(
        list.contains("nightly") && list.contains("regressed"),
        "{list}"
    );
    // The URL (with its token) is in no stored row and no output.
    let logs = setup.logs();
    assert!(
        !logs.contains("T0KEN-secret") && !history.contains("T0KEN"),
        "{logs}"
    );
    assert_eq!(a.terminate(), Some(0));
    assert_eq!(b.terminate(), Some(0));
}

/// A daemon killed with SIGKILL between inserting a tick and starting its run: the next daemon re-drives
/// the tick with the run id chosen at claim time; one run. Then SIGTERM while a tick's step is
/// running leaves the run interrupted, and the next daemon resumes it.
fn killed_daemons_leave_nothing_undone(sandbox: &Sandbox) {
    let setup = Setup::new(sandbox, T0);
    setup.add("kill", &["--cron", "*/10 * * * * *", "--fresh-all"]);
    let stalled = setup.daemon("stall", &[("EREBOR_TEST_SCHEDULER_STALL_AFTER_CLAIM", "1")]);
    setup.set_clock(T0 + 10_500);
    let claimed = setup.wait_ticks("kill", "a claimed tick", |t| t.len() == 1)[0].clone();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(setup.ticks("kill")[0].state, TickState::Claimed);
    stalled.kill();
    assert_eq!(setup.run_count(), 0);

    let second = setup.daemon("second", &[]);
    let ticks = setup.wait_evaluated("kill", 1);
    assert_eq!(ticks[0].run_id, claimed.run_id);
    assert_eq!(ticks[0].owner_pid, i64::from(second.pid()));
    assert_eq!(setup.run_count(), 1);
    assert!(
        setup
            .logs()
            .contains("taking over a tick whose scheduler died")
    );

    // SIGTERM during a slow step: the run is left interrupted, the next daemon resumes it.
    let marker = sandbox.path().join("slow-once");
    sandbox.script(
        "wf/measure.sh",
        &format!(
            "#!/bin/sh\nif [ ! -e {m} ]; then touch {m}; sleep 30; fi\necho \"erebor:metric score 0 $1\"\n",
            m = marker.display()
        ),
    );
    setup.set_clock(T0 + 20_500);
    setup.wait_ticks("kill", "the second tick's step running", |_| {
        marker.exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(second.terminate(), Some(0));
    let run_id = setup.ticks("kill")[1].run_id.clone().unwrap();
    let run = sandbox.with_store(async |store| store.find_run(&run_id).await.unwrap());
    assert_eq!(run.status, erebor_store::RunStatus::Cancelled, "{run:?}");
    let _third = setup.daemon("third", &[]);
    let ticks = setup.wait_evaluated("kill", 2);
    assert_eq!(ticks[1].run_id.as_deref(), Some(run_id.as_str()));
    let run = sandbox.with_store(async |store| store.find_run(&run_id).await.unwrap());
    assert_eq!(run.status, erebor_store::RunStatus::Succeeded);
    assert_eq!(setup.run_count(), 2);
}

/// Ticks missed while no daemon ran: skip fires none, latest the newest, all:2 the newest two
/// (queued one after the other); the others are recorded as skipped.
fn missed_ticks_follow_the_policy(sandbox: &Sandbox) {
    let setup = Setup::new(sandbox, T0);
    // all:2 queues its second catch-up tick behind the first (with the default --overlap skip
    // the second would be skipped while the first runs).
    for (name, missed, overlap) in [
        ("skip", "skip", "skip"),
        ("latest", "latest", "skip"),
        ("all2", "all:2", "queue"),
    ] {
        setup.add(
            name,
            &[
                "--cron",
                "*/10 * * * * *",
                "--missed",
                missed,
                "--overlap",
                overlap,
            ],
        );
    }
    // Down for 97 s: ticks at 10..90 s are all more than --late-after 5s old.
    setup.set_clock(T0 + 97_000);
    let daemon = setup.daemon("missed", &[]);
    let fired = |name: &str| {
        setup
            .wait_ticks(name, "nine ticks recorded", |t| {
                t.len() == 9
                    && t.iter()
                        .all(|t| t.state == TickState::Skipped || t.evaluated_at.is_some())
            })
            .iter()
            .filter(|t| t.state == TickState::Started)
            .map(|t| (t.tick_at - T0) / 1000)
            .collect::<Vec<_>>()
    };
    assert_eq!(fired("skip"), Vec::<i64>::new());
    assert_eq!(fired("latest"), [90]);
    assert_eq!(fired("all2"), [80, 90]);
    let skipped = &setup.ticks("skip")[0];
    assert!(
        skipped.error.as_deref().unwrap().contains("--missed skip"),
        "{skipped:?}"
    );
    assert_eq!(setup.run_count(), 3);
    assert_eq!(daemon.terminate(), Some(0));
}

/// Europe/Berlin: the 02:30 tick of the spring-forward night fires once at 03:00 CEST (01:00
/// UTC); on the fall-back night 02:30 happens twice and fires once, at the first (00:30 UTC).
/// Pause and resume in between: nothing fires for the months while paused. Without `--fresh`
/// the second run reuses the cached step and is not counted as a measurement.
fn daylight_saving_nights(sandbox: &Sandbox) {
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    let setup = Setup::new(sandbox, ms("2026-03-29T00:55:00Z"));
    setup.add("berlin", &["--cron", "30 2 * * *", "--tz", "Europe/Berlin"]);
    let _daemon = setup.daemon("dst", &[]);
    std::thread::sleep(Duration::from_millis(300));
    setup.set_clock(ms("2026-03-29T01:00:02Z"));
    setup.wait_evaluated("berlin", 1);
    setup.erebor(&["schedule", "pause", "berlin"], 0);
    setup.set_clock(ms("2026-10-25T00:00:00Z"));
    std::thread::sleep(Duration::from_millis(300));
    setup.erebor(&["schedule", "resume", "berlin"], 0);
    for now in [
        "2026-10-25T00:30:02Z",
        "2026-10-25T01:30:02Z",
        "2026-10-25T02:00:00Z",
    ] {
        setup.set_clock(ms(now));
        std::thread::sleep(Duration::from_millis(600));
    }
    let ticks = setup.wait_evaluated("berlin", 2);
    let times: Vec<i64> = ticks.iter().map(|t| t.tick_at).collect();
    assert_eq!(
        times,
        [ms("2026-03-29T01:00:00Z"), ms("2026-10-25T00:30:00Z")]
    );
    assert_eq!(setup.run_count(), 2);
    // Without --fresh the second run reuses the cached step: it measured nothing.
    assert_eq!(ticks[0].fresh, Some(true));
    assert_eq!(ticks[1].fresh, Some(false));
    assert!(ticks[1].measurements.is_empty(), "{:?}", ticks[1]);
    let history = setup.erebor(&["schedule", "history", "berlin"], 0);
    assert!(
        history.lines().nth(2).unwrap().trim_end().ends_with(" no"),
        "{history}"
    );
}

/// Bad input: an invalid cron expression or time zone is refused at `schedule add`; a workflow
/// that no longer validates fails its tick with the validation error, and the daemon goes on.
fn bad_input(sandbox: &Sandbox) {
    let setup = Setup::new(sandbox, T0);
    let file = setup.workflow.display().to_string();
    let mut add = sandbox.erebor();
    add.env("EREBOR_TEST_CLOCK", &setup.clock);
    let output = add
        .args(["schedule", "add", "bad", &file, "--cron", "61 * * * *"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("invalid cron expression `61 * * * *`")
    );
    let output = sandbox
        .erebor()
        .env("EREBOR_TEST_CLOCK", &setup.clock)
        .args([
            "schedule",
            "add",
            "bad",
            &file,
            "--cron",
            "* * * * *",
            "--tz",
            "Mars/Olympus",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown time zone `Mars/Olympus`"));

    setup.add("drift", &["--cron", "*/10 * * * * *"]);
    sandbox.write(
        "wf/score.yaml",
        &WORKFLOW.replace("uses: command", "uses: comand"),
    );
    let _daemon = setup.daemon("bad", &[]);
    setup.set_clock(T0 + 10_500);
    let ticks = setup.wait_ticks("drift", "a failed tick", |t| {
        t.len() == 1 && t[0].state == TickState::Failed
    });
    let error = ticks[0].error.as_deref().unwrap();
    assert!(
        error.contains("score.yaml:6") && error.contains("comand"),
        "{error}"
    );
    sandbox.write("wf/score.yaml", WORKFLOW);
    setup.set_clock(T0 + 20_500);
    let ticks = setup.wait_evaluated("drift", 1);
    assert_eq!(ticks[1].state, TickState::Started);
    let history = setup.erebor(&["schedule", "history", "drift"], 0);
    assert!(
        history.contains("failed to start") && history.contains("comand"),
        "{history}"
    );
}

/// A tick while the schedule's earlier run is still going: `--overlap skip` records it as
/// skipped, `allow` starts a second run beside the first, `queue` starts it when the first ends.
fn overlapping_ticks_follow_the_policy(sandbox: &Sandbox) {
    let setup = Setup::new(sandbox, T0);
    let hold = sandbox.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    sandbox.script(
        "wf/measure.sh",
        &format!(
            "#!/bin/sh\nwhile [ -e {} ]; do sleep 0.1; done\necho \"erebor:metric score 0 $1\"\n",
            hold.display()
        ),
    );
    for overlap in ["skip", "allow", "queue"] {
        setup.add(
            overlap,
            &[
                "--cron",
                "*/10 * * * * *",
                "--overlap",
                overlap,
                "--fresh-all",
            ],
        );
    }
    let _daemon = setup.daemon("overlap", &[]);
    setup.set_clock(T0 + 10_300);
    for name in ["skip", "allow", "queue"] {
        setup.wait_ticks(name, "the first tick started", |t| started(t).len() == 1);
    }
    setup.set_clock(T0 + 20_300);
    let skip = setup.wait_ticks("skip", "the second tick skipped", |t| t.len() == 2);
    assert_eq!(skip[1].state, TickState::Skipped);
    assert!(
        skip[1].error.as_deref().unwrap().contains("--overlap skip"),
        "{skip:?}"
    );
    setup.wait_ticks("allow", "a second run beside the first", |t| {
        started(t).len() == 2
    });
    let queue = setup.wait_ticks("queue", "the second tick claimed", |t| t.len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        setup.ticks("queue")[1].state,
        TickState::Claimed,
        "{queue:?}"
    );
    assert_eq!(
        setup.run_count(),
        4,
        "skip 1, allow 2, queue 1 while the first runs hold"
    );
    std::fs::remove_file(&hold).unwrap();
    setup.wait_evaluated("allow", 2);
    setup.wait_evaluated("queue", 2);
    setup.wait_evaluated("skip", 1);
    assert_eq!(setup.run_count(), 5);
}

on_both_backends!(
    two_daemons_fire_each_tick_once,
    killed_daemons_leave_nothing_undone,
    missed_ticks_follow_the_policy,
    overlapping_ticks_follow_the_policy,
    daylight_saving_nights,
    bad_input,
);

/// The README's quickstart as a schedule (issue 17's proof): every 10 test-clock seconds with
/// `--fresh train`, three ticks. The second tick is switched to `--set loss=dpo`: DPO's chosen
/// log-likelihood falls far below the reference, so the train step's `expect:` on the DPOP
/// penalty misses and that tick's run is marked regressed; the webhook receives exactly one
/// notice. Ticks 2 and 3 retrain (`train` is fresh) and reuse the SFT from tick 1. SQLite only:
/// the run takes minutes, and the store paths are the ones the small schedules cover on both.
#[test]
fn the_quickstart_scheduled_with_a_forced_regression() {
    let sandbox = Sandbox::new(common::Backend::Sqlite).unwrap();
    let setup = Setup::new(&sandbox, T0);
    let hook = Webhook::start();
    let quickstart = common::repo_root().join("workflows/quickstart.yaml");
    let file = quickstart.display().to_string();
    let add = |loss: &str, replace: bool| {
        let set = format!("loss={loss}");
        let mut args = vec![
            "schedule",
            "add",
            "quickstart",
            file.as_str(),
            "--cron",
            "*/10 * * * * *",
            "--fresh",
            "train",
            "--notify-env",
            "QUICKSTART_HOOK",
            "--set",
            &set,
        ];
        if replace {
            args.push("--replace");
        }
        setup.erebor(&args, 0);
    };
    add("dpop", false);
    let _daemon = setup.daemon("quickstart", &[("QUICKSTART_HOOK", hook.url.as_str())]);
    for (i, loss) in ["dpop", "dpo", "dpop"].iter().enumerate() {
        if i > 0 {
            add(loss, true);
        }
        setup.set_clock(T0 + 10_000 * (i64::try_from(i).unwrap() + 1) + 300);
        setup.wait_evaluated_within("quickstart", i + 1, Duration::from_mins(15));
    }
    let ticks = setup.ticks("quickstart");
    assert_eq!(started(&ticks).len(), 3, "{ticks:#?}");
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(
            tick.fresh,
            Some(true),
            "tick {i}: train ran fresh: {tick:?}"
        );
        assert_eq!(tick.regressed, i == 1, "tick {i}: {tick:?}");
    }
    assert!(
        ticks[1].reasons.iter().any(|r| r.contains("expect: train")),
        "the DPO tick misses the train step's expect: {:?}",
        ticks[1].reasons
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.bodies().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let notices = hook.bodies();
    assert_eq!(
        notices.len(),
        1,
        "one notice, for the DPO tick: {notices:#?}"
    );
    assert_eq!(notices[0]["run_id"].as_str(), ticks[1].run_id.as_deref());
    let history = setup.erebor(&["schedule", "history", "quickstart"], 0);
    assert_eq!(history.matches("regressed").count(), 1, "{history}");
}

/// The webhook receives one regression notice per tick of `regressed` (within 10 s), each
/// naming its schedule, run and workflow.
fn assert_one_notice_per_regressed_tick(hook: &Webhook, regressed: &[TickRecord]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.bodies().len() < regressed.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let notices = hook.bodies();
    assert_eq!(
        notices.len(),
        regressed.len(),
        "one notice per regressed tick: {notices:#?}"
    );
    for (notice, tick) in notices.iter().zip(regressed) {
        assert_eq!(notice["event"], "erebor.schedule.regression");
        assert_eq!(notice["schedule"], "nightly");
        assert_eq!(notice["run_id"].as_str(), tick.run_id.as_deref());
        assert_eq!(notice["workflow"], "nightly-score");
        assert_eq!(notice["workflow_sha256"].as_str().unwrap().len(), 64);
    }
}
