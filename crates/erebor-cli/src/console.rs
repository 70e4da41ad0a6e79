//! The console subscriber: one progress bar per running step (phase, position, latest
//! metric), and a line per step that finishes, fails, is cached or skipped.

use erebor_core::StepId;
use erebor_engine::{EngineEvent, Subscriber};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Draws progress bars on stderr.
pub(crate) struct Console {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// Bars on stderr.
    pub(crate) fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::default(),
        }
    }

    fn bar(&self, step: &str) -> ProgressBar {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bars.entry(step.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style());
                bar.set_prefix(step.to_owned());
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            })
            .clone()
    }

    fn finish(&self, step: &str, line: String) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(step)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.println(line);
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<20} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:<20} {msg} {wide_bar} {pos}/{len} {elapsed} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Subscriber for Console {
    fn on_event(&self, event: &EngineEvent) {
        if let Some((step, line)) = finished_line(event) {
            self.finish(step.as_str(), line);
            return;
        }
        match event {
            EngineEvent::RunStarted {
                run_id,
                steps,
                done,
            } => {
                let resumed = if *done > 0 {
                    format!(", {done} already done")
                } else {
                    String::new()
                };
                let _ = self
                    .multi
                    .println(format!("run {run_id}: {steps} steps{resumed}"));
            }
            EngineEvent::StepStarted {
                step,
                attempt,
                gpus,
            } => {
                let bar = self.bar(step.as_str());
                let gpus = if gpus.is_empty() {
                    String::new()
                } else {
                    format!(" gpus {gpus:?}")
                };
                bar.set_message(format!("attempt {attempt}{gpus}"));
            }
            EngineEvent::StepProgress {
                step,
                phase,
                position,
                total,
            } => {
                let bar = self.bar(step.as_str());
                match total {
                    Some(total) => {
                        if bar.length() != Some(*total) {
                            bar.set_style(bar_style());
                            bar.set_length(*total);
                        }
                        bar.set_position(*position);
                        bar.set_message(phase.clone());
                    }
                    None => bar.set_message(format!("{phase} {position}")),
                }
            }
            EngineEvent::StepMetric {
                step,
                key,
                index,
                value,
            } => {
                let bar = self.bar(step.as_str());
                bar.set_message(format!("{key}={} @{index}", crate::format::number(*value)));
            }
            EngineEvent::StepRetrying {
                step,
                attempt,
                delay,
                message,
            } => {
                let _ = self.multi.println(format!(
                    "  retry      {step} after attempt {attempt} failed ({message}); next in {delay:.0?}"
                ));
            }
            _ => {}
        }
    }
}

/// The step and the line for an event that ends its bar: cached, succeeded, failed, skipped
/// or interrupted; `None` for any other event.
fn finished_line(event: &EngineEvent) -> Option<(&StepId, String)> {
    let line = match event {
        EngineEvent::StepCached { step, from_run } => {
            (step, format!("  cached     {step} (from run {from_run})"))
        }
        EngineEvent::StepSucceeded {
            step,
            elapsed,
            expect_failures,
        } => {
            let mut line = format!(
                "  done       {step} in {}",
                crate::format::duration_ms(crate::format::millis(*elapsed))
            );
            for failure in expect_failures {
                line.push_str(&format!("\n  expect     {step}: {failure}"));
            }
            (step, line)
        }
        EngineEvent::StepFailed {
            step,
            class,
            message,
            log,
        } => {
            let log = if log.is_empty() {
                String::new()
            } else {
                format!("\n             log: {log}")
            };
            (
                step,
                format!("  FAILED     {step} ({class}): {message}{log}"),
            )
        }
        EngineEvent::StepSkipped { step, because } => (
            step,
            format!("  skipped    {step} ({because} did not succeed)"),
        ),
        EngineEvent::StepInterrupted { step } => (step, format!("  interrupted {step}")),
        _ => return None,
    };
    Some(line)
}
