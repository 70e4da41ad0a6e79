//! `squeue -t all` for every job of the runner in one call: the arguments, and parsing its
//! lines (`JOBID|STATE|EXIT_STATUS|REASON|`) into [`JobState`]s.

use crate::executor::{ExitInfo, ExternalId, JobState};
use std::collections::BTreeMap;

/// The output format: job id, state, raw wait status, reason, each followed by `|`.
pub(crate) const FORMAT: &str = "JobID:|,State:|,exit_code:|,Reason:|";

/// The arguments of one `squeue` call for `ids`.
pub fn args(ids: &[ExternalId]) -> Vec<String> {
    let list: Vec<&str> = ids.iter().map(ExternalId::as_str).collect();
    vec![
        "--noheader".to_owned(),
        "--states=all".to_owned(),
        format!("--Format={FORMAT}"),
        format!("--jobs={}", list.join(",")),
    ]
}

/// The arguments of `squeue` to find a job by its (unique) name.
pub(crate) fn by_name_args(name: &str) -> Vec<String> {
    vec![
        "--noheader".to_owned(),
        "--states=all".to_owned(),
        format!("--Format={FORMAT}"),
        format!("--name={name}"),
    ]
}

/// A line `squeue` printed that is not in `FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected squeue output line `{line}`: {why}")]
pub struct ParseError {
    /// The line.
    pub line: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses `squeue` output into each job's state. Empty lines are skipped; any other line
/// that does not parse makes the whole answer untrusted (an error), so garbage never turns
/// into a state.
pub fn parse(output: &str) -> Result<BTreeMap<ExternalId, JobState>, ParseError> {
    let mut states = BTreeMap::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let error = |why| ParseError {
            line: line.to_owned(),
            why,
        };
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if fields.len() < 4 {
            return Err(error("fewer than 4 `|`-separated fields"));
        }
        let id = fields[0];
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return Err(error("the job id is not a number"));
        }
        let exit_status: i32 = fields[2]
            .parse()
            .map_err(|_| error("the exit status is not a number"))?;
        let state = state_of(fields[1], exit_status, fields[3])
            .ok_or_else(|| error("unknown job state"))?;
        states.insert(ExternalId::new(id), state);
    }
    Ok(states)
}

/// Maps a Slurm job state (with its raw wait status and reason) to a [`JobState`].
pub(crate) fn state_of(state: &str, status: i32, reason: &str) -> Option<JobState> {
    let exit = wait_status(status);
    let state = match state {
        "PENDING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "RESV_DEL_HOLD" => {
            JobState::Queued
        }
        "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING"
        | "STAGE_OUT" | "RESIZING" => JobState::Running,
        "COMPLETED" | "FAILED" | "SPECIAL_EXIT" => JobState::Finished(exit),
        "CANCELLED" | "TIMEOUT" | "DEADLINE" => JobState::Finished(ExitInfo {
            code: exit.code.filter(|&c| c != 0),
            signal: exit.signal.or(Some(libc::SIGTERM)),
        }),
        "OUT_OF_MEMORY" => JobState::Finished(ExitInfo {
            code: None,
            signal: Some(libc::SIGKILL),
        }),
        "NODE_FAIL" | "BOOT_FAIL" | "PREEMPTED" | "REVOKED" | "LAUNCH_FAILED" => {
            JobState::Lost(format!("Slurm reports the job {state} (reason: {reason})"))
        }
        _ => return None,
    };
    Some(state)
}

/// A raw wait status as `squeue`'s `exit_code` prints it: `code << 8`, or the signal number.
fn wait_status(status: i32) -> ExitInfo {
    let signal = status & 0x7f;
    if signal == 0 {
        ExitInfo {
            code: Some((status >> 8) & 0xff),
            signal: None,
        }
    } else {
        ExitInfo {
            code: None,
            signal: Some(signal),
        }
    }
}

/// Whether `squeue` refused because none of the ids it was given exists any more (it says so
/// and exits 1 when a single unknown id is asked for).
pub(crate) fn all_unknown(stderr: &str) -> bool {
    stderr.contains("Invalid job id specified")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_squeue_lines() {
        let output = "6|FAILED|768|NonZeroExitCode|\n7|FAILED|9|JobLaunchFailure|\n8|RUNNING|0|None|\n9|PENDING|0|Resources|\n10|COMPLETED|0|None|   \n\n";
        let states = parse(output).unwrap();
        let get = |id: &str| states.get(&ExternalId::new(id)).cloned().unwrap();
        assert_eq!(
            get("6"),
            JobState::Finished(ExitInfo {
                code: Some(3),
                signal: None
            })
        );
        assert_eq!(
            get("7"),
            JobState::Finished(ExitInfo {
                code: None,
                signal: Some(9)
            })
        );
        assert_eq!(get("8"), JobState::Running);
        assert_eq!(get("9"), JobState::Queued);
        assert_eq!(
            get("10"),
            JobState::Finished(ExitInfo {
                code: Some(0),
                signal: None
            })
        );
    }

    #[test]
    fn cancelled_and_out_of_memory_jobs() {
        let cancelled = state_of("CANCELLED", 0, "None").unwrap();
        assert_eq!(
            cancelled,
            JobState::Finished(ExitInfo {
                code: None,
                signal: Some(libc::SIGTERM)
            })
        );
        let oom = state_of("OUT_OF_MEMORY", 0, "None").unwrap();
        assert_eq!(
            oom,
            JobState::Finished(ExitInfo {
                code: None,
                signal: Some(9)
            })
        );
        assert!(matches!(
            state_of("NODE_FAIL", 0, "NodeDown"),
            Some(JobState::Lost(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_state() {
        assert!(parse("<html>proxy error</html>").is_err());
        assert!(parse("12|RUNNING").is_err());
        assert!(parse("12|DANCING|0|None|").is_err());
        assert!(parse("x1|RUNNING|0|None|").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn one_call_for_all_jobs() {
        let ids = [ExternalId::new("4"), ExternalId::new("17")];
        let args = args(&ids);
        assert!(args.contains(&"--jobs=4,17".to_owned()));
        assert!(args.contains(&"--states=all".to_owned()));
    }
}
