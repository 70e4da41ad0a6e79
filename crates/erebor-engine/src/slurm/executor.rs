//! [`SlurmExecutor`]: each attempt a batch job, submitted, polled and cancelled as the
//! [module docs](super) describe.

use super::command::{self, SlurmError};
use super::settings::SlurmSettings;
use super::{script, squeue};
use crate::executor::{BoxFuture, Executor, ExternalId, JobState, Launch};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The last `squeue` answer and when to ask again.
struct PollCache {
    states: BTreeMap<ExternalId, JobState>,
    at: Option<Instant>,
    interval: Duration,
}

struct Inner {
    settings: SlurmSettings,
    cache: tokio::sync::Mutex<PollCache>,
    /// The attempt folder of each job submitted by this runner (to remove its env file).
    dirs: Mutex<BTreeMap<ExternalId, PathBuf>>,
    squeue_calls: AtomicU64,
}

/// Runs each attempt as a Slurm batch job (see the module docs).
pub struct SlurmExecutor {
    inner: Arc<Inner>,
}

impl SlurmExecutor {
    /// An executor with these settings.
    pub fn new(settings: SlurmSettings) -> Self {
        let interval = settings.poll_min;
        Self {
            inner: Arc::new(Inner {
                settings,
                cache: tokio::sync::Mutex::new(PollCache {
                    states: BTreeMap::new(),
                    at: None,
                    interval,
                }),
                dirs: Mutex::default(),
                squeue_calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many times `squeue` ran (for logs and benchmarks).
    pub(crate) fn squeue_calls(&self) -> u64 {
        self.inner.squeue_calls.load(Ordering::Relaxed)
    }
}

impl Inner {
    async fn run(&self, program: &str, args: &[String]) -> Result<String, SlurmError> {
        command::run(program, args, self.settings.command_timeout).await
    }

    /// The job of this name, if Slurm knows one (the newest).
    async fn find_by_name(&self, name: &str) -> Result<Option<ExternalId>, SlurmError> {
        self.squeue_calls.fetch_add(1, Ordering::Relaxed);
        let output = self
            .run(&self.settings.squeue, &squeue::by_name_args(name))
            .await?;
        let states = squeue::parse(&output).map_err(|error| SlurmError::Transient {
            program: self.settings.squeue.clone(),
            message: error.to_string(),
        })?;
        Ok(states
            .into_keys()
            .max_by_key(|id| id.as_str().parse::<u64>().unwrap_or(0)))
    }

    /// Submits with retries; a lost answer is looked up by name before submitting again.
    async fn submit(&self, launch: &Launch) -> Result<ExternalId, SlurmError> {
        let forwarded: Vec<(String, String)> = script::FORWARDED_ENV
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        let script_file = script::write_job_files(&self.settings.program, launch, &forwarded)
            .map_err(|error| SlurmError::Refused {
                program: self.settings.sbatch.clone(),
                message: format!("cannot write the batch script: {error}"),
            })?;
        let args = script::sbatch_args(&self.settings.cluster, launch, &script_file);
        let name = &launch.job.name;
        let mut delay = self.settings.retry_delay;
        let mut last = None;
        for attempt in 1..=self.settings.tries.max(1) {
            if attempt > 1 {
                tokio::time::sleep(command::jittered(delay)).await;
                delay = delay.saturating_mul(2);
                match self.find_by_name(name).await {
                    Ok(Some(id)) => {
                        tracing::warn!(job = %id, %name, "found the job of a submission whose answer was lost; not submitting again");
                        return Ok(id);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%name, "cannot look the job up by name: {error}");
                        last = Some(error);
                        continue;
                    }
                }
            }
            match self.run(&self.settings.sbatch, &args).await {
                Ok(output) => match parse_job_id(&output) {
                    Some(id) => return Ok(id),
                    None => {
                        tracing::warn!(%name, "sbatch answered `{}`: not a job id", output.trim());
                        last = Some(SlurmError::Transient {
                            program: self.settings.sbatch.clone(),
                            message: format!("answered `{}`, not a job id", output.trim()),
                        });
                    }
                },
                Err(error) if error.is_transient() => {
                    tracing::warn!(%name, attempt, "{error}");
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        if let Ok(Some(id)) = self.find_by_name(name).await {
            return Ok(id);
        }
        Err(last.unwrap_or_else(|| SlurmError::Transient {
            program: self.settings.sbatch.clone(),
            message: "no answer".into(),
        }))
    }

    /// The states of `ids`: cached while the interval has not passed, else one `squeue`.
    async fn poll(&self, ids: &[ExternalId]) -> Vec<JobState> {
        let mut cache = self.cache.lock().await;
        let fresh = cache.at.is_some_and(|at| at.elapsed() < cache.interval);
        let all_known = ids.iter().all(|id| cache.states.contains_key(id));
        let stale = !fresh || !all_known;
        if stale && !ids.is_empty() {
            self.refresh(&mut cache, ids).await;
        }
        ids.iter()
            .map(|id| cache.states.get(id).cloned().unwrap_or(JobState::Queued))
            .collect()
    }

    async fn refresh(&self, cache: &mut PollCache, ids: &[ExternalId]) {
        self.squeue_calls.fetch_add(1, Ordering::Relaxed);
        let answer = self.run(&self.settings.squeue, &squeue::args(ids)).await;
        let parsed = match answer {
            Ok(output) => squeue::parse(&output).map_err(|error| error.to_string()),
            Err(SlurmError::Refused { message, .. }) if squeue::all_unknown(&message) => {
                Ok(BTreeMap::new())
            }
            Err(SlurmError::Missing { program }) => {
                let why = format!("`{program}` is not on PATH any more; cannot follow the job");
                for id in ids {
                    cache.states.insert(id.clone(), JobState::Lost(why.clone()));
                }
                return;
            }
            Err(error) => Err(error.to_string()),
        };
        cache.at = Some(Instant::now());
        let mut found = match parsed {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!("squeue failed; keeping the jobs' last states: {error}");
                cache.interval = (cache.interval * 2).min(self.settings.poll_max);
                return;
            }
        };
        let mut changed = false;
        for id in ids {
            let state = found.remove(id).unwrap_or_else(|| {
                JobState::Lost(format!(
                    "Slurm job {id} is gone from `squeue --states=all` (purged, or the cluster lost it)"
                ))
            });
            if cache.states.get(id) != Some(&state) {
                changed = true;
            }
            cache.states.insert(id.clone(), state);
        }
        cache.interval = if changed {
            self.settings.poll_min
        } else {
            cache.interval.mul_f64(1.5).min(self.settings.poll_max)
        };
    }

    /// `scancel` with retries on transient errors.
    async fn scancel(&self, args: &[String]) -> Result<(), SlurmError> {
        let mut delay = self.settings.retry_delay;
        let mut tries = self.settings.tries.max(1);
        loop {
            match self.run(&self.settings.scancel, args).await {
                Ok(_) => return Ok(()),
                Err(error) if error.is_transient() && tries > 1 => {
                    tracing::warn!("{error}");
                    tries -= 1;
                    tokio::time::sleep(command::jittered(delay)).await;
                    delay = delay.saturating_mul(2);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Knows a job just accepted as queued (no `squeue` call needed to say so) and polls at
    /// the shortest interval again.
    async fn submitted(&self, id: &ExternalId) {
        let mut cache = self.cache.lock().await;
        cache.states.insert(id.clone(), JobState::Queued);
        cache.interval = self.settings.poll_min;
    }

    /// Makes the next poll ask `squeue` at once (something was just submitted or cancelled).
    async fn expect_change(&self) {
        let mut cache = self.cache.lock().await;
        cache.interval = self.settings.poll_min;
        cache.at = None;
    }
}

/// The job id in `sbatch --parsable`'s answer (`ID` or `ID;CLUSTER`).
pub(crate) fn parse_job_id(output: &str) -> Option<ExternalId> {
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| ExternalId::new(id))
}

impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn submit(&self, launch: Launch) -> BoxFuture<'_, std::io::Result<ExternalId>> {
        Box::pin(async move {
            let id = self.inner.submit(&launch).await?;
            tracing::info!(job = %id, name = %launch.job.name, "submitted to Slurm");
            let dir = script::attempt_dir(&launch);
            self.inner
                .dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.clone(), dir);
            self.inner.submitted(&id).await;
            Ok(id)
        })
    }

    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>> {
        Box::pin(self.inner.poll(ids))
    }

    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState> {
        Box::pin(async move {
            self.inner
                .poll(std::slice::from_ref(id))
                .await
                .pop()
                .unwrap_or(JobState::Queued)
        })
    }

    fn cancel<'a>(
        &'a self,
        id: &'a ExternalId,
        grace: Duration,
    ) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            if grace.is_zero() {
                self.inner.scancel(&[id.to_string()]).await?;
                self.inner.expect_change().await;
                return Ok(());
            }
            let term = [
                "--signal=TERM".to_owned(),
                "--full".to_owned(),
                id.to_string(),
            ];
            self.inner.scancel(&term).await?;
            let inner = Arc::clone(&self.inner);
            let id = id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let state = inner.poll(std::slice::from_ref(&id)).await.pop();
                if !state.is_some_and(|s| s.is_over())
                    && let Err(error) = inner.scancel(&[id.to_string()]).await
                {
                    tracing::warn!(job = %id, "cannot cancel the job after the grace period: {error}");
                }
            });
            self.inner.expect_change().await;
            Ok(())
        })
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    fn forget(&self, id: &ExternalId) {
        let dir = self
            .inner
            .dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        if let Some(dir) = dir {
            let _ = std::fs::remove_file(dir.join(script::ENV_FILE));
        }
        if let Ok(mut cache) = self.inner.cache.try_lock() {
            cache.states.remove(id);
        }
        tracing::debug!(job = %id, squeue_calls = self.squeue_calls(), "Slurm job over");
    }

    fn outlives_runner(&self) -> bool {
        true
    }

    fn allocates_gpus(&self) -> bool {
        true
    }

    fn result_wait(&self) -> Duration {
        self.inner.settings.result_wait
    }

    fn find<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ExternalId>> {
        Box::pin(async move {
            match self.inner.find_by_name(name).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%name, "cannot look the job up by name: {error}");
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::script::ClusterOptions;

    /// An executor whose `squeue` is a script printing `answer` and logging each call.
    fn with_fake_squeue(dir: &std::path::Path, answer: &str) -> SlurmExecutor {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("squeue");
        let log = dir.join("calls");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ -n \"$FAKE_PROBE\" ] && exit 0\necho \"$@\" >> '{}'\nprintf '%s\\n' '{answer}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        wait_until_executable(&script);
        let mut settings = SlurmSettings::new("/bin/true".into(), ClusterOptions::default());
        settings.squeue = script.display().to_string();
        settings.poll_min = Duration::from_mins(1);
        SlurmExecutor::new(settings)
    }

    /// Runs the fresh script once (unlogged) until exec stops failing with ETXTBSY: a thread of
    /// another test that forked while the script was open for writing keeps a writable copy of
    /// the descriptor until its child execs, and until then Linux refuses to run the file.
    fn wait_until_executable(script: &std::path::Path) {
        const ETXTBSY: i32 = 26;
        for _ in 0..500 {
            match std::process::Command::new(script)
                .env("FAKE_PROBE", "1")
                .status()
            {
                Ok(status) => {
                    assert!(status.success(), "{}: {status}", script.display());
                    return;
                }
                Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{}: {e}", script.display()),
            }
        }
        panic!("{}: still busy after 5 s", script.display());
    }

    fn calls(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn one_squeue_call_for_all_jobs_and_none_within_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let executor = with_fake_squeue(dir.path(), "4|RUNNING|0|None|\n5|PENDING|0|Priority|");
        let ids = [
            ExternalId::new("4"),
            ExternalId::new("5"),
            ExternalId::new("6"),
        ];
        let states = executor.poll(&ids).await;
        assert_eq!(states[0], JobState::Running);
        assert_eq!(states[1], JobState::Queued);
        assert!(matches!(&states[2], JobState::Lost(why) if why.contains("gone")));
        // Within the interval the answer is reused, for all of them or some.
        assert_eq!(executor.poll(&ids).await, states);
        assert_eq!(executor.poll(&ids[..1]).await, states[..1]);
        let calls = calls(dir.path());
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].contains("--jobs=4,5,6") && calls[0].contains("--states=all"));
    }

    #[tokio::test]
    async fn a_garbled_answer_changes_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let executor = with_fake_squeue(dir.path(), "<html>502 Bad Gateway</html>");
        let id = ExternalId::new("7");
        executor.inner.submitted(&id).await;
        executor.inner.expect_change().await;
        assert_eq!(
            executor.poll(std::slice::from_ref(&id)).await,
            [JobState::Queued]
        );
        assert_eq!(calls(dir.path()).len(), 1);
    }

    #[test]
    fn job_ids_from_sbatch() {
        assert_eq!(parse_job_id("42\n"), Some(ExternalId::new("42")));
        assert_eq!(parse_job_id("42;cluster\n"), Some(ExternalId::new("42")));
        assert_eq!(parse_job_id("Submitted batch job 42"), None);
        assert_eq!(parse_job_id(""), None);
    }
}
