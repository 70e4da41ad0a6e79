//! Opening a store: SQLite (WAL, `synchronous=NORMAL`, busy timeout) or Postgres, and applying
//! the embedded migrations.

use crate::error::{Result, StoreError};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::str::FromStr;
use std::time::Duration;

/// The connection pool of one backend.
#[derive(Clone, Debug)]
pub enum Backend {
    /// SQLite.
    Sqlite(SqlitePool),
    /// Postgres.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's concrete pool; the same SQL (with `$N`
/// placeholders) works on both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::db::Backend::Sqlite($pool) => $body,
            $crate::db::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The run store.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    url: String,
    gate: Option<Gate>,
}

/// Decides, before each write, whether it goes ahead. The store calls it with the name of the
/// write (`finish_attempt`, `record_metrics`, ...); an error is returned instead of writing. It
/// is the seam that tests use to make a store fail its k-th write, transiently or for good.
pub trait WriteGate: Send + Sync {
    /// Called before the write named `operation`.
    fn before_write(&self, operation: &'static str) -> Result<()>;
}

#[derive(Clone)]
struct Gate(std::sync::Arc<dyn WriteGate>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGate")
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs steps attempts metrics",
        include_str!("../../../migrations/sqlite/0001_runs_steps_attempts_metrics.sql"),
    ),
    (
        2,
        "lineage schedules expectations",
        include_str!("../../../migrations/sqlite/0002_lineage_schedules_expectations.sql"),
    ),
    (
        3,
        "attempt states reuse links",
        include_str!("../../../migrations/sqlite/0003_attempt_states_reuse_links.sql"),
    ),
    (
        4,
        "judgments",
        include_str!("../../../migrations/sqlite/0004_judgments.sql"),
    ),
    (
        5,
        "schedule ticks",
        include_str!("../../../migrations/sqlite/0005_schedule_ticks.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs steps attempts metrics",
        include_str!("../../../migrations/postgres/0001_runs_steps_attempts_metrics.sql"),
    ),
    (
        2,
        "lineage schedules expectations",
        include_str!("../../../migrations/postgres/0002_lineage_schedules_expectations.sql"),
    ),
    (
        3,
        "attempt states reuse links",
        include_str!("../../../migrations/postgres/0003_attempt_states_reuse_links.sql"),
    ),
    (
        4,
        "judgments",
        include_str!("../../../migrations/postgres/0004_judgments.sql"),
    ),
    (
        5,
        "schedule ticks",
        include_str!("../../../migrations/postgres/0005_schedule_ticks.sql"),
    ),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 5;

/// Masks the password in a database URL for messages (erebor-core's redactor).
pub use erebor_core::secrets::redact_url;

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let store = Self::connect(url, None).await?;
        store.migrate_to(SCHEMA_VERSION).await?;
        Ok(store)
    }

    /// Opens a Postgres store inside `schema` (created if missing), for isolated tests and for
    /// sharing one database between teams.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        let store = Self::connect(url, Some(schema)).await?;
        store.migrate_to(SCHEMA_VERSION).await?;
        Ok(store)
    }

    /// Connects without migrating (tests build old schemas with it).
    pub async fn connect(url: &str, pg_schema: Option<&str>) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let path = options.get_filename().to_owned();
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            // One connection per process: SQLite takes one writer at a time, and extra
            // connections only wait in its busy handler (which sleeps); measured 3x slower for
            // the 1,000-step benchmark (BENCHMARKS.md). Other processes still read in parallel.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = PgConnectOptions::from_str(url)?;
            if let Some(schema) = pg_schema {
                let admin = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(options.clone())
                    .await?;
                let create = format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                    schema.replace('"', "")
                );
                sqlx::query(AssertSqlSafe(create)).execute(&admin).await?;
                admin.close().await;
                options = options.options([("search_path", schema)]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(redact_url(url)));
        };
        Ok(Self {
            backend,
            url: url.to_owned(),
            gate: None,
        })
    }

    /// The same store (same pool) with every write passed through `gate` first.
    #[must_use]
    pub fn with_write_gate(&self, gate: std::sync::Arc<dyn WriteGate>) -> Self {
        Self {
            gate: Some(Gate(gate)),
            ..self.clone()
        }
    }

    /// Asks the write gate, if any, whether `operation` may write.
    pub(crate) fn gate(&self, operation: &'static str) -> Result<()> {
        match &self.gate {
            Some(gate) => gate.0.before_write(operation),
            None => Ok(()),
        }
    }

    /// The URL with any password masked.
    pub fn url(&self) -> String {
        redact_url(&self.url)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The schema version recorded in the database (0 for an empty one).
    pub async fn schema_version(&self) -> Result<i64> {
        let exists: bool = with_pool!(self, |pool| {
            let sql = match self.backend {
                Backend::Sqlite(_) => {
                    "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
                }
                Backend::Postgres(_) => "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
            };
            sqlx::query_scalar(sql).fetch_one(pool).await?
        });
        if !exists {
            return Ok(0);
        }
        let version: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// Applies migrations up to `version`; refuses a database newer than this binary.
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        let found = self.schema_version().await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                url: self.url(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let list = match self.backend {
            Backend::Sqlite(_) => SQLITE_MIGRATIONS,
            Backend::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        let migrations = list
            .iter()
            .map(|(v, description, sql)| {
                Migration::new(
                    *v,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        with_pool!(self, |pool| migrator.run_to(version, pool).await?);
        if found < version {
            tracing::info!(from = found, to = version, store = %self.url(), "database schema upgraded");
        }
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
