//! Which ticks fire: the missed-tick policy (`--missed`) and the overlap policy (`--overlap`).
//! Pure functions of their arguments, no I/O.
//!
//! A tick is on time when the scheduler sees it at most `late_after` after its time; older
//! ticks were missed (no scheduler was running, or it was stopped). On-time ticks always fire;
//! missed ones follow `--missed`:
//! - `skip`: none fires;
//! - `latest`: the newest missed tick fires when no on-time tick does (one catch-up run);
//! - `all:N`: the newest N missed ticks fire, oldest first.
//!
//! Ticks that do not fire are recorded as skipped, with the reason.

/// What happens to ticks missed while no scheduler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missed {
    /// None fires.
    Skip,
    /// The newest fires, unless an on-time tick does.
    Latest,
    /// The newest N fire.
    All(u32),
}

/// What happens to a tick while an earlier run of the schedule is unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overlap {
    /// It is skipped (recorded as such).
    Skip,
    /// It waits until the earlier runs end, then fires.
    Queue,
    /// It fires at once, beside the earlier run.
    Allow,
}

impl std::str::FromStr for Missed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "skip" => Ok(Missed::Skip),
            "latest" => Ok(Missed::Latest),
            _ => match text.strip_prefix("all:").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Ok(Missed::All(n)),
                _ => Err(format!(
                    "--missed {text}: use skip, latest or all:N (N >= 1, the newest N missed ticks fire)"
                )),
            },
        }
    }
}

impl std::fmt::Display for Missed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missed::Skip => f.write_str("skip"),
            Missed::Latest => f.write_str("latest"),
            Missed::All(n) => write!(f, "all:{n}"),
        }
    }
}

impl std::str::FromStr for Overlap {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            _ => Err(format!("--overlap {text}: use skip, queue or allow")),
        }
    }
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        })
    }
}

/// The ticks that fire and those that are skipped (with why), each oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// Ticks to fire.
    pub(crate) fire: Vec<i64>,
    /// Ticks to record as skipped.
    pub(crate) skip: Vec<(i64, String)>,
}

/// Splits `ticks` (oldest first, all at or before `now`) into those that fire and those
/// skipped, by lateness and the missed policy.
pub(crate) fn due_ticks(ticks: &[i64], now: i64, late_after_ms: i64, missed: Missed) -> Due {
    let (late, on_time): (Vec<i64>, Vec<i64>) =
        ticks.iter().partition(|&&tick| now - tick > late_after_ms);
    let catch_up: Vec<i64> = match missed {
        Missed::Latest if on_time.is_empty() => late.last().copied().into_iter().collect(),
        Missed::Skip | Missed::Latest => Vec::new(),
        Missed::All(n) => late[late.len().saturating_sub(n as usize)..].to_vec(),
    };
    let reason = format!("missed: no scheduler saw it on time (--missed {missed})");
    let skip = late
        .iter()
        .filter(|tick| !catch_up.contains(tick))
        .map(|&tick| (tick, reason.clone()))
        .collect();
    let mut fire = catch_up;
    fire.extend(on_time);
    Due { fire, skip }
}

/// Whether a claimed tick may start now, given its schedule's policy and whether an earlier
/// tick of the same schedule is unfinished (its run not yet ended).
pub(crate) fn may_start(overlap: Overlap, earlier_unfinished: bool) -> bool {
    match overlap {
        // A skip schedule skipped the tick when it was claimed if a run was going; one claimed
        // anyway (a re-driven tick) starts.
        Overlap::Allow | Overlap::Skip => true,
        Overlap::Queue => !earlier_unfinished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATE: i64 = 60_000;

    #[test]
    fn on_time_ticks_fire_whatever_the_policy() {
        for missed in [Missed::Skip, Missed::Latest, Missed::All(2)] {
            let due = due_ticks(&[100_000], 130_000, LATE, missed);
            assert_eq!(due.fire, [100_000]);
            assert!(due.skip.is_empty());
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        // Down from before 0 until 500 s: ticks every 100 s, the one at 500 s is on time.
        let ticks = [100_000, 200_000, 300_000, 400_000, 500_000];
        let skip = due_ticks(&ticks, 500_000, LATE, Missed::Skip);
        assert_eq!(skip.fire, [500_000]);
        assert_eq!(skip.skip.len(), 4);
        assert!(skip.skip[0].1.contains("--missed skip"), "{:?}", skip.skip);

        let latest = due_ticks(&ticks, 500_000, LATE, Missed::Latest);
        assert_eq!(latest.fire, [500_000], "the on-time tick is the latest run");
        let latest = due_ticks(&ticks[..4], 500_000, LATE, Missed::Latest);
        assert_eq!(latest.fire, [400_000]);
        assert_eq!(
            latest.skip.iter().map(|s| s.0).collect::<Vec<_>>(),
            [100_000, 200_000, 300_000]
        );

        let all2 = due_ticks(&ticks, 500_000, LATE, Missed::All(2));
        assert_eq!(all2.fire, [300_000, 400_000, 500_000]);
        assert_eq!(
            all2.skip.iter().map(|s| s.0).collect::<Vec<_>>(),
            [100_000, 200_000]
        );
        let all9 = due_ticks(&ticks, 500_000, LATE, Missed::All(9));
        assert_eq!(all9.fire, ticks);
        assert!(all9.skip.is_empty());
    }

    #[test]
    fn policies_parse_and_print_back() {
        for text in ["skip", "latest", "all:3"] {
            assert_eq!(text.parse::<Missed>().unwrap().to_string(), text);
        }
        for text in ["skip", "queue", "allow"] {
            assert_eq!(text.parse::<Overlap>().unwrap().to_string(), text);
        }
        assert!("all:0".parse::<Missed>().unwrap_err().contains("all:N"));
        assert!("some".parse::<Missed>().is_err());
        assert!(
            "wait"
                .parse::<Overlap>()
                .unwrap_err()
                .contains("skip, queue or allow")
        );
    }

    #[test]
    fn queued_ticks_wait_for_earlier_runs() {
        assert!(!may_start(Overlap::Queue, true));
        assert!(may_start(Overlap::Queue, false));
        assert!(may_start(Overlap::Allow, true));
    }
}
