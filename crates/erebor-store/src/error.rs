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
    /// A stored run, step or attempt id that is not a well-formed id (empty, padded with
    /// whitespace, or holding control characters).
    #[error("malformed id {value:?} in {table}.{column}: {reason}")]
    BadId {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The stored text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A migration failed (its message is included, not chained, so it shows once).
    #[error("migrating the database schema: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// Any database error (included in the message, not chained).
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// A metric index too large for the store's signed 64-bit `idx` column.
    #[error(
        "metric {key:?} has index {index}, above the largest the store keeps ({})",
        i64::MAX
    )]
    MetricIndex {
        /// The metric's key.
        key: String,
        /// The index given.
        index: u64,
    },
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

/// Parses an id column (`RunId`, `StepId`, `AttemptId`) once, where a row is decoded; a
/// malformed id is [`StoreError::BadId`] naming the table and column.
pub(crate) fn id_column<T: From<String>>(
    table: &'static str,
    column: &'static str,
    text: String,
) -> Result<T> {
    match id_problem(&text) {
        None => Ok(T::from(text)),
        Some(reason) => Err(StoreError::BadId {
            table,
            column,
            value: text,
            reason,
        }),
    }
}

/// [`id_column`] for a nullable column.
pub(crate) fn optional_id_column<T: From<String>>(
    table: &'static str,
    column: &'static str,
    text: Option<String>,
) -> Result<Option<T>> {
    text.map(|text| id_column(table, column, text)).transpose()
}

/// What makes `text` unusable as an id: ids are never empty, never start or end with
/// whitespace, and hold no control characters (they are printed, and used in folder names).
fn id_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("it is empty")
    } else if text.trim() != text {
        Some("it starts or ends with whitespace")
    } else if text.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    }
}

impl StoreError {
    /// Whether the same write may succeed when tried again: SQLite busy or locked, a Postgres
    /// serialization failure (40001) or deadlock (40P01), a connection that was lost or could
    /// not be had in time. Everything else (constraint violations, bad data, a stale attempt)
    /// fails the same way on every try.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(error) => is_transient_sqlx(error),
            _ => false,
        }
    }
}

fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::ConnectionRefused
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::TimedOut
                | ErrorKind::Interrupted
        ),
        sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            db.code().is_some_and(|code| {
                if sqlite {
                    is_transient_sqlite_code(&code)
                } else {
                    is_transient_sqlstate(&code)
                }
            })
        }
        _ => false,
    }
}

/// SQLite result codes worth retrying: busy and locked (extended codes carry the primary one
/// in their low byte).
fn is_transient_sqlite_code(code: &str) -> bool {
    const SQLITE_BUSY: i64 = 5;
    const SQLITE_LOCKED: i64 = 6;
    code.parse::<i64>()
        .is_ok_and(|number| matches!(number & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// Postgres SQLSTATEs worth retrying: 40001 `serialization_failure`, 40P01 `deadlock_detected`,
/// class 08 connection exceptions, 57P01..57P03 the server shutting down or starting.
fn is_transient_sqlstate(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(is_transient_sqlite_code("5"));
        assert!(is_transient_sqlite_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(is_transient_sqlite_code("262")); // SQLITE_LOCKED_SHAREDCACHE
        assert!(!is_transient_sqlite_code("19")); // SQLITE_CONSTRAINT
        assert!(!is_transient_sqlite_code("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(is_transient_sqlstate("40001"));
        assert!(is_transient_sqlstate("40P01"));
        assert!(is_transient_sqlstate("08006"));
        assert!(!is_transient_sqlstate("23505")); // unique_violation
        assert!(!is_transient_sqlstate("42P01")); // undefined_table
        let lost = StoreError::Db(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(lost.is_transient());
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::Db(sqlx::Error::Protocol("bad".into())).is_transient());
        assert!(!StoreError::NotFound("x".into()).is_transient());
    }

    #[test]
    fn malformed_ids_name_their_table_and_column() {
        let id: erebor_core::StepId = id_column("steps", "step_id", "train[dpop]".into()).unwrap();
        assert_eq!(id.as_str(), "train[dpop]");
        for (text, reason) in [
            ("", "it is empty"),
            (" r-1", "it starts or ends with whitespace"),
            ("r-1\n", "it starts or ends with whitespace"),
            ("r-\u{7}1", "it holds a control character"),
        ] {
            let error = id_column::<erebor_core::RunId>("runs", "id", text.into()).unwrap_err();
            assert!(
                matches!(&error, StoreError::BadId { table: "runs", column: "id", reason: r, .. } if *r == reason),
                "{text:?}: {error:?}"
            );
            assert!(error.to_string().contains("in runs.id"), "{error}");
            assert!(!error.is_transient());
        }
        let none: Option<erebor_core::RunId> =
            optional_id_column("steps", "cached_from_run", None).unwrap();
        assert_eq!(none, None);
    }
}
