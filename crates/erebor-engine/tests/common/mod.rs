//! The harness of the engine tests: step kinds that need no process (noop, flaky, blocking),
//! workflows from YAML text, an engine on a fresh SQLite store with the in-process executor,
//! store wrappers that fail their k-th write, and executors that lose or outlive attempts.

#![allow(dead_code)]

use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs,
};
use erebor_engine::executor::{BoxFuture, Executor, ExternalId, JobState, Launch};
use erebor_engine::{
    Engine, EngineOptions, InProcessExecutor, Limits, RunControl, RunSummary, StoreRetry,
    Subscribers,
};
use erebor_store::{RunId, RunRecord, SqlxError, Store, StoreError, WriteGate};
use erebor_workflow::{KindRegistry, LoadOptions, Workflow};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static NOOP: StepKindInfo = StepKindInfo {
    name: "noop",
    code_version: 1,
    summary: "logs `points` metric points of `loss` (value 10·index + `value`), outputs `score`",
    outputs: &[OutputDecl {
        name: "score",
        ty: OutputType::Metric,
        doc: "`value`",
    }],
};

/// The `refuse_key`s whose noop steps the hardware "cannot run" ([`StepKind::plan_refusal`]):
/// outside the `with:` block, so changing it leaves fingerprints (and cache hits) as they are,
/// as a smaller machine does.
pub(crate) static REFUSING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Logs `points` points of `loss` and returns `score` = `value`; sleeps `sleep_ms` first.
/// Refused at plan time while its `refuse_key` is in [`REFUSING`].
pub(crate) struct Noop;

impl StepKind for Noop {
    fn info(&self) -> &'static StepKindInfo {
        &NOOP
    }
    fn validate(&self, _with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        Ok(())
    }
    fn plan_refusal(&self, with: &serde_json::Value, _base_dir: &Path) -> Option<String> {
        let key = with.get("refuse_key")?.as_str()?;
        REFUSING
            .lock()
            .unwrap()
            .contains(key)
            .then(|| format!("needs 1000.0 GB of memory, sees 1.0 GB ({key})"))
    }
    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let count = |key: &str| ctx.with.get(key).and_then(serde_json::Value::as_u64);
        if let Some(ms) = count("sleep_ms") {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let value = ctx
            .with
            .get("value")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        for index in 0..count("points").unwrap_or(3) {
            ctx.metrics
                .record("loss", index, 10.0 * index as f64 + value);
        }
        Ok(StepOutputs::new().with_metric("score", value))
    }
}

static FLAKY: StepKindInfo = StepKindInfo {
    name: "flaky",
    code_version: 1,
    summary: "fails transiently `fail_times` times (counted in its work folder), then succeeds",
    outputs: &[],
};

/// Fails with a transient error until it has failed `fail_times` times in this run.
pub(crate) struct Flaky;

impl StepKind for Flaky {
    fn info(&self) -> &'static StepKindInfo {
        &FLAKY
    }
    fn validate(&self, _with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        Ok(())
    }
    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let fail_times = ctx.with["fail_times"].as_u64().unwrap_or(0);
        std::fs::create_dir_all(&ctx.work_dir).map_err(|e| StepFailure::fatal(e.to_string()))?;
        let counter = ctx.work_dir.join("failures");
        let failed: u64 = std::fs::read_to_string(&counter)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if failed < fail_times {
            std::fs::write(&counter, (failed + 1).to_string())
                .map_err(|e| StepFailure::fatal(e.to_string()))?;
            return Err(StepFailure::transient(format!("failure {}", failed + 1)));
        }
        Ok(StepOutputs::new())
    }
}

static BLOCK: StepKindInfo = StepKindInfo {
    name: "block",
    code_version: 1,
    summary: "waits until the file `release` exists (then succeeds) or it is cancelled",
    outputs: &[],
};

/// Writes `started` in its work folder, then waits until the file named by `release` exists
/// (succeeds) or its cancel token fires (fails as cancelled).
pub(crate) struct Block;

impl StepKind for Block {
    fn info(&self) -> &'static StepKindInfo {
        &BLOCK
    }
    fn validate(&self, _with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        Ok(())
    }
    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        std::fs::create_dir_all(&ctx.work_dir).map_err(|e| StepFailure::fatal(e.to_string()))?;
        let _ = std::fs::write(ctx.work_dir.join("started"), ctx.attempt_id.as_str());
        let release = PathBuf::from(ctx.with["release"].as_str().unwrap_or("release"));
        loop {
            if release.exists() {
                return Ok(StepOutputs::new());
            }
            if ctx.cancel.is_cancelled() {
                return Err(StepFailure::cancelled("cancelled while blocked"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The kinds of these tests.
pub(crate) fn registry() -> KindRegistry {
    KindRegistry::new().with(Noop).with(Flaky).with(Block)
}

/// A test folder with its store.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) registry: KindRegistry,
    /// Runs and resumes never reuse cached results (`--no-cache`).
    pub(crate) no_cache: bool,
}

impl Harness {
    /// A fresh SQLite store in a temporary folder.
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("runs.db").display());
        let store = Store::open(&url).await.unwrap();
        Self {
            dir,
            store,
            registry: registry(),
            no_cache: false,
        }
    }

    /// Loads a workflow from YAML text (written to the test folder).
    pub(crate) fn workflow(&self, text: &str) -> Workflow {
        let file = self.dir.path().join("workflow.yaml");
        std::fs::write(&file, text).unwrap();
        let options = LoadOptions::default();
        erebor_workflow::load_str(&file, text, self.dir.path(), &self.registry, &options)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Engine options: in-process executor, quick ticks and retries.
    pub(crate) fn options(
        &self,
        executor: Arc<dyn Executor>,
        jobs: usize,
        gpus: Vec<u32>,
    ) -> EngineOptions {
        EngineOptions {
            home: self.dir.path().join(".erebor"),
            limits: Limits {
                jobs,
                gpus,
                force: Vec::new(),
                no_cache: self.no_cache,
            },
            executor,
            other_executors: Vec::new(),
            db_url: "sqlite://unused".into(),
            stop_grace: Duration::from_secs(2),
            tick: Duration::from_millis(20),
            store_retry: StoreRetry {
                tries: 4,
                first_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(10),
            },
        }
    }

    pub(crate) fn in_process(&self) -> Arc<dyn Executor> {
        Arc::new(InProcessExecutor::new(self.registry.clone()))
    }

    /// An engine over `store` (the harness's, or a wrapped one).
    pub(crate) fn engine(
        &self,
        store: Store,
        options: EngineOptions,
        control: RunControl,
    ) -> Engine {
        Engine::new(
            store,
            self.registry.clone(),
            options,
            Subscribers::new(),
            control,
        )
    }

    /// Runs a workflow to its end with the in-process executor.
    pub(crate) async fn run(&self, workflow: &Workflow) -> RunSummary {
        let options = self.options(self.in_process(), 4, Vec::new());
        self.engine(self.store.clone(), options, RunControl::new())
            .run(workflow)
            .await
            .unwrap()
    }

    /// Resumes a run with the in-process executor and a healthy store.
    pub(crate) async fn resume(&self, run: &RunId) -> RunSummary {
        let record = self.store.get_run(run).await.unwrap().unwrap();
        let workflow = self.workflow(&record.workflow_text);
        let options = self.options(self.in_process(), 4, Vec::new());
        self.engine(self.store.clone(), options, RunControl::new())
            .resume(&record, &workflow)
            .await
            .unwrap()
    }

    pub(crate) async fn run_record(&self, run: &RunId) -> RunRecord {
        self.store.get_run(run).await.unwrap().unwrap()
    }

    pub(crate) fn release_file(&self) -> PathBuf {
        self.dir.path().join("release")
    }
}

/// Fails the k-th write (1-based) through the store, transiently (`times` times in a row) or
/// for good (every write from the k-th on).
pub(crate) struct FailKthWrite {
    pub(crate) k: u32,
    pub(crate) transient_times: Option<u32>,
    pub(crate) writes: AtomicU32,
    pub(crate) failed: Mutex<Vec<&'static str>>,
}

impl FailKthWrite {
    pub(crate) fn permanent(k: u32) -> Arc<Self> {
        Arc::new(Self {
            k,
            transient_times: None,
            writes: AtomicU32::new(0),
            failed: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn transient(k: u32, times: u32) -> Arc<Self> {
        Arc::new(Self {
            k,
            transient_times: Some(times),
            writes: AtomicU32::new(0),
            failed: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn write_count(&self) -> u32 {
        self.writes.load(Ordering::SeqCst)
    }
}

impl WriteGate for FailKthWrite {
    fn before_write(&self, operation: &'static str) -> erebor_store::Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = match self.transient_times {
            Some(times) => n >= self.k && n < self.k + times,
            None => n >= self.k,
        };
        if !fail {
            return Ok(());
        }
        self.failed.lock().unwrap().push(operation);
        Err(match self.transient_times {
            // A lost connection: retried with backoff.
            Some(_) => StoreError::Db(SqlxError::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            // A protocol error: fails the run.
            None => StoreError::Db(SqlxError::Protocol(format!(
                "injected failure of write {n} ({operation})"
            ))),
        })
    }
}

/// An executor around the in-process one that reports its first `lose` submissions lost.
pub(crate) struct Losing {
    pub(crate) inner: InProcessExecutor,
    pub(crate) lose: u32,
    pub(crate) lost: Mutex<BTreeSet<ExternalId>>,
    pub(crate) submitted: AtomicU32,
}

impl Executor for Losing {
    fn name(&self) -> &'static str {
        "losing"
    }
    fn submit(&self, launch: Launch) -> BoxFuture<'_, std::io::Result<ExternalId>> {
        Box::pin(async move {
            let id = self.inner.submit(launch).await?;
            if self.submitted.fetch_add(1, Ordering::SeqCst) < self.lose {
                self.lost.lock().unwrap().insert(id.clone());
            }
            Ok(id)
        })
    }
    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>> {
        Box::pin(async move {
            let mut states = self.inner.poll(ids).await;
            let lost = self.lost.lock().unwrap();
            for (id, state) in ids.iter().zip(states.iter_mut()) {
                if lost.contains(id) {
                    *state = JobState::Lost("the test executor dropped it".into());
                }
            }
            states
        })
    }
    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState> {
        self.inner.reattach(id)
    }
    fn cancel<'a>(
        &'a self,
        id: &'a ExternalId,
        grace: Duration,
    ) -> BoxFuture<'a, std::io::Result<()>> {
        self.inner.cancel(id, grace)
    }
    fn changed(&self) -> BoxFuture<'_, ()> {
        self.inner.changed()
    }
    fn forget(&self, id: &ExternalId) {
        self.inner.forget(id);
    }
    fn outlives_runner(&self) -> bool {
        false
    }
}

/// An executor around the in-process one whose attempts outlive their runner, as a cluster's
/// jobs do: shared by two engines, it lets the second re-attach to the first one's attempt.
pub(crate) struct Cluster(pub InProcessExecutor);

impl Executor for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }
    fn submit(&self, launch: Launch) -> BoxFuture<'_, std::io::Result<ExternalId>> {
        self.0.submit(launch)
    }
    fn poll<'a>(&'a self, ids: &'a [ExternalId]) -> BoxFuture<'a, Vec<JobState>> {
        self.0.poll(ids)
    }
    fn reattach<'a>(&'a self, id: &'a ExternalId) -> BoxFuture<'a, JobState> {
        self.0.reattach(id)
    }
    fn cancel<'a>(
        &'a self,
        id: &'a ExternalId,
        grace: Duration,
    ) -> BoxFuture<'a, std::io::Result<()>> {
        self.0.cancel(id, grace)
    }
    fn changed(&self) -> BoxFuture<'_, ()> {
        self.0.changed()
    }
    fn forget(&self, id: &ExternalId) {
        self.0.forget(id);
    }
    fn outlives_runner(&self) -> bool {
        true
    }
}

/// Waits (up to 20 s) until `check` holds.
pub(crate) async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
