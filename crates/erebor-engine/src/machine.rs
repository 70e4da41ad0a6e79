//! The run loop's state, without I/O: one `Slot` per step (its state, fingerprint, attempts
//! and GPU slots) and the transitions the scheduler drives it through: `Machine::start_ready`,
//! `Machine::on_finished`, `Machine::next_wakeup`, `Machine::on_cancel`. Time is passed
//! in, so tests drive it step by step without processes, a store or a clock.

use erebor_core::{StepId, StepOutputs};
use erebor_workflow::PlannedStep;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// The longest wait between two attempts of a step, whatever its `retry_backoff`.
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_mins(10);
/// Attempts of one step an executor may lose in a pass before the step fails.
pub(crate) const MAX_LOST: u32 = 3;

/// What the machine needs to know of a step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepSpec {
    /// The step id.
    pub id: StepId,
    /// Positions of the steps it needs.
    pub needs: Vec<usize>,
    /// GPU slots it takes while it runs.
    pub gpus: u32,
    /// Retries after a retryable failure.
    pub retries: u32,
    /// Wait before the first retry (doubled for each further one).
    pub retry_backoff: Duration,
}

impl StepSpec {
    /// The specs of a workflow's steps, in plan order (needs as positions).
    pub(crate) fn of_workflow(steps: &[PlannedStep]) -> Vec<StepSpec> {
        steps
            .iter()
            .map(|step| StepSpec {
                id: step.id.clone(),
                needs: step
                    .needs
                    .iter()
                    .filter_map(|need| steps.iter().position(|s| &s.id == need))
                    .collect(),
                gpus: step.gpus,
                retries: step.retries,
                retry_backoff: step.retry_backoff,
            })
            .collect()
    }
}

/// Where a step is in this pass of the scheduler.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SlotState {
    /// Not started; not before the given time (a retry's backoff).
    Waiting {
        /// Earliest start.
        not_before: Option<Instant>,
    },
    /// Chosen to start: it holds a job and its GPU slots while the scheduler fingerprints it,
    /// looks for a cached result and submits an attempt.
    Preparing,
    /// An attempt is out.
    Running,
    /// Finished (in this run, an earlier pass, or reused from the cache).
    Done(StepOutputs),
    /// Failed for good.
    Failed,
    /// Not run: an upstream step failed.
    Skipped,
    /// Stopped by cancellation (or the runner losing the run).
    Interrupted,
}

/// One step's slot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Slot {
    /// Its state.
    pub state: SlotState,
    /// Its fingerprint, once computed (or as stored for a finished step).
    pub fingerprint: Option<String>,
    /// Attempts started in this pass (the retry budget counts these).
    pub attempts: u32,
    /// The number the next attempt gets (numbers continue across resumes).
    pub next_number: u32,
    /// GPU slots it holds.
    pub gpus: Vec<u32>,
    /// Attempts lost in this pass (they do not use the retry budget, up to [`MAX_LOST`]).
    pub lost: u32,
}

/// A decision of `Machine::start_ready`.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// An upstream step failed or was skipped: the step is skipped.
    Skip {
        /// The step.
        index: usize,
        /// The upstream step.
        because: StepId,
    },
    /// It needs more GPU slots than the runner has: it fails without an attempt.
    Impossible {
        /// The step.
        index: usize,
        /// Why.
        message: String,
    },
    /// Prepare and submit it: it holds these GPU slots and its attempt gets this number.
    Prepare {
        /// The step.
        index: usize,
        /// GPU slots (lowest free ids).
        gpus: Vec<u32>,
        /// Attempt number.
        number: u32,
        /// Retries left after this attempt.
        retries_left: u32,
    },
}

/// How an attempt ended, as the machine sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ended {
    /// It succeeded with these outputs.
    Succeeded(StepOutputs),
    /// It failed; `retryable` per its failure class.
    Failed {
        /// Whether the class allows a retry.
        retryable: bool,
    },
    /// It was stopped (cancellation, a lost lease, the store failing).
    Interrupted,
    /// The executor lost it, or it ended with the runner that started it: not the step's
    /// fault, so it runs again without using a retry.
    Lost,
}

/// What [`Machine::on_finished`] decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transition {
    /// The step is done.
    Done,
    /// Another attempt starts after `delay`.
    Retry {
        /// The wait.
        delay: Duration,
        /// Attempts made so far in this pass.
        attempts: u32,
    },
    /// The step failed for good.
    Failed,
    /// The step is interrupted.
    Interrupted,
    /// The attempt was lost: the step runs again now (no retry used).
    Requeued,
}

/// Whether a step's dependencies allow it to start.
enum Upstream {
    Ready,
    NotReady,
    Blocked(StepId),
}

/// The state of every step of a run in one scheduler pass.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    steps: Vec<StepSpec>,
    slots: Vec<Slot>,
    all_gpus: Vec<u32>,
    free_gpus: BTreeSet<u32>,
    jobs: usize,
    stopping: bool,
}

impl Machine {
    /// A machine with every step waiting, `jobs` at once (at least 1) on the GPU slots `gpus`.
    pub(crate) fn new(steps: Vec<StepSpec>, gpus: &[u32], jobs: usize) -> Self {
        let slots = steps
            .iter()
            .map(|_| Slot {
                state: SlotState::Waiting { not_before: None },
                fingerprint: None,
                attempts: 0,
                next_number: 1,
                gpus: Vec::new(),
                lost: 0,
            })
            .collect();
        Self {
            steps,
            slots,
            all_gpus: gpus.to_vec(),
            free_gpus: gpus.iter().copied().collect(),
            jobs: jobs.max(1),
            stopping: false,
        }
    }

    /// Marks a step finished before this pass (resume), with its outputs and fingerprint.
    pub(crate) fn restore_done(
        &mut self,
        index: usize,
        outputs: StepOutputs,
        fingerprint: Option<String>,
    ) {
        let slot = &mut self.slots[index];
        slot.state = SlotState::Done(outputs);
        slot.fingerprint = fingerprint;
    }

    /// Marks a step whose attempt a previous runner left live and this one re-attached to:
    /// running from the start, holding its job and those of its GPU slots this runner has.
    pub(crate) fn restore_running(&mut self, index: usize, gpus: &[u32]) {
        let held: Vec<u32> = gpus
            .iter()
            .copied()
            .filter(|gpu| self.free_gpus.remove(gpu))
            .collect();
        let slot = &mut self.slots[index];
        slot.gpus = held;
        slot.state = SlotState::Running;
        slot.attempts = 1;
    }

    /// Sets the number the next attempt of a step gets (numbers continue across resumes).
    pub(crate) fn set_next_number(&mut self, index: usize, number: u32) {
        self.slots[index].next_number = self.slots[index].next_number.max(number);
    }

    /// A step's slot.
    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    /// The position of a step.
    pub(crate) fn position(&self, id: &StepId) -> Option<usize> {
        self.steps.iter().position(|s| &s.id == id)
    }

    /// The outputs of a finished step.
    pub(crate) fn outputs(&self, index: usize) -> Option<&StepOutputs> {
        match &self.slots[index].state {
            SlotState::Done(outputs) => Some(outputs),
            _ => None,
        }
    }

    /// Records a step's fingerprint.
    pub(crate) fn set_fingerprint(&mut self, index: usize, fingerprint: String) {
        self.slots[index].fingerprint = Some(fingerprint);
    }

    /// Steps holding a job (preparing or running).
    pub(crate) fn active(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Preparing | SlotState::Running))
            .count()
    }

    /// Whether the run is stopping (no step starts any more).
    pub(crate) fn stopping(&self) -> bool {
        self.stopping
    }

    fn upstream(&self, index: usize) -> Upstream {
        let mut ready = true;
        for &position in &self.steps[index].needs {
            match self.slots[position].state {
                SlotState::Done(_) => {}
                SlotState::Failed | SlotState::Skipped => {
                    return Upstream::Blocked(self.steps[position].id.clone());
                }
                _ => ready = false,
            }
        }
        if ready {
            Upstream::Ready
        } else {
            Upstream::NotReady
        }
    }

    /// Decides what starts now: waiting steps whose upstream finished, within the free jobs
    /// and GPU slots, in plan order; steps behind a failed upstream are skipped and steps that
    /// can never get their GPUs fail. The chosen steps move to [`SlotState::Preparing`].
    pub(crate) fn start_ready(&mut self, now: Instant) -> Vec<Start> {
        let mut decisions = Vec::new();
        if self.stopping {
            return decisions;
        }
        for index in 0..self.steps.len() {
            let SlotState::Waiting { not_before } = self.slots[index].state else {
                continue;
            };
            match self.upstream(index) {
                Upstream::Blocked(because) => {
                    self.slots[index].state = SlotState::Skipped;
                    decisions.push(Start::Skip { index, because });
                    continue;
                }
                Upstream::NotReady => continue,
                Upstream::Ready => {}
            }
            let want = self.steps[index].gpus as usize;
            if want > self.all_gpus.len() {
                self.slots[index].state = SlotState::Failed;
                let message = format!(
                    "needs {want} GPU slot(s) but this runner has {} (pass --gpus or set CUDA_VISIBLE_DEVICES)",
                    self.all_gpus.len()
                );
                decisions.push(Start::Impossible { index, message });
                continue;
            }
            if not_before.is_some_and(|t| t > now)
                || self.active() >= self.jobs
                || want > self.free_gpus.len()
            {
                continue;
            }
            decisions.push(self.take(index, want));
        }
        decisions
    }

    fn take(&mut self, index: usize, want: usize) -> Start {
        let gpus: Vec<u32> = self.free_gpus.iter().copied().take(want).collect();
        for gpu in &gpus {
            self.free_gpus.remove(gpu);
        }
        let spec = &self.steps[index];
        let slot = &mut self.slots[index];
        slot.state = SlotState::Preparing;
        slot.gpus.clone_from(&gpus);
        slot.attempts += 1;
        let number = slot.next_number;
        slot.next_number += 1;
        Start::Prepare {
            index,
            gpus,
            number,
            retries_left: spec.retries.saturating_sub(slot.attempts - 1),
        }
    }

    fn release(&mut self, index: usize) {
        let gpus = std::mem::take(&mut self.slots[index].gpus);
        self.free_gpus.extend(gpus);
    }

    /// A preparing step reused a cached result: done without an attempt.
    pub(crate) fn on_cached(&mut self, index: usize, outputs: StepOutputs) {
        self.release(index);
        let slot = &mut self.slots[index];
        slot.attempts = slot.attempts.saturating_sub(1);
        slot.next_number -= 1;
        slot.state = SlotState::Done(outputs);
    }

    /// A preparing step cannot start (bad input): failed without an attempt.
    pub(crate) fn on_rejected(&mut self, index: usize) {
        self.release(index);
        let slot = &mut self.slots[index];
        slot.next_number -= 1;
        slot.state = SlotState::Failed;
    }

    /// A preparing step's attempt was submitted.
    pub(crate) fn on_submitted(&mut self, index: usize) {
        self.slots[index].state = SlotState::Running;
    }

    /// A preparing step was not submitted because the run stops: it stays to be resumed.
    pub(crate) fn on_withdrawn(&mut self, index: usize) {
        self.release(index);
        self.slots[index].state = SlotState::Interrupted;
    }

    /// An attempt ended: frees its job and GPU slots and decides the step's next state. A
    /// retryable failure with retries left waits `retry_backoff · 2^(attempts-1)` (at most
    /// [`MAX_RETRY_DELAY`]) unless the run is stopping.
    pub(crate) fn on_finished(&mut self, index: usize, ended: Ended, now: Instant) -> Transition {
        self.release(index);
        let spec = &self.steps[index];
        let slot = &mut self.slots[index];
        let (state, transition) = match ended {
            Ended::Succeeded(outputs) => (SlotState::Done(outputs), Transition::Done),
            Ended::Interrupted => (SlotState::Interrupted, Transition::Interrupted),
            Ended::Lost if self.stopping => (SlotState::Interrupted, Transition::Interrupted),
            Ended::Lost if slot.lost < MAX_LOST => {
                slot.lost += 1;
                slot.attempts = slot.attempts.saturating_sub(1);
                let state = SlotState::Waiting { not_before: None };
                (state, Transition::Requeued)
            }
            Ended::Lost => (SlotState::Failed, Transition::Failed),
            Ended::Failed { retryable } => {
                let retries_left = spec.retries.saturating_sub(slot.attempts.saturating_sub(1));
                if retryable && retries_left > 0 && !self.stopping {
                    let exponent = slot.attempts.saturating_sub(1).min(16);
                    let delay = (spec.retry_backoff * 2u32.pow(exponent)).min(MAX_RETRY_DELAY);
                    let transition = Transition::Retry {
                        delay,
                        attempts: slot.attempts,
                    };
                    let state = SlotState::Waiting {
                        not_before: Some(now + delay),
                    };
                    (state, transition)
                } else {
                    (SlotState::Failed, Transition::Failed)
                }
            }
        };
        slot.state = state;
        transition
    }

    /// The run is being stopped: no step starts any more and no failure is retried. Steps
    /// waiting stay pending (a resume runs them); running ones end through
    /// [`Machine::on_finished`].
    pub(crate) fn on_cancel(&mut self) {
        self.stopping = true;
    }

    /// When a waiting step's backoff ends, if any step waits for one (and the run goes on).
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        if self.stopping {
            return None;
        }
        self.slots
            .iter()
            .filter_map(|slot| match slot.state {
                SlotState::Waiting { not_before } => not_before,
                _ => None,
            })
            .min()
    }

    /// Whether the pass is over: nothing is preparing or running, and the run is stopping or
    /// no waiting step can start now or after a backoff.
    pub(crate) fn is_over(&self) -> bool {
        if self.active() > 0 {
            return false;
        }
        if self.stopping {
            return true;
        }
        !(0..self.steps.len()).any(|index| {
            matches!(self.slots[index].state, SlotState::Waiting { .. })
                && !matches!(self.upstream(index), Upstream::Blocked(_))
        })
    }
}

#[cfg(test)]
mod tests;
