//! [`SlurmSettings`]: the client programs, time limits, retries and poll intervals of the
//! Slurm executor.

use super::script::ClusterOptions;
use std::path::PathBuf;
use std::time::Duration;

/// How the Slurm executor submits, polls and retries.
#[derive(Clone, Debug)]
pub struct SlurmSettings {
    /// Partition, account and options for every job (from the workflow's `executor:`).
    pub cluster: ClusterOptions,
    /// The erebor binary as the compute nodes see it.
    pub program: PathBuf,
    /// `sbatch`, `squeue` and `scancel` (names looked up on `PATH`, or paths).
    pub sbatch: String,
    /// See `sbatch`.
    pub squeue: String,
    /// See `sbatch`.
    pub scancel: String,
    /// Time limit of one client command.
    pub command_timeout: Duration,
    /// Tries of a submission (and of a cancellation) on transient errors.
    pub tries: u32,
    /// First delay between tries (doubling, with jitter).
    pub retry_delay: Duration,
    /// Shortest time between two `squeue` calls.
    pub poll_min: Duration,
    /// Longest time between two `squeue` calls while nothing changes.
    pub poll_max: Duration,
    /// How long a finished job's result file is waited for (a lagging shared file system).
    pub result_wait: Duration,
}

impl SlurmSettings {
    /// Defaults for a real cluster, running `program` on the nodes.
    pub fn new(program: PathBuf, cluster: ClusterOptions) -> Self {
        Self {
            cluster,
            program,
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scancel: "scancel".into(),
            command_timeout: Duration::from_secs(30),
            tries: 6,
            retry_delay: Duration::from_secs(2),
            poll_min: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
            result_wait: Duration::from_secs(30),
        }
    }
}
