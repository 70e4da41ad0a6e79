//! The Slurm executor: each attempt is a batch job.
//!
//! - `submit`: writes the batch script and its 0600 environment file into the attempt folder
//!   (on the shared file system), then `sbatch --parsable --export=NONE`; transient failures
//!   are retried with jitter, and before every resubmission the job is looked up by its
//!   unique name (`squeue --name`), so a submission whose answer was lost is never doubled.
//! - `poll`: one `squeue --states=all --jobs=…` for every followed job, at most once per
//!   interval (1 s to 10 s): it grows while nothing changes and shrinks when something does;
//!   a job just submitted is known to be queued without asking.
//!   A failing or garbled `squeue` never changes a state; a job missing from a good answer
//!   is lost.
//! - `cancel`: `scancel --signal=TERM --full` (the step checkpoints), then `scancel` after
//!   the grace period.
//!
//! [`command`] runs the client programs and classifies their errors, [`squeue`] parses
//! states, [`script`] writes the job.
//! [`settings`] holds what the executor is configured with, [`executor`] the executor itself.

pub mod command;
pub mod executor;
pub mod script;
pub mod settings;
pub mod squeue;

pub use executor::SlurmExecutor;
pub use settings::SlurmSettings;
