//! Cooperative cancellation for long-running step code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag a step polls between units of work (a training step, a batch of rows).
///
/// The step process sets it when it receives SIGTERM or SIGINT; a step that sees it set writes
/// its checkpoint if it has one and returns [`crate::StepFailure::cancelled`].
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation; every clone sees it.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The shared flag, for signal handlers that set it directly.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
