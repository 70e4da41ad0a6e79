//! Metrics, progress, and the event stream a step sends to its runner.
//!
//! Step code records through the [`MetricsSink`] and [`ProgressReporter`] traits. Inside a step
//! process both are an [`EventWriter`], which writes one JSON [`StepEvent`] per line; the runner
//! reads the lines with [`parse_event_line`] and fans them out to the console, the store and
//! tracing. Tests use [`MemorySink`].

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One message from a running step to its runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StepEvent {
    /// A scalar metric at a step index (a training step, an evaluation task number, 0 for one-off
    /// values). A (key, index) pair is recorded once per attempt.
    Metric {
        /// Metric name, `/`-separated namespaces, e.g. `train/loss`, `rewards/margins`.
        key: String,
        /// Position of the value in its series.
        index: u64,
        /// The value.
        value: f64,
    },
    /// How far the current phase of the step is.
    Progress {
        /// What is being counted, e.g. `tokenise`, `train`, `ref_logps`.
        phase: String,
        /// Units done.
        position: u64,
        /// Units in the phase, when known.
        total: Option<u64>,
    },
}

/// Where a step records scalar metrics.
pub trait MetricsSink: Send + Sync {
    /// Records `value` for `key` at `index`.
    fn record(&self, key: &str, index: u64, value: f64);
}

/// Where a step reports how far it is.
pub trait ProgressReporter: Send + Sync {
    /// Starts a phase with `total` units (unknown when `None`) at position 0.
    fn start_phase(&self, phase: &str, total: Option<u64>);
    /// Sets the position within the current phase.
    fn set_position(&self, position: u64);
}

/// A progress reporter that drops everything, for library callers without a console.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullProgress;

impl ProgressReporter for NullProgress {
    fn start_phase(&self, _phase: &str, _total: Option<u64>) {}
    fn set_position(&self, _position: u64) {}
}

/// A metrics sink and progress reporter that keeps every event in memory, for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<StepEvent>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<StepEvent> {
        lock(&self.events).clone()
    }

    /// The values recorded for `key`, as (index, value) in recording order.
    pub fn series(&self, key: &str) -> Vec<(u64, f64)> {
        lock(&self.events)
            .iter()
            .filter_map(|event| match event {
                StepEvent::Metric {
                    key: k,
                    index,
                    value,
                } if k == key => Some((*index, *value)),
                _ => None,
            })
            .collect()
    }
}

impl MetricsSink for MemorySink {
    fn record(&self, key: &str, index: u64, value: f64) {
        lock(&self.events).push(StepEvent::Metric {
            key: key.to_owned(),
            index,
            value,
        });
    }
}

impl ProgressReporter for MemorySink {
    fn start_phase(&self, phase: &str, total: Option<u64>) {
        lock(&self.events).push(StepEvent::Progress {
            phase: phase.to_owned(),
            position: 0,
            total,
        });
    }

    fn set_position(&self, position: u64) {
        let mut events = lock(&self.events);
        let current = events.iter().rev().find_map(|event| match event {
            StepEvent::Progress { phase, total, .. } => Some((phase.clone(), *total)),
            StepEvent::Metric { .. } => None,
        });
        if let Some((phase, total)) = current {
            events.push(StepEvent::Progress {
                phase,
                position,
                total,
            });
        }
    }
}

/// Writes events as JSON lines, flushing each one so the runner sees it at once.
///
/// Progress is throttled to one line per `progress_interval` (the last position of a phase is
/// always written); metrics are never dropped.
pub struct EventWriter<W: Write + Send> {
    state: Mutex<WriterState<W>>,
    progress_interval: Duration,
}

struct WriterState<W> {
    out: W,
    phase: String,
    total: Option<u64>,
    last_progress: Option<Instant>,
    failed: bool,
}

impl<W: Write + Send> EventWriter<W> {
    /// A writer that emits at most ten progress lines a second.
    pub fn new(out: W) -> Self {
        Self::with_progress_interval(out, Duration::from_millis(100))
    }

    /// A writer with a chosen progress throttle.
    pub(crate) fn with_progress_interval(out: W, progress_interval: Duration) -> Self {
        Self {
            state: Mutex::new(WriterState {
                out,
                phase: String::new(),
                total: None,
                last_progress: None,
                failed: false,
            }),
            progress_interval,
        }
    }

    fn write(state: &mut WriterState<W>, event: &StepEvent) {
        if state.failed {
            return;
        }
        let result = serde_json::to_writer(&mut state.out, event)
            .map_err(std::io::Error::other)
            .and_then(|()| state.out.write_all(b"\n"))
            .and_then(|()| state.out.flush());
        if let Err(error) = result {
            // The runner is gone or the disk is full; the step keeps going and its result file
            // still records the outcome. Say it once on stderr (the step's log).
            eprintln!("erebor: cannot write step events any more: {error}");
            state.failed = true;
        }
    }
}

impl<W: Write + Send> MetricsSink for EventWriter<W> {
    fn record(&self, key: &str, index: u64, value: f64) {
        let mut state = lock(&self.state);
        Self::write(
            &mut state,
            &StepEvent::Metric {
                key: key.to_owned(),
                index,
                value,
            },
        );
    }
}

impl<W: Write + Send> ProgressReporter for EventWriter<W> {
    fn start_phase(&self, phase: &str, total: Option<u64>) {
        let mut state = lock(&self.state);
        phase.clone_into(&mut state.phase);
        state.total = total;
        state.last_progress = Some(Instant::now());
        let event = StepEvent::Progress {
            phase: phase.to_owned(),
            position: 0,
            total,
        };
        Self::write(&mut state, &event);
    }

    fn set_position(&self, position: u64) {
        let mut state = lock(&self.state);
        let finished = state.total == Some(position);
        let due = state
            .last_progress
            .is_none_or(|last| last.elapsed() >= self.progress_interval);
        if !(finished || due) {
            return;
        }
        state.last_progress = Some(Instant::now());
        let event = StepEvent::Progress {
            phase: state.phase.clone(),
            position,
            total: state.total,
        };
        Self::write(&mut state, &event);
    }
}

/// Parses one line of a step's event stream. Blank lines give `Ok(None)`.
pub fn parse_event_line(line: &str) -> Result<Option<StepEvent>, serde_json::Error> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(line).map(Some)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_lines_parse_back_to_the_same_events() {
        let writer = EventWriter::with_progress_interval(Vec::new(), Duration::ZERO);
        writer.start_phase("train", Some(2));
        writer.record("train/loss", 1, 0.5);
        writer.set_position(2);
        let bytes = writer.state.into_inner().unwrap().out;
        let text = String::from_utf8(bytes).unwrap();
        let events: Vec<_> = text
            .lines()
            .map(|line| parse_event_line(line).unwrap().unwrap())
            .collect();
        assert_eq!(
            events,
            vec![
                StepEvent::Progress {
                    phase: "train".into(),
                    position: 0,
                    total: Some(2)
                },
                StepEvent::Metric {
                    key: "train/loss".into(),
                    index: 1,
                    value: 0.5
                },
                StepEvent::Progress {
                    phase: "train".into(),
                    position: 2,
                    total: Some(2)
                },
            ]
        );
    }

    #[test]
    fn progress_is_throttled_but_the_last_position_is_kept() {
        let writer = EventWriter::with_progress_interval(Vec::new(), Duration::from_hours(1));
        writer.start_phase("tokenise", Some(100));
        for position in 1..=100 {
            writer.set_position(position);
        }
        let text = String::from_utf8(writer.state.into_inner().unwrap().out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().last().unwrap().contains("\"position\":100"));
    }

    #[test]
    fn memory_sink_returns_series_by_key() {
        let sink = MemorySink::new();
        sink.record("a", 0, 1.0);
        sink.record("b", 0, 5.0);
        sink.record("a", 1, 2.0);
        assert_eq!(sink.series("a"), vec![(0, 1.0), (1, 2.0)]);
    }
}
