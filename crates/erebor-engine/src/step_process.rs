//! The step-process side of the protocol: read the request, run the kind, write the result.
//!
//! The CLI's hidden `erebor step-exec --request FILE` calls [`run_step_process`]; the in-process
//! executor calls the same function on a thread.

use crate::process::{self, Signal};
use crate::protocol::{self, StepRequest, StepResult};
use erebor_core::events::EventWriter;
use erebor_core::secrets::{self, redact};
use erebor_core::{CancelToken, FailureClass, StepContext, StepFailure};
use erebor_workflow::KindRegistry;
use std::path::Path;

/// Masks secrets in what the step reports (a failure message, a text output) before it is
/// written to the result file and from there to the store.
fn redact_result(result: StepResult) -> StepResult {
    match result {
        StepResult::Failed { mut failure } => {
            failure.message = redact(&failure.message).into_owned();
            StepResult::Failed { failure }
        }
        StepResult::Succeeded { mut outputs } => {
            for value in outputs.values.values_mut() {
                if let erebor_core::OutputValue::Text(text) = value {
                    *text = redact(text).into_owned();
                }
            }
            StepResult::Succeeded { outputs }
        }
    }
}

/// Sets `token` when this process receives SIGTERM or SIGINT (on a background thread).
pub fn cancel_on_signals(token: CancelToken) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("erebor-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let streams = signal(SignalKind::terminate())
                    .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
                let (mut term, mut int) = match streams {
                    Ok(streams) => {
                        let _ = ready_tx.send(Ok(()));
                        streams
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                loop {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                    tracing::warn!(
                        "stop requested; the step is finishing its current unit of work"
                    );
                    token.cancel();
                }
            });
        })?;
    ready_rx.recv().map_err(std::io::Error::other)?
}

/// How the step process is hosted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hosting {
    /// A child process of the runner: ties its life to the runner's.
    ChildProcess,
    /// A thread in the runner (the in-process executor).
    InProcess,
}

/// Runs the step in `request_path` and returns the exit code for its outcome.
pub fn run_step_process(
    request_path: &Path,
    registry: &KindRegistry,
    cancel: &CancelToken,
    hosting: Hosting,
) -> i32 {
    let request: StepRequest = match std::fs::read(request_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(request) => request,
        Err(error) => {
            eprintln!(
                "erebor step: cannot read request {}: {error}",
                request_path.display()
            );
            return FailureClass::BadInput.exit_code();
        }
    };
    let result = redact_result(run_request(&request, registry, cancel, hosting));
    let code = match &result {
        StepResult::Succeeded { .. } => 0,
        StepResult::Failed { failure } => {
            eprintln!(
                "erebor step: {} failed: {}",
                request.step_id,
                redact(&failure.to_string())
            );
            failure.class.exit_code()
        }
    };
    if let Err(error) = protocol::write_json_atomic(&request.result_file, &result) {
        eprintln!(
            "erebor step: cannot write result {}: {error}",
            request.result_file.display()
        );
        return FailureClass::Unknown.exit_code();
    }
    code
}

/// Refuses a request of another protocol version, and ties a child process to its runner (it
/// exits as cancelled when the runner is gone already).
fn check_request(request: &StepRequest, hosting: Hosting) -> Result<(), StepFailure> {
    if request.protocol != protocol::PROTOCOL_VERSION {
        return Err(StepFailure::bad_input(format!(
            "step protocol {} is not {} (runner and step binaries differ)",
            request.protocol,
            protocol::PROTOCOL_VERSION
        )));
    }
    // runner_pid 0: a cluster job, which outlives its runner by design.
    if hosting == Hosting::ChildProcess && request.runner_pid != 0 {
        if let Err(error) = process::set_parent_death_signal(Signal::Term) {
            tracing::warn!("cannot tie the step to its runner: {error}");
        }
        if std::os::unix::process::parent_id() != request.runner_pid {
            return Err(StepFailure::cancelled(
                "the runner exited before the step started",
            ));
        }
    }
    Ok(())
}

fn run_request(
    request: &StepRequest,
    registry: &KindRegistry,
    cancel: &CancelToken,
    hosting: Hosting,
) -> StepResult {
    let failed = |failure: StepFailure| StepResult::Failed { failure };
    if let Err(failure) = check_request(request, hosting) {
        return failed(failure);
    }
    let Some(kind) = registry.get(&request.kind) else {
        return failed(StepFailure::bad_input(format!(
            "this erebor binary has no step kind `{}`",
            request.kind
        )));
    };
    let secrets = match protocol::secrets_from_env() {
        Ok(secrets) => secrets,
        Err(error) => return failed(StepFailure::bad_input(error.to_string())),
    };
    if hosting == Hosting::ChildProcess {
        secrets::register(secrets.values().cloned());
    }
    let with = match erebor_workflow::runtime::finalize(&request.with, &secrets) {
        Ok(with) => with,
        Err(error) => return failed(StepFailure::bad_input(error.to_string())),
    };
    if let Err(error) = std::fs::create_dir_all(&request.work_dir) {
        return failed(StepFailure::unknown(format!(
            "cannot create work folder {}: {error}",
            request.work_dir.display()
        )));
    }
    let events = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&request.events_file)
    {
        Ok(file) => EventWriter::new(file),
        Err(error) => {
            return failed(StepFailure::unknown(format!(
                "cannot open events file {}: {error}",
                request.events_file.display()
            )));
        }
    };
    let ctx = StepContext {
        run_id: request.run_id.clone(),
        step_id: request.step_id.clone(),
        attempt_id: request.attempt_id.clone(),
        with,
        base_dir: request.base_dir.clone(),
        work_dir: request.work_dir.clone(),
        cache_dir: request.cache_dir.clone(),
        run_data: request.run_data.clone(),
        metrics: &events,
        progress: &events,
        cancel: cancel.clone(),
    };
    tracing::info!(step = %request.step_id, attempt = request.attempt_number, kind = %request.kind, "step started");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kind.run(&ctx)));
    match outcome {
        Ok(Ok(outputs)) => StepResult::Succeeded { outputs },
        Ok(Err(failure)) => failed(failure),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            failed(StepFailure::unknown(format!(
                "the step panicked: {message}"
            )))
        }
    }
}
