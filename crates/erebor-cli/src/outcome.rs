//! How a command ended, and the process exit code that says so.

use std::process::ExitCode;

/// The result of a command that did not fail outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything worked (exit 0).
    Success,
    /// A run finished with a failed step, or was cancelled (exit 1).
    RunFailed,
    /// The input was wrong: a workflow file, a flag, a run id (exit 2).
    BadInput,
    /// The run finished but an `expect:` check regressed (exit 3).
    ExpectationFailed,
    /// A step process ends with its failure class's own code (see `FailureClass::exit_code`).
    StepExit(i32),
}

impl Outcome {
    /// The process exit code.
    pub(crate) fn exit_code(self) -> ExitCode {
        let code = match self {
            Outcome::Success => 0,
            Outcome::RunFailed => 1,
            Outcome::BadInput => 2,
            Outcome::ExpectationFailed => 3,
            Outcome::StepExit(code) => code,
        };
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    }
}

/// An error caused by the user's input; the binary exits with 2 instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadInput(pub(crate) String);

/// The exit outcome of a command that returned an error: 2 when the error (or its cause) is
/// bad input, 1 otherwise.
pub(crate) fn outcome_of_error(error: &anyhow::Error) -> Outcome {
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<erebor_workflow::WorkflowErrors>()
            || cause.is::<clap::Error>()
    });
    if bad_input {
        Outcome::BadInput
    } else {
        Outcome::RunFailed
    }
}
