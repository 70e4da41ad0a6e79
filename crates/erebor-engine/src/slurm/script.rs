//! What one attempt's job is made of: its name, the batch script that `exec`s
//! `erebor step-exec --request FILE`, the 0600 environment file the script sources (so the
//! step's variables, secrets included, never pass through sbatch's command line, `--export`
//! or slurmctld's saved job state), and the `sbatch` options.

use crate::executor::{JobSpec, Launch};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The batch script's name in the attempt folder.
pub(crate) const SCRIPT_FILE: &str = "job.sh";
/// The environment file's name in the attempt folder (mode 0600; removed when the attempt
/// is over).
pub(crate) const ENV_FILE: &str = "job.env";

/// Variables of the runner's environment the job gets besides the step's own: what a step
/// process needs to find programs and caches and to log, nothing else (`--export=NONE`).
pub(crate) const FORWARDED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TMPDIR",
];

/// Variables of the step's environment the job must not get: Slurm sets them itself from
/// the allocation.
const ALLOCATION_ENV: &[&str] = &["CUDA_VISIBLE_DEVICES"];

/// Cluster-wide settings from the workflow's `executor:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// Free-form options for every job.
    pub extra: Vec<String>,
}

/// `erebor-RUN-STEP-aN`: unique per attempt, so a submission whose answer was lost can be
/// found again by name. Characters Slurm or a shell could read specially become `_`.
pub fn job_name(run_id: &str, step_id: &str, attempt: u32) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("erebor-{}-{}-a{attempt}", clean(run_id), clean(step_id))
}

/// Quotes a value for a POSIX shell.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script: sources the environment file, then becomes the step process.
pub(crate) fn batch_script(program: &Path, launch: &Launch, env_file: &Path) -> String {
    let job = &launch.job;
    format!(
        "#!/bin/sh\n\
         # erebor: {name} (written by the runner; see docs/executors.md)\n\
         set -a\n\
         . {env}\n\
         set +a\n\
         exec {program} step-exec --request {request}\n",
        name = job.name,
        env = shell_quote(&env_file.display().to_string()),
        program = shell_quote(&program.display().to_string()),
        request = shell_quote(&launch.request_file.display().to_string()),
    )
}

/// The environment file's text: the step's variables and the forwarded ones, as shell
/// assignments.
pub(crate) fn env_text(launch: &Launch, forwarded: &[(String, String)]) -> String {
    let mut out = String::new();
    let step_vars = launch
        .env
        .iter()
        .filter(|(name, _)| !ALLOCATION_ENV.contains(&name.as_str()));
    for (name, value) in forwarded.iter().chain(step_vars) {
        if is_env_name(name) {
            out.push_str(&format!("{name}={}\n", shell_quote(value)));
        }
    }
    out
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes a file only its owner can read (created with mode 0600, never wider).
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Writes the script (0700) and the environment file (0600) into the attempt folder; returns
/// the script's path.
pub(crate) fn write_job_files(
    program: &Path,
    launch: &Launch,
    forwarded: &[(String, String)],
) -> std::io::Result<PathBuf> {
    let dir = attempt_dir(launch);
    let env_file = dir.join(ENV_FILE);
    write_private(&env_file, &env_text(launch, forwarded))?;
    let script = dir.join(SCRIPT_FILE);
    let _ = std::fs::remove_file(&script);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&script)?;
    file.write_all(batch_script(program, launch, &env_file).as_bytes())?;
    file.sync_all()?;
    Ok(script)
}

/// The attempt folder (the request file's).
pub(crate) fn attempt_dir(launch: &Launch) -> PathBuf {
    launch
        .request_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `sbatch` arguments for one attempt: `--parsable`, its name, its log, `--export=NONE`, the
/// cluster's and the step's options, then the script.
pub(crate) fn sbatch_args(cluster: &ClusterOptions, launch: &Launch, script: &Path) -> Vec<String> {
    let job = &launch.job;
    let mut args = vec![
        "--parsable".to_owned(),
        format!("--job-name={}", job.name),
        format!("--output={}", launch.log_file.display()),
        "--open-mode=append".to_owned(),
        "--export=NONE".to_owned(),
        format!("--chdir={}", attempt_dir(launch).display()),
    ];
    if let Some(partition) = &cluster.partition {
        args.push(format!("--partition={partition}"));
    }
    if let Some(account) = &cluster.account {
        args.push(format!("--account={account}"));
    }
    args.extend(resource_args(job));
    args.extend(cluster.extra.iter().cloned());
    args.extend(job.resources.sbatch.iter().cloned());
    args.push(script.display().to_string());
    args
}

/// `--gres=gpu:N`, `--cpus-per-task`, `--mem` and `--time` for a step.
pub(crate) fn resource_args(job: &JobSpec) -> Vec<String> {
    let mut args = Vec::new();
    if job.gpus > 0 {
        args.push(format!("--gres=gpu:{}", job.gpus));
    }
    if let Some(cpus) = job.resources.cpus {
        args.push(format!("--cpus-per-task={cpus}"));
    }
    if let Some(mb) = job.resources.memory_mb {
        args.push(format!("--mem={mb}M"));
    }
    if let Some(timeout) = job.timeout {
        args.push(format!("--time={}", time_limit_minutes(timeout)));
    }
    args
}

/// Slurm's limit in whole minutes: the step's `timeout:` plus a minute, so erebor's own
/// timeout (SIGTERM, grace, kill) acts first and Slurm's is the backstop.
pub(crate) fn time_limit_minutes(timeout: std::time::Duration) -> u64 {
    timeout.as_secs().div_ceil(60) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_workflow::StepResources;
    use std::time::Duration;

    fn launch(dir: &Path) -> Launch {
        Launch {
            request_file: dir.join("request.json"),
            log_file: dir.join("step.log"),
            env: vec![
                ("EREBOR_DB".into(), "sqlite:///x.db".into()),
                (
                    "EREBOR_STEP_SECRETS".into(),
                    r#"{"key":"it's secret"}"#.into(),
                ),
                ("CUDA_VISIBLE_DEVICES".into(), String::new()),
            ],
            job: JobSpec {
                name: job_name("r-20260101-000000-ab12", "train[dpop]", 2),
                gpus: 2,
                resources: StepResources {
                    cpus: Some(8),
                    memory_mb: Some(16 * 1024),
                    sbatch: vec!["--constraint=a100".into()],
                },
                timeout: Some(Duration::from_hours(1)),
            },
        }
    }

    #[test]
    fn job_names_are_unique_and_plain() {
        assert_eq!(
            job_name("r-20260101-000000-ab12", "train[dpop]", 2),
            "erebor-r-20260101-000000-ab12-train_dpop_-a2"
        );
    }

    #[test]
    fn sbatch_options_from_resources() {
        let dir = Path::new("/shared/runs/r1/steps/train/1");
        let cluster = ClusterOptions {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            extra: vec!["--qos=high".into()],
        };
        let args = sbatch_args(&cluster, &launch(dir), &dir.join(SCRIPT_FILE));
        for expected in [
            "--parsable",
            "--export=NONE",
            "--job-name=erebor-r-20260101-000000-ab12-train_dpop_-a2",
            "--output=/shared/runs/r1/steps/train/1/step.log",
            "--partition=gpu",
            "--account=lab",
            "--gres=gpu:2",
            "--cpus-per-task=8",
            "--mem=16384M",
            "--time=61",
            "--qos=high",
            "--constraint=a100",
        ] {
            assert!(
                args.contains(&expected.to_owned()),
                "{expected} in {args:?}"
            );
        }
        assert_eq!(args.last().unwrap(), "/shared/runs/r1/steps/train/1/job.sh");
        assert!(
            !args
                .iter()
                .any(|a| a.contains("secret") || a.contains("EREBOR_")),
            "no variable on the command line: {args:?}"
        );
    }

    #[test]
    fn script_sources_the_env_file_and_execs_step_exec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let launch = launch(dir.path());
        let forwarded = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        let script =
            write_job_files(Path::new("/opt/erebor/bin/erebor"), &launch, &forwarded).unwrap();
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(text.contains("exec '/opt/erebor/bin/erebor' step-exec --request '"));
        assert!(!text.contains("secret"));
        let env_file = dir.path().join(ENV_FILE);
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The shell reads back exactly the values written, quotes included.
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -a; . '{}'; printf '%s\\n' \"$EREBOR_STEP_SECRETS\" \"$PATH\" \"${{CUDA_VISIBLE_DEVICES-unset}}\"",
                env_file.display()
            ))
            .output()
            .unwrap();
        let printed = String::from_utf8(output.stdout).unwrap();
        assert_eq!(printed, "{\"key\":\"it's secret\"}\n/usr/bin:/bin\nunset\n");
    }
}
