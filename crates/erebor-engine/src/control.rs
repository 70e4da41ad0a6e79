//! Cancelling a run from outside the scheduler (Ctrl-C, SIGTERM, a lost lease).

use tokio::sync::watch;

/// How hard to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Keep going.
    Run,
    /// Stop starting steps; ask running ones to stop (SIGTERM), kill them after the grace period.
    Graceful,
    /// Kill running steps now.
    Immediate,
}

/// A handle that stops a run; clones share the state.
#[derive(Clone, Debug)]
pub struct RunControl {
    sender: watch::Sender<StopLevel>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self::new()
    }
}

impl RunControl {
    /// A control that has not been stopped.
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(StopLevel::Run),
        }
    }

    /// Escalates: the first call stops gracefully, the second immediately.
    pub(crate) fn escalate(&self) -> StopLevel {
        let mut next = StopLevel::Graceful;
        self.sender.send_modify(|level| {
            *level = match *level {
                StopLevel::Run => StopLevel::Graceful,
                _ => StopLevel::Immediate,
            };
            next = *level;
        });
        next
    }

    /// Raises the stop level to at least `level`.
    pub fn stop(&self, level: StopLevel) {
        self.sender.send_if_modified(|current| {
            if level > *current {
                *current = level;
                true
            } else {
                false
            }
        });
    }

    /// The current level.
    pub fn level(&self) -> StopLevel {
        *self.sender.borrow()
    }

    /// A receiver to await changes.
    pub fn subscribe(&self) -> watch::Receiver<StopLevel> {
        self.sender.subscribe()
    }

    /// Stops the run on SIGINT and SIGTERM (a second signal kills at once). Call inside a tokio
    /// runtime.
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let control = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                match control.escalate() {
                    StopLevel::Graceful => tracing::warn!(
                        "{name}: stopping the run; running steps get time to checkpoint (again to kill them now)"
                    ),
                    _ => tracing::warn!("{name}: killing running steps"),
                }
            }
        });
        Ok(())
    }
}
