//! Store writes that are never dropped: a transient error (SQLite busy or locked, a Postgres
//! serialization failure, a lost connection) is retried with exponential backoff; any other
//! error is returned, and the caller fails the run (which stays resumable).

use erebor_store::StoreError;
use std::future::Future;
use std::time::Duration;

/// How transient store errors are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRetry {
    /// Tries in all (the first included) before a transient error is given up on.
    pub tries: u32,
    /// Wait after the first failed try; doubled after each further one.
    pub first_delay: Duration,
    /// The longest wait between two tries.
    pub max_delay: Duration,
}

impl Default for StoreRetry {
    /// Eight tries over about 12 s: enough for a Postgres failover or a long SQLite checkpoint
    /// by another process, short enough that a dead database fails the run soon.
    fn default() -> Self {
        Self {
            tries: 8,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl StoreRetry {
    /// The wait after failed try number `failed` (1-based).
    pub(crate) fn delay_after(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1).min(20));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `operation` until it succeeds, fails with a non-transient error, or has failed
    /// transiently `tries` times. `what` names the write in logs ("recording the end of
    /// attempt 2 of train").
    pub async fn run<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut failed = 0;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_transient() && failed + 1 < self.tries.max(1) => {
                    failed += 1;
                    let delay = self.delay_after(failed);
                    tracing::warn!(
                        try_number = failed,
                        ?delay,
                        "{what}: transient store error, trying again: {error}"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn busy() -> StoreError {
        StoreError::Db(sqlx_io(std::io::ErrorKind::ConnectionReset))
    }

    fn sqlx_io(kind: std::io::ErrorKind) -> erebor_store::SqlxError {
        erebor_store::SqlxError::Io(std::io::Error::from(kind))
    }

    fn quick(tries: u32) -> StoreRetry {
        StoreRetry {
            tries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = StoreRetry {
            tries: 10,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(300),
        };
        let delays: Vec<Duration> = (1..=5).map(|n| policy.delay_after(n)).collect();
        assert_eq!(delays, [50, 100, 200, 300, 300].map(Duration::from_millis));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result = quick(5)
            .run("test write", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(busy()),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn transient_errors_give_up_after_the_last_try() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(3)
            .run("test write", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(busy())
            })
            .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(5)
            .run("test write", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::NotFound("gone".into()))
            })
            .await;
        assert!(matches!(result, Err(StoreError::NotFound(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
