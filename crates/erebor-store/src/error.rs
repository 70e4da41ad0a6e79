//! Store errors.

/// What can go wrong with the run store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://...` nor `postgres://...`.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    /// The database was written by a newer erebor.
    #[error(
        "the database {url} has schema version {found}, newer than the {known} this erebor knows; \
         upgrade erebor (or use another --db) instead of letting an older binary write to it"
    )]
    SchemaTooNew {
        /// The URL (password masked).
        url: String,
        /// The database's version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A write from an attempt that is no longer the running one.
    #[error(
        "attempt {attempt} of step {step} is no longer running (status {status}); its write was refused"
    )]
    StaleAttempt {
        /// The attempt id.
        attempt: String,
        /// The step id.
        step: String,
        /// The attempt's current status.
        status: String,
    },
    /// A run id or prefix that matches no run (or several).
    #[error("{0}")]
    NotFound(String),
    /// A stored JSON column could not be read.
    #[error("bad JSON in {table}.{column}: {source}")]
    Json {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A migration failed (its message is included, not chained, so it shows once).
    #[error("migrating the database schema: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// Any database error (included in the message, not chained).
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// Creating the database folder failed.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The folder.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Db(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Parses a JSON text column, naming it in the error.
pub(crate) fn json_column(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|source| StoreError::Json {
        table,
        column,
        source,
    })
}
