//! The `command` kind: runs an external program from an argv list, never through a shell, with
//! an explicit environment. Its stdout and stderr go to the step log; lines of the form
//! `erebor:metric KEY INDEX VALUE` and `erebor:progress PHASE POSITION [TOTAL]` on stdout are
//! recorded as metrics and progress.

use erebor_core::kind::resolve_path;
use erebor_core::{
    ConfigError, OutputDecl, OutputType, StepContext, StepFailure, StepKind, StepKindInfo,
    StepOutputs, parse_with,
};
use erebor_engine::process::{self, Signal};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cancelled command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

static INFO: StepKindInfo = StepKindInfo {
    name: "command",
    code_version: 1,
    summary: "Run an external program (argv list, explicit environment); its files under `outputs:` become outputs",
    outputs: &[OutputDecl {
        name: "<outputs key>",
        ty: OutputType::File,
        doc: "each key of `with.outputs` (a file the command writes) and of `with.metric_outputs`",
    }],
};

/// The `with:` block of a `command` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandConfig {
    /// Program and arguments. A program with a `/` is relative to the workflow folder; a bare
    /// name is looked up on the runner's `PATH`.
    pub argv: Vec<Arg>,
    /// Environment variables with explicit values.
    #[serde(default)]
    pub env: BTreeMap<String, Arg>,
    /// Names of runner environment variables passed through (e.g. `PATH`, `HOME`).
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// Working folder (relative to the workflow folder); default: the step's work folder.
    pub cwd: Option<String>,
    /// Files the command writes: output name → path relative to the work folder.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Metric keys (from `erebor:metric` lines) whose last value becomes a metric output.
    #[serde(default)]
    pub metric_outputs: Vec<String>,
}

/// An argument or environment value: text, or a number or boolean written as text (so
/// `${{ params.n }}` of an int param works).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Arg {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Arg {
    /// The value as the program sees it.
    pub(crate) fn text(&self) -> String {
        match self {
            Arg::Text(text) => text.clone(),
            Arg::Int(value) => value.to_string(),
            Arg::Float(value) => value.to_string(),
            Arg::Bool(value) => value.to_string(),
        }
    }
}

/// The `command` step kind.
pub struct CommandKind;

impl StepKind for CommandKind {
    fn info(&self) -> &'static StepKindInfo {
        &INFO
    }

    fn outputs_for(&self, with: &serde_json::Value) -> Vec<(String, OutputType)> {
        let mut outputs = Vec::new();
        if let Some(files) = with.get("outputs").and_then(|o| o.as_object()) {
            outputs.extend(files.keys().map(|k| (k.clone(), OutputType::File)));
        }
        if let Some(metrics) = with.get("metric_outputs").and_then(|o| o.as_array()) {
            outputs.extend(
                metrics
                    .iter()
                    .filter_map(|m| m.as_str())
                    .map(|m| (m.to_owned(), OutputType::Metric)),
            );
        }
        outputs
    }

    fn validate(&self, with: &serde_json::Value, _base_dir: &Path) -> Result<(), ConfigError> {
        let config: CommandConfig = parse_with(with)?;
        if config.argv.is_empty() || config.argv[0].text().is_empty() {
            return Err(ConfigError::field(
                "argv",
                "needs at least the program, e.g. `[python3, script.py]`",
            ));
        }
        for name in config.env.keys().chain(&config.env_allow) {
            if name.is_empty() || name.contains('=') {
                return Err(ConfigError::field(
                    "env",
                    format!("`{name}` is not a variable name"),
                ));
            }
        }
        for (name, path) in &config.outputs {
            if path.is_empty() {
                return Err(ConfigError::at(
                    vec![
                        erebor_core::config::PathSegment::Key("outputs".into()),
                        erebor_core::config::PathSegment::Key(name.clone()),
                    ],
                    "is empty; give the file the command writes, relative to its work folder",
                ));
            }
        }
        Ok(())
    }

    fn run(&self, ctx: &StepContext<'_>) -> Result<StepOutputs, StepFailure> {
        let config: CommandConfig = parse_with(&ctx.with)?;
        let argv: Vec<String> = config.argv.iter().map(Arg::text).collect();
        let program = resolve_program(&argv[0], &ctx.base_dir)?;
        let mut command = build_command(&config, &program, &argv[1..], ctx);
        tracing::info!(program = %program.display(), args = ?redacted_args(&argv[1..]), "starting command");
        let mut child = command.spawn().map_err(|error| {
            StepFailure::bad_input(format!("cannot start `{}`: {error}", program.display()))
        })?;

        let last_metrics: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let stdout = child.stdout.take().map(BufReader::new);
        let stderr = child.stderr.take().map(BufReader::new);
        let status = std::thread::scope(|scope| {
            if let Some(stdout) = stdout {
                let last_metrics = Arc::clone(&last_metrics);
                scope.spawn(move || forward_stdout(stdout, ctx, &last_metrics));
            }
            if let Some(stderr) = stderr {
                scope.spawn(move || forward_plain(stderr));
            }
            wait_or_cancel(&mut child, ctx)
        })?;
        check_status(status, &argv[0])?;
        let last = last_metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        collect_outputs(&config, &last, &argv[0], &ctx.work_dir)
    }
}

/// The command to start: `program` with `args` in the configured folder (default: the step's
/// work folder), with only the allowed, configured and `EREBOR_*` environment variables (and
/// `CUDA_VISIBLE_DEVICES`), stdin closed, stdout and stderr piped, killed with its parent.
fn build_command(
    config: &CommandConfig,
    program: &Path,
    args: &[String],
    ctx: &StepContext<'_>,
) -> std::process::Command {
    let cwd = config.cwd.as_deref().map_or_else(
        || ctx.work_dir.clone(),
        |dir| resolve_path(&ctx.base_dir, dir),
    );
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .current_dir(&cwd)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for name in &config.env_allow {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .envs(config.env.iter().map(|(k, v)| (k, v.text())))
        .env("EREBOR_RUN_ID", ctx.run_id.as_str())
        .env("EREBOR_STEP_ID", ctx.step_id.as_str())
        .env("EREBOR_ATTEMPT_ID", ctx.attempt_id.as_str())
        .env("EREBOR_WORK_DIR", &ctx.work_dir)
        .env("EREBOR_BASE_DIR", &ctx.base_dir);
    if let Some(devices) = std::env::var_os("CUDA_VISIBLE_DEVICES") {
        command.env("CUDA_VISIBLE_DEVICES", devices);
    }
    process::die_with_parent(&mut command, Signal::Kill);
    command
}

/// An unsuccessful exit of `program` as a failure naming its code or signal.
fn check_status(status: std::process::ExitStatus, program: &str) -> Result<(), StepFailure> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => StepFailure::unknown(format!(
            "`{program}` exited with code {code} (its output is in the step log)"
        )),
        (None, Some(signal)) => {
            StepFailure::unknown(format!("`{program}` was killed by signal {signal}"))
        }
        _ => StepFailure::unknown(format!("`{program}` failed: {status}")),
    })
}

/// The step's outputs after a successful exit: each configured file (which must exist, relative
/// to `work_dir`) and the last value of each metric output (which must have been printed).
fn collect_outputs(
    config: &CommandConfig,
    last: &BTreeMap<String, f64>,
    program: &str,
    work_dir: &Path,
) -> Result<StepOutputs, StepFailure> {
    let mut outputs = StepOutputs::new();
    for (name, relative) in &config.outputs {
        let path = resolve_path(work_dir, relative);
        if !path.exists() {
            return Err(StepFailure::fatal(format!(
                "`{program}` exited 0 but did not write outputs.{name} ({})",
                path.display()
            )));
        }
        outputs = outputs.with_path(name, path);
    }
    for key in &config.metric_outputs {
        let Some(value) = last.get(key) else {
            return Err(StepFailure::fatal(format!(
                "`{program}` printed no `erebor:metric {key} ...` line for metric output `{key}`"
            )));
        };
        outputs = outputs.with_metric(key, *value);
    }
    Ok(outputs)
}

fn redacted_args(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| erebor_core::secrets::redact(a).into_owned())
        .collect()
}

/// Finds the program: a path with `/` relative to the workflow folder, else a `PATH` lookup.
fn resolve_program(program: &str, base_dir: &Path) -> Result<PathBuf, StepFailure> {
    if program.contains('/') {
        let path = resolve_path(base_dir, program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(StepFailure::bad_input(format!(
                "program {} does not exist",
                path.display()
            )))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| StepFailure::bad_input(format!("program `{program}` is not on PATH")))
}

fn wait_or_cancel(
    child: &mut std::process::Child,
    ctx: &StepContext<'_>,
) -> Result<std::process::ExitStatus, StepFailure> {
    let io =
        |error: std::io::Error| StepFailure::unknown(format!("waiting for the command: {error}"));
    loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            return Ok(status);
        }
        if ctx.cancel.is_cancelled() {
            let _ = process::signal_process(child.id(), Signal::Term);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if child.try_wait().map_err(io)?.is_some() {
                    return Err(StepFailure::cancelled("stopped on request"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(StepFailure::cancelled(
                "stopped on request (killed after the grace period)",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn forward_stdout(
    reader: impl BufRead,
    ctx: &StepContext<'_>,
    last_metrics: &Mutex<BTreeMap<String, f64>>,
) {
    let mut phase: Option<String> = None;
    for line in reader.lines().map_while(Result::ok) {
        eprintln!("{}", erebor_core::secrets::redact(&line));
        if let Some(rest) = line.strip_prefix("erebor:metric ") {
            if let Some((key, index, value)) = parse_metric(rest) {
                ctx.metrics.record(&key, index, value);
                last_metrics
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, value);
            } else {
                eprintln!(
                    "erebor: ignoring malformed metric line (want `erebor:metric KEY INDEX VALUE`)"
                );
            }
        } else if let Some(rest) = line.strip_prefix("erebor:progress ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            if let [name, position, rest @ ..] = parts.as_slice()
                && let Ok(position) = position.parse::<u64>()
            {
                let total = rest.first().and_then(|t| t.parse::<u64>().ok());
                if phase.as_deref() != Some(*name) {
                    ctx.progress.start_phase(name, total);
                    phase = Some((*name).to_owned());
                }
                ctx.progress.set_position(position);
            }
        }
    }
}

fn parse_metric(rest: &str) -> Option<(String, u64, f64)> {
    let mut parts = rest.split_whitespace();
    let key = parts.next()?.to_owned();
    let index = parts.next()?.parse().ok()?;
    let value: f64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((key, index, value))
}

fn forward_plain(reader: impl BufRead) {
    for line in reader.lines().map_while(Result::ok) {
        eprintln!("{}", erebor_core::secrets::redact(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_parse_strictly() {
        assert_eq!(
            parse_metric("train/loss 3 0.25"),
            Some(("train/loss".into(), 3, 0.25))
        );
        assert_eq!(parse_metric("train/loss x 0.25"), None);
        assert_eq!(parse_metric("train/loss 3 0.25 extra"), None);
    }

    #[test]
    fn validate_wants_a_program_and_variable_names() {
        let base = Path::new(".");
        let ok = serde_json::json!({"argv": ["python3", "train.py", 3], "env": {"SEED": 1}});
        assert!(CommandKind.validate(&ok, base).is_ok());
        let no_program = CommandKind
            .validate(&serde_json::json!({"argv": []}), base)
            .unwrap_err();
        assert!(
            no_program.message.contains("at least the program"),
            "{no_program}"
        );
        let bad_name = CommandKind
            .validate(
                &serde_json::json!({"argv": ["true"], "env_allow": ["A=B"]}),
                base,
            )
            .unwrap_err();
        assert!(
            bad_name.message.contains("`A=B` is not a variable name"),
            "{bad_name}"
        );
        let empty_output = CommandKind
            .validate(
                &serde_json::json!({"argv": ["true"], "outputs": {"model": ""}}),
                base,
            )
            .unwrap_err();
        assert!(empty_output.message.contains("is empty"), "{empty_output}");
    }

    #[test]
    fn declared_outputs_follow_the_config() {
        let with = serde_json::json!({
            "argv": ["true"],
            "outputs": {"model": "out/model.safetensors"},
            "metric_outputs": ["eval/loss"],
        });
        assert_eq!(
            CommandKind.outputs_for(&with),
            [
                ("model".to_owned(), OutputType::File),
                ("eval/loss".to_owned(), OutputType::Metric)
            ]
        );
    }
}
