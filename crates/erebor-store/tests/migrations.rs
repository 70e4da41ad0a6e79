//! Schema upgrades from an older schema with data in it, and refusal of a newer schema, on
//! SQLite and Postgres.

mod common;

use erebor_store::*;
use serde_json::json;

/// Builds a schema-1 database with a run, a step, an attempt and metrics written by the
/// schema-1 statements, then opens it with this binary (which migrates to the newest schema).
async fn upgrade_keeps_data(old: Store, reopen: impl AsyncFnOnce() -> Store) {
    old.migrate_to(1).await.unwrap();
    assert_eq!(old.schema_version().await.unwrap(), 1);
    let insert = [
        "INSERT INTO runs (id, workflow_name, workflow_file, workflow_text, workflow_hash, params, options, status, \
         created_at, host, runner_pid, heartbeat_at, erebor_version, run_dir) VALUES ('r-old', 'quickstart', \
         '/w/q.yaml', 'name: q', 'h', '{\"beta\":0.3}', '{}', 'succeeded', 1000, 'h1', 1, 1000, '0.0.9', '/runs/r-old')",
        "INSERT INTO steps (run_id, step_id, base_id, arm, kind, position, needs, config, status, fingerprint, outputs) \
         VALUES ('r-old', 'train', 'train', '{}', 'command', 0, '[]', '{}', 'succeeded', 'fp-old', '{\"values\":{}}')",
        "INSERT INTO attempts (id, run_id, step_id, number, status, executor, host, dir, gpus, started_at) \
         VALUES ('att-old', 'r-old', 'train', 1, 'succeeded', 'local', 'h1', '/d', '[]', 1000)",
        "INSERT INTO metrics (run_id, step_id, attempt_id, key, idx, value, recorded_at) \
         VALUES ('r-old', 'train', 'att-old', 'train/loss', 0, 2.5, 1000)",
    ];
    for sql in insert {
        raw(&old, sql).await;
    }
    old.close().await;

    let store = reopen().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let run = store.find_run("r-old").await.unwrap();
    assert_eq!(run.params, json!({"beta": 0.3}));
    assert_eq!(run.status, RunStatus::Succeeded);
    let step = store
        .get_step(&RunId::from("r-old"), &StepId::from("train"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(step.fingerprint.as_deref(), Some("fp-old"));
    assert!(
        step.expect_failures.is_empty(),
        "the new column reads as empty for old rows"
    );
    let metrics = store
        .metrics(&RunId::from("r-old"), &MetricFilter::default())
        .await
        .unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(
        metrics[0].value.to_bits(),
        2.5_f64.to_bits(),
        "read back exactly"
    );
    assert_eq!(
        store.find_cached("fp-old").await.unwrap()[0]
            .run_id
            .as_str(),
        "r-old"
    );
    // Schema-2 features work on the upgraded database.
    store
        .set_expect_failures(
            &RunId::from("r-old"),
            &StepId::from("train"),
            &["acc >= 0.5 (got 0.4)".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_step(&RunId::from("r-old"), &StepId::from("train"))
            .await
            .unwrap()
            .unwrap()
            .expect_failures
            .len(),
        1
    );
    assert!(store.schedules().await.unwrap().is_empty());
    store.close().await;
}

async fn raw(store: &Store, sql: &'static str) {
    // The store keeps its pools private; a second connection to the same database runs raw SQL.
    let _ = store;
    RAW.with(|url| url.borrow().clone()).run(sql).await;
}

thread_local! {
    static RAW: std::cell::RefCell<RawDb> = const { std::cell::RefCell::new(RawDb::None) };
}

#[derive(Clone)]
enum RawDb {
    None,
    Sqlite(String),
    Postgres(String),
}

impl RawDb {
    async fn run(&self, sql: &'static str) {
        match self {
            RawDb::None => panic!("no raw database set"),
            RawDb::Sqlite(url) => {
                let pool = sqlx::SqlitePool::connect(url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            RawDb::Postgres(schema) => {
                use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
                use std::str::FromStr;
                let options = PgConnectOptions::from_str(&common::postgres_url())
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_upgrade_from_schema_1_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::sqlite_url(&dir);
    RAW.with(|r| *r.borrow_mut() = RawDb::Sqlite(url.clone()));
    let old = Store::connect(&url, None).await.unwrap();
    upgrade_keeps_data(old, async || Store::open(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_upgrade_from_schema_1_keeps_data() {
    let Some(schema) = skip_or_schema() else {
        return;
    };
    RAW.with(|r| *r.borrow_mut() = RawDb::Postgres(schema.0.clone()));
    let old = Store::connect(&common::postgres_url(), Some(&schema.0))
        .await
        .unwrap();
    let name = schema.0.clone();
    upgrade_keeps_data(old, async || {
        Store::open_in_schema(&common::postgres_url(), &name)
            .await
            .unwrap()
    })
    .await;
    schema.drop_schema().await;
}

fn skip_or_schema() -> Option<common::PgSchema> {
    if std::env::var("EREBOR_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("skipping the Postgres half: EREBOR_TEST_SKIP_POSTGRES=1");
        return None;
    }
    Some(common::PgSchema(common::fresh_schema()))
}

/// A database marked with a schema version newer than this binary's is refused, untouched.
async fn newer_schema_is_refused(store: Store, reopen: impl AsyncFnOnce() -> Result<Store>) {
    raw(
        &store,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99, 'from the future', TRUE, '', 0)",
    )
    .await;
    store.close().await;
    let error = reopen().await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            StoreError::SchemaTooNew {
                found: 99,
                known: SCHEMA_VERSION,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "schema version 99, newer than the {SCHEMA_VERSION} this erebor knows"
        )),
        "{message}"
    );
    assert!(message.contains("upgrade erebor"), "{message}");
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::sqlite_url(&dir);
    RAW.with(|r| *r.borrow_mut() = RawDb::Sqlite(url.clone()));
    let store = Store::open(&url).await.unwrap();
    newer_schema_is_refused(store, async || Store::open(&url).await).await;
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_refuses_a_newer_schema() {
    let Some(schema) = skip_or_schema() else {
        return;
    };
    RAW.with(|r| *r.borrow_mut() = RawDb::Postgres(schema.0.clone()));
    let store = Store::open_in_schema(&common::postgres_url(), &schema.0)
        .await
        .unwrap();
    let name = schema.0.clone();
    newer_schema_is_refused(store, async || {
        Store::open_in_schema(&common::postgres_url(), &name).await
    })
    .await;
    schema.drop_schema().await;
}
