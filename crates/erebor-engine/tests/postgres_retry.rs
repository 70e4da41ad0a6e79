//! Store-write retries against a real Postgres (127.0.0.1:5432, or `EREBOR_TEST_POSTGRES`): a
//! store write that loses to a concurrent transaction gets a real serialization failure
//! (SQLSTATE 40001), which the store classifies as transient and [`StoreRetry`] retries to
//! success; a constraint violation is reported at once, never retried.
//!
//! The store runs on a database whose `default_transaction_isolation` is `serializable` (set on
//! its connections, as a site that runs Postgres that way would): there a single UPDATE of a row
//! that a concurrent transaction changed and committed after the UPDATE's snapshot fails with
//! 40001 instead of waiting and applying. The test holds such a transaction open itself.
//!
//! Postgres is required: an unreachable server fails these tests. `EREBOR_TEST_SKIP_POSTGRES=1`
//! skips them, except under CI=true, where nothing is skipped.

use erebor_engine::StoreRetry;
use erebor_store::{NewRun, RunId, RunStatus, SqlxError, Store, StoreError};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn postgres_url() -> String {
    std::env::var("EREBOR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn skip_postgres() -> bool {
    let skip = std::env::var("EREBOR_TEST_SKIP_POSTGRES").as_deref() == Ok("1");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if skip && !ci {
        eprintln!("skipping: EREBOR_TEST_SKIP_POSTGRES=1");
    }
    skip && !ci
}

/// A Postgres store in a fresh schema whose connections run serializable transactions and
/// carry `application_name` (to find them in `pg_stat_activity`).
struct SerializableStore {
    store: Store,
    schema: String,
    application: String,
}

impl SerializableStore {
    async fn open() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let schema = format!("erebor_test_retry_{tag}");
        let application = format!("erebor-retry-{tag}");
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!(
            "{base}{separator}application_name={application}\
             &options=-c%20default_transaction_isolation%3Dserializable"
        );
        let store = Store::open_in_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Postgres at {base} is needed for this test ({e}); \
                 set EREBOR_TEST_SKIP_POSTGRES=1 to skip it outside CI"
                )
            });
        Self {
            store,
            schema,
            application,
        }
    }

    /// A plain connection (default isolation) in the store's schema, for the concurrent side.
    async fn other_connection(&self) -> PgConnection {
        let options = PgConnectOptions::from_str(&postgres_url())
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        PgConnection::connect_with(&options).await.unwrap()
    }

    /// Waits until one of the store's connections is blocked on a lock.
    async fn wait_until_store_waits_on_a_lock(&self, other: &mut PgConnection) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
            )
            .bind(&self.application)
            .fetch_one(&mut *other)
            .await
            .unwrap();
            if waiting > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the store's write never waited on the test's transaction"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn drop_schema(self) {
        self.store.close().await;
        let mut connection = PgConnection::connect(&postgres_url()).await.unwrap();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

fn new_run(id: &RunId) -> NewRun {
    NewRun {
        id: id.clone(),
        workflow_name: "retry".to_owned(),
        workflow_file: "/w/retry.yaml".to_owned(),
        workflow_text: "name: retry\nsteps: []\n".to_owned(),
        workflow_hash: "abc".to_owned(),
        params: serde_json::json!({}),
        options: serde_json::json!({}),
        host: "host-a".to_owned(),
        runner_pid: 4242,
        git_commit: None,
        git_dirty: None,
        erebor_version: "0.1.0".to_owned(),
        run_dir: "/runs/retry".to_owned(),
    }
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Db(SqlxError::Database(db)) => db.code().map(std::borrow::Cow::into_owned),
        _ => None,
    }
}

/// Each failed try of a write: its SQLSTATE and whether the store called it transient.
type Failures = Arc<Mutex<Vec<(Option<String>, bool)>>>;

/// Runs `write` through `retry`, counting the tries and keeping each failure.
async fn counted<T, F, Fut>(
    retry: &StoreRetry,
    write: F,
) -> (Result<T, StoreError>, u32, Vec<(Option<String>, bool)>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let tries = AtomicU32::new(0);
    let failures: Failures = Arc::default();
    let result = retry
        .run("test write", || {
            tries.fetch_add(1, Ordering::SeqCst);
            let failures = Arc::clone(&failures);
            let attempt = write();
            async move {
                let result = attempt.await;
                if let Err(error) = &result {
                    let seen = (sqlstate(error), error.is_transient());
                    failures.lock().unwrap().push(seen);
                }
                result
            }
        })
        .await;
    let failures = failures.lock().unwrap().clone();
    (result, tries.load(Ordering::SeqCst), failures)
}

fn quick_retry() -> StoreRetry {
    StoreRetry {
        tries: 4,
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_serialization_failure_is_retried_to_success() {
    if skip_postgres() {
        return;
    }
    let db = SerializableStore::open().await;
    let run = RunId::from("r-40001");
    db.store.create_run(&new_run(&run), &[]).await.unwrap();

    // The concurrent side changes the run's row and keeps its transaction open.
    let mut other = db.other_connection().await;
    let mut observer = db.other_connection().await;
    let mut concurrent = other.begin().await.unwrap();
    sqlx::query("UPDATE runs SET heartbeat_at = heartbeat_at + 1 WHERE id = $1")
        .bind(run.as_str())
        .execute(&mut *concurrent)
        .await
        .unwrap();

    // The store's write blocks on that row; when the concurrent transaction commits, the
    // write's serializable snapshot is stale and Postgres fails it with 40001.
    let store = db.store.clone();
    let write_run = run.clone();
    let write = tokio::spawn(async move {
        counted(&quick_retry(), || {
            store.set_run_status(&write_run, RunStatus::Failed, Some("step x failed"))
        })
        .await
    });
    db.wait_until_store_waits_on_a_lock(&mut observer).await;
    concurrent.commit().await.unwrap();

    let (result, tries, failures) = write.await.unwrap();
    result.expect("the retried write succeeds");
    assert_eq!(
        failures,
        [(Some("40001".to_owned()), true)],
        "one real serialization failure, classified transient"
    );
    assert_eq!(tries, 2, "retried once, then it succeeded");
    let stored = db.store.get_run(&run).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Failed);
    assert_eq!(stored.error.as_deref(), Some("step x failed"));
    drop(other);
    drop(observer);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constraint_violation_is_not_retried() {
    if skip_postgres() {
        return;
    }
    let db = SerializableStore::open().await;
    let run = RunId::from("r-23505");
    db.store.create_run(&new_run(&run), &[]).await.unwrap();

    // The same run id again violates the primary key: permanent, reported at once.
    let again = new_run(&run);
    let (result, tries, failures) =
        counted(&quick_retry(), || db.store.create_run(&again, &[])).await;
    let error = result.unwrap_err();
    assert!(!error.is_transient(), "{error}");
    assert_eq!(sqlstate(&error).as_deref(), Some("23505"), "{error}");
    assert_eq!(tries, 1, "a constraint violation is not tried again");
    assert_eq!(failures, [(Some("23505".to_owned()), false)]);
    db.drop_schema().await;
}
