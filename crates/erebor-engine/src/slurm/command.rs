//! Running the Slurm client programs (`sbatch`, `squeue`, `scancel`) with a time limit, and
//! telling transient failures (slurmctld restarting, a socket timeout) from permanent ones
//! (an unknown partition, a job that cannot fit, munge down, the program missing).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Why a Slurm command did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlurmError {
    /// The program is not installed (or not on `PATH`).
    #[error(
        "`{program}` was not found on PATH: install the Slurm client (slurm-client) on the runner's host, or put it on PATH"
    )]
    Missing {
        /// `sbatch`, `squeue` or `scancel`.
        program: String,
    },
    /// It did not answer in time; its effect (a submission) may or may not have happened.
    #[error("`{program}` did not answer within {seconds}s")]
    TimedOut {
        /// The program.
        program: String,
        /// The limit.
        seconds: u64,
    },
    /// It failed in a way that may pass (slurmctld restarting or unreachable).
    #[error("`{program}` failed (transient, will retry): {message}")]
    Transient {
        /// The program.
        program: String,
        /// Its stderr.
        message: String,
    },
    /// It refused: retrying will not help.
    #[error("`{program}` failed: {message}")]
    Refused {
        /// The program.
        program: String,
        /// Its stderr, with advice where erebor has some.
        message: String,
    },
}

impl SlurmError {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SlurmError::TimedOut { .. } | SlurmError::Transient { .. }
        )
    }
}

impl From<SlurmError> for std::io::Error {
    fn from(error: SlurmError) -> Self {
        std::io::Error::other(error.to_string())
    }
}

/// Phrases of Slurm client errors that pass once slurmctld is back.
const TRANSIENT: &[&str] = &[
    "socket timed out",
    "unable to contact slurm controller",
    "connection refused",
    "connection reset",
    "zero bytes were transmitted",
    "slurm temporarily unable",
    "resource temporarily unavailable",
    "transport endpoint is not connected",
    "slurmctld is busy",
    "try again",
    "communication connection failure",
];

/// Classifies a failed command from its stderr.
pub fn classify(program: &str, stderr: &str) -> SlurmError {
    let message = stderr.trim().to_owned();
    let lower = message.to_lowercase();
    if lower.contains("munge") {
        return SlurmError::Refused {
            program: program.to_owned(),
            message: format!(
                "{message} (munge authentication failed: is munged running on this host, with the cluster's key? scripts/slurm-up.sh starts it on a test machine)"
            ),
        };
    }
    if TRANSIENT.iter().any(|phrase| lower.contains(phrase)) {
        return SlurmError::Transient {
            program: program.to_owned(),
            message,
        };
    }
    let advice = if lower.contains("invalid partition") {
        " (check `executor.partition` in the workflow against `sinfo -s`)"
    } else if lower.contains("requested node configuration is not available")
        || lower.contains("memory specification")
    {
        " (no node of the partition has that many CPUs, that much memory (`resources.memory`) or those GPUs; see `sinfo -N -l`)"
    } else if lower.contains("invalid generic resource") {
        " (no node of the partition has those GRES: `resources.gpus: N` asks for `--gres=gpu:N`; see `sinfo -o \"%P %G\"`)"
    } else if lower.contains("invalid account") {
        " (check `executor.account` in the workflow against `sacctmgr show assoc user=$USER`)"
    } else {
        ""
    };
    SlurmError::Refused {
        program: program.to_owned(),
        message: if message.is_empty() {
            "it exited with an error and printed nothing".to_owned()
        } else {
            format!("{message}{advice}")
        },
    }
}

/// Runs `program args…`, returning stdout when it exits 0.
pub async fn run(program: &str, args: &[String], limit: Duration) -> Result<String, SlurmError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(SlurmError::Missing {
                program: program.to_owned(),
            });
        }
        Err(error) => {
            return Err(SlurmError::Refused {
                program: program.to_owned(),
                message: format!("cannot start it: {error}"),
            });
        }
    };
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => {
            return Err(SlurmError::Transient {
                program: program.to_owned(),
                message: format!("cannot read its output: {error}"),
            });
        }
        Err(_) => {
            return Err(SlurmError::TimedOut {
                program: program.to_owned(),
                seconds: limit.as_secs().max(1),
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(classify(program, &String::from_utf8_lossy(&output.stderr)))
    }
}

/// A delay of about `base` with ±50% jitter, so runners that failed together do not retry
/// together.
pub(crate) fn jittered(base: Duration) -> Duration {
    let random = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    base.mul_f64(0.5 + random)
}

/// Whether `path` names an executable program: absolute, or found on `PATH`.
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let timeout = classify(
            "sbatch",
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        );
        assert!(timeout.is_transient());
        let down = classify(
            "squeue",
            "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
        );
        assert!(down.is_transient());
        let partition = classify(
            "sbatch",
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
        );
        assert!(!partition.is_transient());
        assert!(partition.to_string().contains("executor.partition"));
        let memory = classify(
            "sbatch",
            "sbatch: error: Batch job submission failed: Requested node configuration is not available",
        );
        assert!(!memory.is_transient());
        assert!(memory.to_string().contains("resources.memory"));
        let munge = classify(
            "sbatch",
            "sbatch: error: Munge encode failed: Failed to access \"/run/munge/munge.socket.2\": No such file or directory",
        );
        assert!(!munge.is_transient());
        assert!(munge.to_string().contains("munged running"));
    }

    #[test]
    fn jitter_stays_within_half() {
        for _ in 0..100 {
            let delay = jittered(Duration::from_secs(2));
            assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(3));
        }
    }
}
