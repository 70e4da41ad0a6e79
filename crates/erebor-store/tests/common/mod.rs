//! Store tests run every scenario on SQLite (a temp file) and on Postgres (a fresh schema per
//! test in the database named by `EREBOR_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`).

#![allow(dead_code)]

pub(crate) mod records;

use erebor_store::Store;

/// The Postgres URL for tests.
pub(crate) fn postgres_url() -> String {
    std::env::var("EREBOR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A store in a fresh SQLite file; keep the tempdir alive while using it.
pub(crate) async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    (Store::open(&url).await.unwrap(), dir)
}

/// The SQLite URL inside `dir`.
pub(crate) fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("erebor.db").display())
}

/// A fresh Postgres schema name.
pub(crate) fn fresh_schema() -> String {
    format!("erebor_test_{}", uuid::Uuid::new_v4().simple())
}

/// A store in a fresh Postgres schema, or `None` (with a message) when
/// `EREBOR_TEST_SKIP_POSTGRES=1`. Without that variable an unreachable Postgres fails the test.
pub(crate) async fn postgres_store() -> Option<(Store, PgSchema)> {
    if std::env::var("EREBOR_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("skipping the Postgres half: EREBOR_TEST_SKIP_POSTGRES=1");
        return None;
    }
    let schema = fresh_schema();
    let store = Store::open_in_schema(&postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("Postgres at {} is needed for this test ({e}); set EREBOR_TEST_SKIP_POSTGRES=1 to skip", postgres_url()));
    Some((store, PgSchema(schema)))
}

/// Drops its schema when the test is done.
pub(crate) struct PgSchema(pub String);

impl PgSchema {
    /// Drops the schema.
    pub(crate) async fn drop_schema(self) {
        use sqlx::postgres::PgPoolOptions;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_url())
            .await
            .unwrap();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// Runs `$scenario(store)` on both backends as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (store, _dir) = $crate::common::sqlite_store().await;
                    super::$scenario(store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some((store, schema)) = $crate::common::postgres_store().await else { return };
                    super::$scenario(store.clone()).await;
                    store.close().await;
                    schema.drop_schema().await;
                }
            }
        )*
    };
}
