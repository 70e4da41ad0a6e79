//! Why a step failed, and whether trying again can help.
//!
//! A step process reports its failure class through its exit code ([`FailureClass::exit_code`])
//! and, in more detail, in its result file. The runner retries with backoff only the classes for
//! which [`FailureClass::is_retryable`] holds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a step failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The step's input is wrong (config, dataset row, checkpoint); a retry fails the same way.
    BadInput,
    /// The process ran out of host or device memory.
    OutOfMemory,
    /// The step was stopped on request (Ctrl-C, SIGTERM, cancel).
    Cancelled,
    /// A passing fault: network error, HTTP 429/5xx, a busy resource.
    Transient,
    /// A deterministic failure of the computation itself (e.g. a NaN loss); a retry repeats it.
    Fatal,
    /// Anything else: a panic, a crash by signal, an unclassified error.
    Unknown,
}

impl FailureClass {
    /// Whether the runner retries this class with backoff (when the step allows retries).
    pub fn is_retryable(self) -> bool {
        matches!(self, FailureClass::Transient | FailureClass::Unknown)
    }

    /// The exit code a step process uses for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Unknown => 1,
            FailureClass::BadInput => 10,
            FailureClass::OutOfMemory => 11,
            FailureClass::Cancelled => 12,
            FailureClass::Transient => 13,
            FailureClass::Fatal => 14,
        }
    }

    /// The class a step process's exit code stands for; `None` for success (0).
    pub fn from_exit_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => return None,
            10 => FailureClass::BadInput,
            11 => FailureClass::OutOfMemory,
            12 => FailureClass::Cancelled,
            13 => FailureClass::Transient,
            14 => FailureClass::Fatal,
            _ => FailureClass::Unknown,
        })
    }

    /// Stable lower-case name, as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::BadInput => "bad_input",
            FailureClass::OutOfMemory => "out_of_memory",
            FailureClass::Cancelled => "cancelled",
            FailureClass::Transient => "transient",
            FailureClass::Fatal => "fatal",
            FailureClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's failure: its class and a message that names the place (file, row, tensor, field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{class}: {message}")]
pub struct StepFailure {
    /// Whether a retry can help.
    pub class: FailureClass,
    /// What went wrong and what to do.
    pub message: String,
}

impl StepFailure {
    /// A failure of the given class.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    /// The input is wrong.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(FailureClass::BadInput, message)
    }

    /// A passing fault worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Transient, message)
    }

    /// Out of memory.
    pub fn out_of_memory(message: impl Into<String>) -> Self {
        Self::new(FailureClass::OutOfMemory, message)
    }

    /// Stopped on request.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Cancelled, message)
    }

    /// A deterministic failure that a retry would repeat.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Fatal, message)
    }

    /// An unclassified failure.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Unknown, message)
    }
}

impl From<crate::ConfigError> for StepFailure {
    fn from(error: crate::ConfigError) -> Self {
        StepFailure::bad_input(format!("with.{error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip() {
        for class in [
            FailureClass::BadInput,
            FailureClass::OutOfMemory,
            FailureClass::Cancelled,
            FailureClass::Transient,
            FailureClass::Fatal,
            FailureClass::Unknown,
        ] {
            assert_eq!(FailureClass::from_exit_code(class.exit_code()), Some(class));
        }
        assert_eq!(FailureClass::from_exit_code(0), None);
        assert_eq!(
            FailureClass::from_exit_code(137),
            Some(FailureClass::Unknown)
        );
    }

    #[test]
    fn only_transient_and_unknown_failures_are_retried() {
        assert!(FailureClass::Transient.is_retryable());
        assert!(FailureClass::Unknown.is_retryable());
        assert!(!FailureClass::BadInput.is_retryable());
        assert!(!FailureClass::OutOfMemory.is_retryable());
        assert!(!FailureClass::Cancelled.is_retryable());
        assert!(!FailureClass::Fatal.is_retryable());
    }
}
