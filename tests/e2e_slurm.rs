//! The Slurm executor against a real single-node Slurm (scripts/slurm-up.sh brings it up; under
//! CI=true these tests fail when it cannot), and against fake `sbatch`/`squeue` programs on PATH
//! for what a real cluster does not do on demand: an sbatch answer lost to a timeout, garbage
//! from squeue, a job lost without trace.
//!
//! Tests that stop a daemon (slurmctld restarted, munge down) hold the cluster lock alone; the
//! others share it.

mod common;

use common::{Sandbox, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

static CLUSTER: RwLock<()> = RwLock::new(());
static UP: OnceLock<Result<(), String>> = OnceLock::new();

/// Brings the cluster up once per test binary; None (a skip) outside CI when it cannot.
fn slurm() -> Option<()> {
    let up = UP.get_or_init(|| {
        let output = Command::new(repo_root().join("scripts/slurm-up.sh"))
            .output()
            .map_err(|e| format!("cannot run scripts/slurm-up.sh: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/slurm-up.sh failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    match up {
        Ok(()) => Some(()),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Slurm is needed under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("skipping: no Slurm here ({why})");
            None
        }
    }
}

fn shared() -> Option<RwLockReadGuard<'static, ()>> {
    slurm()?;
    Some(
        CLUSTER
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

fn alone() -> Option<RwLockWriteGuard<'static, ()>> {
    slurm()?;
    Some(
        CLUSTER
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// A sandbox whose runs submit quickly retried Slurm commands.
fn sandbox() -> Sandbox {
    Sandbox::new(common::Backend::Sqlite).unwrap()
}

fn erebor(sandbox: &Sandbox) -> Command {
    let mut command = sandbox.erebor();
    command
        .env("EREBOR_SLURM_RETRY_DELAY", "300ms")
        .env("EREBOR_SLURM_POLL_MAX", "2s")
        .env("EREBOR_SLURM_RESULT_WAIT", "5s");
    command
}

/// Runs erebor to its end: (exit code, stdout + stderr).
fn run(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

fn job_name(run: &str, step: &str, attempt: u32) -> String {
    let step: String = step
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("erebor-{run}-{step}-a{attempt}")
}

/// `squeue --states=all --name=NAME`: (job id, state) of every job of that name.
fn jobs_named(name: &str) -> Vec<(String, String)> {
    let output = Command::new("squeue")
        .args([
            "--noheader",
            "--states=all",
            "--format=%i %T",
            &format!("--name={name}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            Some((id.to_owned(), state.to_owned()))
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The runner started in the background, and its run id once recorded.
fn start(sandbox: &Sandbox, workflow: &Path, args: &[&str]) -> (Child, String) {
    let child = erebor(sandbox)
        .arg("run")
        .arg(workflow)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = sandbox.home().join("erebor.db");
    let mut run = None;
    wait_for("the run to be recorded", Duration::from_secs(20), || {
        run = db.exists().then(|| sandbox.latest_run()).flatten();
        run.is_some()
    });
    (child, run.unwrap())
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn show(sandbox: &Sandbox, run: &str) -> String {
    sandbox.expect(&["runs", "show", run], 0)
}

fn slurm_state_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("EREBOR_SLURM_DIR").unwrap_or_else(|_| "/var/tmp/erebor-slurm".into()),
    )
    .join("state")
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path);
        }
    }
    found
}

const SECRET: &str = "sk-slurm-planted-3c9e11";

const DAG: &str = r#"
name: on-slurm
params:
  token: {type: string, secret: true, env: EREBOR_TEST_SLURM_TOKEN}
executor: {type: slurm, extra: ["--nice=0"]}
steps:
  - id: prepare
    uses: command
    with:
      argv: [./prepare.sh, "${{ params.token }}"]
      outputs: {data: data.txt}
  - id: train
    uses: command
    matrix: {arm: [1, 2]}
    resources: {cpus: 1, memory: 200M}
    timeout: 10m
    with:
      argv: [./train.sh, "${{ matrix.arm }}", "${{ steps.prepare.outputs.data }}"]
      metric_outputs: [final]
      env_allow: [SLURM_JOB_ID]
  - id: flaky
    uses: command
    retries: 1
    retry_backoff: 10ms
    with:
      argv: [./fail-once.sh]
  - id: judge
    uses: command
    executor: local
    needs: [train]
    with:
      argv: [./judge.sh]
      env_allow: [SLURM_JOB_ID]
  - id: join
    uses: noop
    needs: [judge, flaky]
"#;

#[test]
fn a_dag_runs_as_slurm_jobs_with_metrics_secrets_kept_out_and_a_failed_job_retried() {
    let Some(_cluster) = shared() else { return };
    let sandbox = sandbox();
    sandbox.script(
        "prepare.sh",
        &format!("#!/bin/sh\nset -eu\n[ \"$1\" = \"{SECRET}\" ]\necho data > data.txt\n"),
    );
    sandbox.script(
        "train.sh",
        "#!/bin/sh\nset -eu\ntest -s \"$2\"\n[ -n \"${SLURM_JOB_ID:-}\" ] || exit 9\nfor i in 0 1 2; do echo \"erebor:metric loss $i $(( $1 * 10 + i ))\"; done\necho \"erebor:metric final 0 $(( $1 * 100 ))\"\n",
    );
    sandbox.script(
        "fail-once.sh",
        "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0)\necho $((n+1)) > count\n[ \"$n\" -ge 1 ]\n",
    );
    // The judge runs on the runner's host, not as a job.
    sandbox.script("judge.sh", "#!/bin/sh\n[ -z \"${SLURM_JOB_ID:-}\" ]\n");
    let workflow = sandbox.write("dag.yaml", DAG);
    let (code, out) = run(erebor(&sandbox)
        .env("EREBOR_TEST_SLURM_TOKEN", SECRET)
        .arg("run")
        .arg(&workflow));
    assert_eq!(code, Some(0), "{out}");
    let run_id = sandbox.latest_run().unwrap();
    let shown = show(&sandbox, &run_id);
    for (step, attempts) in [
        ("prepare", 1),
        ("train[1]", 1),
        ("train[2]", 1),
        ("flaky", 2),
    ] {
        for attempt in 1..=attempts {
            let jobs = jobs_named(&job_name(&run_id, step, attempt));
            assert_eq!(jobs.len(), 1, "{step} attempt {attempt}: {jobs:?}");
            let line = format!("{step} attempt {attempt}: slurm job {}", jobs[0].0);
            assert!(shown.contains(&line), "`{line}` in:\n{shown}");
        }
    }
    assert!(
        jobs_named(&job_name(&run_id, "judge", 1)).is_empty(),
        "judge ran locally"
    );
    // Metrics the jobs wrote reached the store.
    let metrics = sandbox.expect(&["metrics", &run_id, "--step", "train[2]"], 0);
    assert!(
        metrics.contains("final") && metrics.contains("200"),
        "{metrics}"
    );
    assert!(
        metrics.contains("loss") && metrics.contains("22"),
        "{metrics}"
    );
    // The secret went to the step through the 0600 env file, removed afterwards; never
    // through sbatch's arguments or Slurm's saved job state.
    let leaks = files_containing(&slurm_state_dir(), SECRET);
    assert!(
        leaks.is_empty(),
        "Slurm's saved state holds the secret: {leaks:?}"
    );
    let leaks = files_containing(&sandbox.home(), SECRET);
    assert!(
        leaks.is_empty(),
        "the run folder or store holds the secret: {leaks:?}"
    );
}

const LONG: &str = r#"
name: long
executor: slurm
steps:
  - id: long
    uses: command
    with:
      argv: [./long.sh, "MARKERS"]
  - id: after
    uses: noop
    needs: [long]
"#;

/// Writes `started`, then runs ~`SECONDS`; on SIGTERM writes `term` and exits.
fn long_script(seconds: u32) -> String {
    format!(
        "#!/bin/sh\ntrap 'echo term > \"$1/term\"; exit 0' TERM\necho go > \"$1/started\"\ni=0\nwhile [ $i -lt {} ]; do sleep 0.1; i=$((i+1)); done\necho done > \"$1/finished\"\n",
        seconds * 10
    )
}

fn long_workflow(sandbox: &Sandbox, seconds: u32) -> (PathBuf, PathBuf) {
    long_workflow_on(sandbox, seconds, "executor: slurm")
}

/// The long workflow with `executor` as its executor line (empty: the command line decides).
fn long_workflow_on(sandbox: &Sandbox, seconds: u32, executor: &str) -> (PathBuf, PathBuf) {
    let markers = sandbox.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    sandbox.script("long.sh", &long_script(seconds));
    let text = LONG
        .replace("MARKERS", markers.to_str().unwrap())
        .replace("executor: slurm", executor);
    (sandbox.write("long.yaml", &text), markers)
}

#[test]
fn the_runner_cancels_its_job_with_term_then_kill() {
    let Some(_cluster) = shared() else { return };
    let sandbox = sandbox();
    let (workflow, markers) = long_workflow(&sandbox, 60);
    let (mut child, run_id) = start(&sandbox, &workflow, &["--stop-grace", "5s"]);
    wait_for("the job to start", Duration::from_secs(30), || {
        markers.join("started").exists()
    });
    unsafe_free_kill(child.id(), "TERM");
    let code = wait_child(&mut child, Duration::from_secs(40));
    assert_eq!(code, Some(1), "a cancelled run exits 1");
    assert!(
        markers.join("term").exists(),
        "the step got SIGTERM (scancel --signal=TERM)"
    );
    assert!(!markers.join("finished").exists());
    let shown = show(&sandbox, &run_id);
    assert!(shown.contains("cancelled"), "{shown}");
    let jobs = jobs_named(&job_name(&run_id, "long", 1));
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    wait_for("the job to end", Duration::from_secs(20), || {
        let jobs = jobs_named(&job_name(&run_id, "long", 1));
        !matches!(jobs[0].1.as_str(), "RUNNING" | "PENDING" | "COMPLETING")
    });
}

/// Sends a signal by name with `kill` (the test crate forbids unsafe code).
fn unsafe_free_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_sigkilled_runner_is_resumed_and_reattaches_to_its_job() {
    let Some(_cluster) = shared() else { return };
    let sandbox = sandbox();
    // Slurm chosen on the command line only: resume must inherit it.
    let (workflow, markers) = long_workflow_on(&sandbox, 4, "");
    let (mut child, run_id) = start(&sandbox, &workflow, &["--executor", "slurm"]);
    wait_for("the job to start", Duration::from_secs(30), || {
        markers.join("started").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The job outlives its runner.
    let name = job_name(&run_id, "long", 1);
    assert_eq!(jobs_named(&name)[0].1, "RUNNING");
    let (code, out) = run(erebor(&sandbox).args(["resume", &run_id]));
    assert_eq!(code, Some(0), "{out}");
    assert!(markers.join("finished").exists(), "the job ran to its end");
    assert_eq!(jobs_named(&name).len(), 1, "re-attached, not resubmitted");
    assert!(
        jobs_named(&job_name(&run_id, "long", 2)).is_empty(),
        "no second attempt"
    );
    let shown = show(&sandbox, &run_id);
    assert!(shown.contains("succeeded"), "{shown}");
    let long = shown.lines().find(|l| l.starts_with("long ")).unwrap();
    assert!(
        long.contains("succeeded") && long.split_whitespace().nth(3) == Some("1"),
        "{long}"
    );
}

/// Restarts what scripts/slurm-up.sh starts (a daemon stopped by a test), even on panic.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let status = Command::new(repo_root().join("scripts/slurm-up.sh"))
            .stdout(Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "scripts/slurm-up.sh could not restore Slurm"
        );
    }
}

fn stop_daemon(pidfile: &Path) {
    let pid = std::fs::read_to_string(pidfile).unwrap();
    unsafe_free_kill(pid.trim().parse().unwrap(), "TERM");
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    wait_for("the daemon to stop", Duration::from_secs(10), || {
        !proc.exists()
    });
}

#[test]
fn a_run_survives_a_slurmctld_restart() {
    let Some(_cluster) = alone() else { return };
    let sandbox = sandbox();
    let (workflow, markers) = long_workflow(&sandbox, 6);
    let (mut child, run_id) = start(&sandbox, &workflow, &[]);
    wait_for("the job to start", Duration::from_secs(30), || {
        markers.join("started").exists()
    });
    {
        let _restore = Restore;
        let state = slurm_state_dir();
        stop_daemon(&state.parent().unwrap().join("run/slurmctld.pid"));
        std::thread::sleep(Duration::from_secs(2));
    }
    let code = wait_child(&mut child, Duration::from_secs(90));
    assert_eq!(code, Some(0), "{}", show(&sandbox, &run_id));
    assert_eq!(jobs_named(&job_name(&run_id, "long", 1)).len(), 1);
    assert!(jobs_named(&job_name(&run_id, "long", 2)).is_empty());
}

#[test]
fn munge_down_is_a_clear_error() {
    let Some(_cluster) = alone() else { return };
    let sandbox = sandbox();
    let workflow = sandbox.write(
        "one.yaml",
        "name: one\nexecutor: slurm\nsteps:\n  - id: only\n    uses: noop\n",
    );
    let out = {
        let _restore = Restore;
        stop_daemon(Path::new("/run/munge/munged.pid"));
        run(erebor(&sandbox).arg("run").arg(&workflow))
    };
    assert_eq!(out.0, Some(1), "{}", out.1);
    let run_id = sandbox.latest_run().unwrap();
    let shown = show(&sandbox, &run_id);
    assert!(shown.contains("munged running"), "{shown}");
}

fn bad_input(executor: &str, resources: &str) -> (String, String) {
    let sandbox = sandbox();
    let text = format!(
        "name: bad\nexecutor: {executor}\nsteps:\n  - id: only\n    uses: noop\n    resources: {resources}\n"
    );
    let workflow = sandbox.write("bad.yaml", &text);
    let (code, out) = run(erebor(&sandbox).arg("run").arg(&workflow));
    assert_eq!(code, Some(1), "{out}");
    let run_id = sandbox.latest_run().unwrap();
    (out, show(&sandbox, &run_id))
}

#[test]
fn memory_above_the_node_and_an_unknown_partition_are_clear_errors() {
    let Some(_cluster) = shared() else { return };
    let (_, shown) = bad_input("slurm", "{memory: 64T}");
    assert!(
        shown.contains("Requested node configuration is not available")
            && shown.contains("resources.memory"),
        "{shown}"
    );
    let (_, shown) = bad_input("slurm", "{gpus: 1}");
    assert!(
        shown.contains("Invalid generic resource") && shown.contains("resources.gpus"),
        "{shown}"
    );
    let (_, shown) = bad_input("{type: slurm, partition: nosuch}", "{}");
    assert!(
        shown.contains("Invalid partition name") && shown.contains("executor.partition"),
        "{shown}"
    );
}

#[test]
fn sbatch_missing_is_refused_before_the_run_starts() {
    let sandbox = sandbox();
    let workflow = sandbox.write(
        "one.yaml",
        "name: one\nexecutor: slurm\nsteps:\n  - id: only\n    uses: noop\n",
    );
    let empty = sandbox.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, out) = run(erebor(&sandbox)
        .env("PATH", &empty)
        .arg("run")
        .arg(&workflow));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("`sbatch` is not on PATH"), "{out}");
}

/// Fake `sbatch`: records each submission, runs the script in the background and marks it
/// done; `$FAKE_SLURM_MODE` `timeout` holds its first answer past erebor's limit (the job is
/// submitted, the answer lost), `lose` accepts the first job and never runs or shows it.
const FAKE_SBATCH: &str = r#"#!/bin/sh
d=$FAKE_SLURM_DIR
name=; out=; script=
for a in "$@"; do
  case "$a" in
    --job-name=*) name=${a#--job-name=} ;;
    --output=*) out=${a#--output=} ;;
    --*) ;;
    *) script=$a ;;
  esac
done
n=$(( $(cat "$d/next" 2>/dev/null || echo 100) + 1 ))
echo $n > "$d/next"
echo "$n $name" >> "$d/submitted"
count=$(wc -l < "$d/submitted")
if [ "$FAKE_SLURM_MODE" = lose ] && [ "$count" = 1 ]; then echo $n; exit 0; fi
echo "$n $name" >> "$d/jobs"
( sh "$script" >> "$out" 2>&1; touch "$d/done.$n" ) &
if [ "$FAKE_SLURM_MODE" = timeout ] && [ "$count" = 1 ]; then sleep 30; fi
if [ "$FAKE_SLURM_MODE" = hang ] && [ "$count" = 1 ]; then sleep 20; fi
echo $n
"#;

/// Fake `squeue`: the recorded jobs by `--jobs` or `--name`, RUNNING until marked done;
/// `garbage` prints an HTML error page for its first three calls.
const FAKE_SQUEUE: &str = r#"#!/bin/sh
d=$FAKE_SLURM_DIR
echo call >> "$d/squeue-calls"
if [ "$FAKE_SLURM_MODE" = garbage ] && [ "$(wc -l < "$d/squeue-calls")" -le 3 ]; then
  echo '<html><body>502 Bad Gateway</body></html>'; exit 0
fi
want_name=; want_ids=
for a in "$@"; do
  case "$a" in
    --name=*) want_name=${a#--name=} ;;
    --jobs=*) want_ids=",${a#--jobs=}," ;;
  esac
done
[ -f "$d/jobs" ] || exit 0
while read -r id name; do
  if [ -n "$want_name" ] && [ "$name" != "$want_name" ]; then continue; fi
  case "$want_ids" in ''|*",$id,"*) ;; *) continue ;; esac
  if [ -f "$d/done.$id" ]; then echo "$id|COMPLETED|0|None|"; else echo "$id|RUNNING|0|None|"; fi
done < "$d/jobs"
"#;

/// A sandbox with fake `sbatch`, `squeue` and `scancel` and a one-step workflow.
struct Fake {
    sandbox: Sandbox,
    state: PathBuf,
    workflow: PathBuf,
}

impl Fake {
    fn new() -> Self {
        let sandbox = sandbox();
        let state = sandbox.path().join("fake-state");
        std::fs::create_dir_all(&state).unwrap();
        sandbox.script("fake-bin/sbatch", FAKE_SBATCH);
        sandbox.script("fake-bin/squeue", FAKE_SQUEUE);
        sandbox.script("fake-bin/scancel", "#!/bin/sh\nexit 0\n");
        sandbox.script("work.sh", "#!/bin/sh\necho erebor:metric value 0 7\n");
        let workflow = sandbox.write(
            "fake.yaml",
            "name: fake\nexecutor: slurm\nsteps:\n  - id: work\n    uses: command\n    with: {argv: [./work.sh]}\n",
        );
        Self {
            sandbox,
            state,
            workflow,
        }
    }

    /// erebor with the fakes first on PATH, in `mode`, and `limit` per Slurm command.
    fn erebor(&self, mode: &str, limit: &str) -> Command {
        let bin = self.sandbox.path().join("fake-bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut command = erebor(&self.sandbox);
        command
            .env("PATH", path)
            .env("FAKE_SLURM_DIR", &self.state)
            .env("FAKE_SLURM_MODE", mode)
            .env("EREBOR_SLURM_COMMAND_TIMEOUT", limit)
            .env("EREBOR_SLURM_RESULT_WAIT", "1s");
        command
    }

    fn lines(&self, file: &str) -> usize {
        std::fs::read_to_string(self.state.join(file)).map_or(0, |t| t.lines().count())
    }
}

/// Runs a one-step workflow on fake Slurm programs in `mode`; (exit code, output, run id,
/// submissions, squeue calls).
fn on_fake_slurm(mode: &str) -> (Option<i32>, String, String, usize, usize) {
    let fake = Fake::new();
    let sandbox = &fake.sandbox;
    let (code, out) = run(fake.erebor(mode, "1s").arg("run").arg(&fake.workflow));
    let lines = |file: &str| fake.lines(file);
    let run_id = sandbox.latest_run().unwrap_or_default();
    let shown = if run_id.is_empty() {
        String::new()
    } else {
        show(sandbox, &run_id)
    };
    (
        code,
        format!("{out}\n{shown}"),
        run_id,
        lines("submitted"),
        lines("squeue-calls"),
    )
}

#[test]
fn an_sbatch_answer_lost_to_a_timeout_is_found_by_name_not_resubmitted() {
    let (code, out, _, submitted, _) = on_fake_slurm("timeout");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(submitted, 1, "one submission: {out}");
    assert!(out.contains("work attempt 1: slurm job 101"), "{out}");
    assert!(out.contains("did not answer within 1s"), "{out}");
}

#[test]
fn garbage_from_squeue_changes_no_state() {
    let (code, out, _, submitted, calls) = on_fake_slurm("garbage");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(submitted, 1, "{out}");
    assert!(calls > 3, "polled past the garbage: {calls}");
    assert!(out.contains("unexpected squeue output line"), "{out}");
}

#[test]
fn a_job_lost_without_trace_is_lost_and_runs_again() {
    let (code, out, _, submitted, _) = on_fake_slurm("lose");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(submitted, 2, "{out}");
    assert!(out.contains("work attempt 1: slurm job 101"), "{out}");
    assert!(out.contains("work attempt 2: slurm job 102"), "{out}");
    assert!(out.contains("is gone from `squeue --states=all`"), "{out}");
}

#[test]
fn a_runner_killed_before_recording_its_job_id_finds_the_job_by_name_on_resume() {
    let fake = Fake::new();
    // sbatch starts the job, then does not answer: the runner dies waiting for the job id.
    let mut child = fake
        .erebor("hang", "60s")
        .arg("run")
        .arg(&fake.workflow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the job to run", Duration::from_secs(30), || {
        fake.state.join("done.101").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let run_id = fake.sandbox.latest_run().unwrap();
    let (code, out) = run(fake.erebor("normal", "5s").args(["resume", &run_id]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("submission was not recorded"), "{out}");
    assert_eq!(fake.lines("submitted"), 1, "not submitted twice: {out}");
    let shown = show(&fake.sandbox, &run_id);
    assert!(shown.contains("work attempt 1: slurm job 101"), "{shown}");
    assert!(!shown.contains("work attempt 2"), "{shown}");
}

#[test]
fn plan_leaves_gpus_of_slurm_steps_to_the_allocation() {
    let sandbox = sandbox();
    let text = "name: g\nexecutor: slurm\nsteps:\n  - id: train\n    uses: noop\n    resources: {gpus: 2}\n";
    let workflow = sandbox.write("g.yaml", text);
    let workflow = workflow.to_str().unwrap();
    let on_slurm = sandbox.expect(&["plan", workflow, "--gpus", "none"], 0);
    assert!(!on_slurm.contains("it will fail"), "{on_slurm}");
    let local = sandbox.expect(
        &["plan", workflow, "--gpus", "none", "--executor", "local"],
        0,
    );
    assert!(local.contains("needs 2 GPU(s) but only 0"), "{local}");
}

#[test]
fn the_timeout_counts_from_when_the_job_runs_not_while_it_is_queued() {
    let Some(_cluster) = shared() else { return };
    let sandbox = sandbox();
    sandbox.script(
        "quick.sh",
        "#!/bin/sh\nsleep 1\necho erebor:metric ran 0 1\n",
    );
    // Held in the queue for 6 s by --begin, then runs for 1 s, under a 4 s timeout.
    let text = "name: held\nexecutor: slurm\nsteps:\n  - id: held\n    uses: command\n    timeout: 4s\n    resources: {sbatch: [\"--begin=now+6\"]}\n    with: {argv: [./quick.sh]}\n";
    let workflow = sandbox.write("held.yaml", text);
    let started = Instant::now();
    let (code, out) = run(erebor(&sandbox).arg("run").arg(&workflow));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "the job was held"
    );
}
