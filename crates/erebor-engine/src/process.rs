//! Process-control calls the standard library lacks: signals to process groups, the Linux
//! parent-death signal, and liveness checks. Each `unsafe` block is a single libc call.
#![allow(unsafe_code)]

use std::io;

/// A signal the runner sends to step processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ask to stop (steps checkpoint and exit).
    Term,
    /// Ctrl-C.
    Int,
    /// Stop now.
    Kill,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        }
    }

    /// The signal as `prctl(PR_SET_PDEATHSIG)` takes it (signal numbers are positive, so the
    /// absolute value is the number).
    #[cfg(target_os = "linux")]
    fn prctl_arg(self) -> libc::c_ulong {
        libc::c_ulong::from(self.raw().unsigned_abs())
    }
}

/// Sends `signal` to every process in process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(io::Error::other)?;
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
    let rc = unsafe { libc::kill(-pgid, signal.raw()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to one process.
pub fn signal_process(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) on a pid has no memory effects.
    let rc = unsafe { libc::kill(pid, signal.raw()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a process with this pid exists (it may be a zombie or, rarely, a reused pid).
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Asks the kernel to send `signal` to this process when its parent dies (Linux; a no-op
/// elsewhere). Call it first thing in a child, then compare `parent_id()` with the expected
/// parent in case the parent died before the call.
pub(crate) fn set_parent_death_signal(signal: Signal) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers and only sets a process flag.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal.prctl_arg(), 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = signal;
    Ok(())
}

/// Makes a command's process receive `signal` when the spawning thread's process dies.
pub fn die_with_parent(command: &mut std::process::Command, signal: Signal) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let raw = signal.prctl_arg();
        // SAFETY: the closure runs between fork and exec and only calls prctl, which is
        // async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, raw, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (command, signal);
}

/// This host's name, for run records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_and_group_signals() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        assert!(is_alive(std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        signal_group(pid, Signal::Term).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }
}
