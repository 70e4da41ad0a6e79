//! MetaMath-style low-edit pairs, as the DPOP paper built its MetaMath pairs: the rejected
//! answer is the worked solution with one intermediate result changed and everything else kept,
//! including the later lines that use the correct value and the final `#### N` line.
//!
//! Candidates are the numbers right after `=` on the lines before the final answer line
//! (`#### N`, or MetaMathQA's `The answer is: N`). With GSM8K calculator annotations kept
//! (`<<16-3-4=9>>9`), the annotation's result and the visible copy after it change together, so
//! the line still reads as one wrong computation; stripped (the default), one number changes.

use rand::RngExt;
use rand::seq::IndexedRandom;
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

/// A number as written in solutions: `7`, `1,250`, `3.75`.
pub(crate) const NUMBER_PATTERN: &str = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?";

static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(NUMBER_PATTERN).expect("regex"));
static ANNOTATION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<<[^<>]*>>").expect("regex"));
static ANNOTATED_RESULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"<<[^<>=]*=\s*({NUMBER_PATTERN})>>({NUMBER_PATTERN})?"
    ))
    .expect("regex")
});
static RESULT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"=\s*\$?\s*({NUMBER_PATTERN})")).expect("regex"));
static FINAL_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:####\s*\S|The answer is:?\s*\S)").expect("regex"));

/// Removes GSM8K calculator annotations (`<<2*3=6>>`).
pub fn strip_annotations(text: &str) -> String {
    ANNOTATION.replace_all(text, "").into_owned()
}

/// Every number in `text`, in order (for checking that a pair differs in exactly one).
pub fn numbers(text: &str) -> Vec<&str> {
    NUMBER.find_iter(text).map(|found| found.as_str()).collect()
}

/// The text after `####` on the final answer line, if there is one.
pub fn final_answer(solution: &str) -> Option<&str> {
    solution
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("####").map(str::trim))
}

/// One changed intermediate result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowEdit {
    /// The solution with the changed result.
    pub rejected: String,
    /// 0-based line of the change.
    pub line: usize,
    /// The correct value as written.
    pub original: String,
    /// The value put in its place.
    pub replacement: String,
}

/// Why a solution gives no low-edit pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LowEditSkip {
    /// No `#### N` / `The answer is: N` line.
    NoFinalAnswer,
    /// No `= number` before the final line.
    NoIntermediateResult,
}

impl LowEditSkip {
    /// Stable name for reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LowEditSkip::NoFinalAnswer => "no_final_answer",
            LowEditSkip::NoIntermediateResult => "no_intermediate_result",
        }
    }
}

/// Changes one intermediate result of `solution`, chosen with `rng`.
pub(crate) fn corrupt_solution(
    solution: &str,
    rng: &mut impl rand::Rng,
) -> Result<LowEdit, LowEditSkip> {
    let lines: Vec<&str> = solution.split('\n').collect();
    let final_line = lines
        .iter()
        .rposition(|line| FINAL_LINE.is_match(line))
        .ok_or(LowEditSkip::NoFinalAnswer)?;
    // Each candidate: its line and the byte ranges in that line that hold the same value.
    let mut candidates: Vec<(usize, Vec<Range<usize>>)> = Vec::new();
    for (index, line) in lines[..final_line].iter().enumerate() {
        let annotations: Vec<Range<usize>> = ANNOTATION
            .find_iter(line)
            .map(|found| found.range())
            .collect();
        for found in ANNOTATED_RESULT.captures_iter(line) {
            // Group 1 is not optional: every match has it.
            let Some(result) = found.get(1) else {
                continue;
            };
            let mut ranges = vec![result.range()];
            if let Some(visible) = found
                .get(2)
                .filter(|visible| visible.as_str() == result.as_str())
            {
                ranges.push(visible.range());
            }
            candidates.push((index, ranges));
        }
        for found in RESULT.captures_iter(line) {
            // Group 1 is not optional: every match has it.
            let Some(result) = found.get(1) else {
                continue;
            };
            let inside = annotations
                .iter()
                .any(|annotation| annotation.contains(&result.start()));
            if !inside {
                candidates.push((index, vec![result.range()]));
            }
        }
    }
    let (line_index, ranges) = candidates
        .choose(rng)
        .ok_or(LowEditSkip::NoIntermediateResult)?
        .clone();
    let line = lines[line_index];
    let original = line[ranges[0].clone()].to_owned();
    let replacement = perturb(&original, rng);
    let mut changed = line.to_owned();
    for range in ranges.iter().rev() {
        changed.replace_range(range.clone(), &replacement);
    }
    let mut out: Vec<&str> = lines.clone();
    out[line_index] = &changed;
    Ok(LowEdit {
        rejected: out.join("\n"),
        line: line_index,
        original,
        replacement,
    })
}

/// A different, plausible value written like `original` (same decimals, same digit grouping):
/// the value moves by 1 to max(1, 20%) of itself in units of its last digit, and stays
/// non-negative.
pub(crate) fn perturb(original: &str, rng: &mut impl rand::Rng) -> String {
    let grouped = original.contains(',');
    let plain = original.replace(',', "");
    let decimals = plain
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let units: u128 = plain.replace('.', "").parse().unwrap_or(0);
    let largest_step = u64::try_from((units / 5).max(1)).unwrap_or(u64::MAX);
    let step = u128::from(rng.random_range(1..=largest_step));
    let value = if rng.random_bool(0.5) && units >= step {
        units - step
    } else {
        units + step
    };
    format_units(value, decimals, grouped)
}

fn format_units(units: u128, decimals: usize, grouped: bool) -> String {
    let digits = format!("{units:0>width$}", width = decimals + 1);
    let (whole, fraction) = digits.split_at(digits.len() - decimals);
    let whole = if grouped {
        let mut out = String::new();
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        out
    } else {
        whole.to_owned()
    };
    if decimals == 0 {
        whole
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stable::row_rng;

    #[test]
    fn values_keep_their_written_form() {
        assert_eq!(format_units(125_000, 0, true), "125,000");
        assert_eq!(format_units(375, 2, false), "3.75");
        assert_eq!(format_units(5, 2, false), "0.05");
        let mut rng = row_rng(1, "x");
        for original in ["0", "7", "1,250", "3.75", "100"] {
            for _ in 0..50 {
                let changed = perturb(original, &mut rng);
                assert_ne!(changed, original);
                assert_eq!(changed.contains('.'), original.contains('.'), "{changed}");
            }
        }
    }

    #[test]
    fn one_intermediate_result_changes_and_the_rest_stays() {
        let solution = "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18";
        for seed in 0..20 {
            let edit = corrupt_solution(solution, &mut row_rng(seed, "janet")).unwrap();
            let before = numbers(solution);
            let after = numbers(&edit.rejected);
            assert_eq!(before.len(), after.len());
            let differing = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert_eq!(differing, 1, "{}", edit.rejected);
            assert!(edit.rejected.ends_with("\n#### 18"));
            assert!(["9", "18"].contains(&edit.original.as_str()));
        }
    }

    #[test]
    fn annotated_results_change_together() {
        let solution = "It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\n#### 3";
        let edit = corrupt_solution(solution, &mut row_rng(3, "robe")).unwrap();
        let line = edit.rejected.lines().nth(edit.line).unwrap();
        let value = &edit.replacement;
        assert!(line.contains(&format!("={value}>>{value}")), "{line}");
        assert!(edit.rejected.ends_with("#### 3"));
    }

    #[test]
    fn solutions_without_a_place_to_edit_are_skipped() {
        let mut rng = row_rng(0, "k");
        assert_eq!(
            corrupt_solution("no answer line", &mut rng),
            Err(LowEditSkip::NoFinalAnswer)
        );
        assert_eq!(
            corrupt_solution("Just 4 apples.\n#### 4", &mut rng),
            Err(LowEditSkip::NoIntermediateResult)
        );
        assert_eq!(final_answer("a\n#### 1,000 "), Some("1,000"));
    }
}
