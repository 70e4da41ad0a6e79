//! Per-document metrics with the harness's exact semantics.
//!
//! - [`argmax`] is numpy's: the first maximum wins ties, and a NaN wins over everything.
//! - `acc_norm` divides each log-likelihood by the character length (Python `len`, Unicode
//!   code points) of its choice without the leading space the continuation adds.
//! - TruthfulQA's mc1 (the first-listed, true answer has the highest log-likelihood) and mc2
//!   (normalised probability mass on the true answers).
//! - GSM8K's answer extraction (`#### (\-?[0-9\.\,]+)`, commas removed, `[invalid]` when
//!   absent) and lm-eval 0.4's regex filter and `exact_match`.

use std::sync::LazyLock;

use regex::Regex;

/// What lm-eval writes when a generation has no extractable answer.
pub const INVALID_ANSWER: &str = "[invalid]";

/// The GSM8K answer pattern of both harnesses.
pub(crate) const GSM8K_ANSWER_PATTERN: &str = r"#### (\-?[0-9\.\,]+)";

static GSM8K_ANSWER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(GSM8K_ANSWER_PATTERN).expect("valid GSM8K pattern"));

/// numpy's `argmax`: index of the first maximum; the first NaN if there is one; 0 when empty.
pub fn argmax(values: &[f64]) -> usize {
    if let Some(nan) = values.iter().position(|v| v.is_nan()) {
        return nan;
    }
    let mut best = 0;
    for (i, &value) in values.iter().enumerate() {
        if value > values[best] {
            best = i;
        }
    }
    best
}

/// 1.0 when the highest log-likelihood is the gold choice's.
pub fn acc(loglikelihoods: &[f64], gold: usize) -> f64 {
    f64::from(u8::from(argmax(loglikelihoods) == gold))
}

/// Python's `len` of a string: Unicode code points.
pub(crate) fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// 1.0 when the highest length-normalised log-likelihood is the gold choice's; `choices` are
/// the answer texts without the continuation's leading space.
pub fn acc_norm(loglikelihoods: &[f64], choices: &[String], gold: usize) -> f64 {
    let normalised: Vec<f64> = loglikelihoods
        .iter()
        .zip(choices)
        .map(|(ll, choice)| ll / char_len(choice) as f64)
        .collect();
    acc(&normalised, gold)
}

/// TruthfulQA mc1: 1.0 when the correct answer (index `gold`; first in the HF data) has the
/// highest log-likelihood.
pub fn mc1(loglikelihoods: &[f64], gold: usize) -> f64 {
    acc(loglikelihoods, gold)
}

/// TruthfulQA mc2: `Σ_true e^ll / (Σ_true e^ll + Σ_false e^ll)`. The true answers are those
/// before the first 0 label, as the harness splits them. Computed as the harness does (plain
/// exponentials); when those underflow to a zero or infinite total, the same quantity is
/// computed shifted by the largest log-likelihood.
pub fn mc2(loglikelihoods: &[f64], labels: &[u8]) -> f64 {
    let split = labels
        .iter()
        .position(|&label| label == 0)
        .unwrap_or(labels.len())
        .min(loglikelihoods.len());
    let plain = mc2_with_shift(loglikelihoods, split, 0.0);
    if plain.is_finite() {
        return plain;
    }
    let shift = loglikelihoods
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    mc2_with_shift(loglikelihoods, split, shift)
}

fn mc2_with_shift(loglikelihoods: &[f64], split: usize, shift: f64) -> f64 {
    let probabilities: Vec<f64> = loglikelihoods.iter().map(|ll| (ll - shift).exp()).collect();
    let (true_p, false_p) = probabilities.split_at(split);
    let total = true_p.iter().sum::<f64>() + false_p.iter().sum::<f64>();
    true_p.iter().map(|p| p / total).sum()
}

/// GSM8K (b281b09 `_extract_answer`): the first `#### N` match's number, stripped, commas
/// removed; [`INVALID_ANSWER`] when there is none.
pub fn gsm8k_extract(text: &str) -> String {
    match GSM8K_ANSWER.captures(text) {
        Some(captures) => captures[1].trim().replace(',', ""),
        None => INVALID_ANSWER.to_string(),
    }
}

/// GSM8K (b281b09 `_is_correct`): the extracted answers are equal strings. `None` when the
/// reference itself has no `#### N` (the harness asserts).
pub fn gsm8k_correct(completion: &str, reference: &str) -> Option<bool> {
    let gold = gsm8k_extract(reference);
    (gold != INVALID_ANSWER).then(|| gsm8k_extract(completion) == gold)
}

/// lm-eval 0.4's `regex` filter: Python's `re.findall`, the `group_select`-th match (negative
/// counts from the end); with several groups the first non-empty one; stripped;
/// `fallback` when nothing matches (or the index is out of range).
pub fn regex_filter(pattern: &Regex, group_select: i64, fallback: &str, text: &str) -> String {
    let matches: Vec<String> = pattern
        .captures_iter(text)
        .map(|captures| match captures.len() {
            1 => captures[0].to_string(),
            2 => captures.get(1).map_or("", |m| m.as_str()).to_string(),
            _ => captures
                .iter()
                .skip(1)
                .flatten()
                .map(|m| m.as_str())
                .find(|s| !s.is_empty())
                .unwrap_or(fallback)
                .to_string(),
        })
        .collect();
    let index = if group_select < 0 {
        usize::try_from(group_select.unsigned_abs())
            .ok()
            .and_then(|back| matches.len().checked_sub(back))
    } else {
        usize::try_from(group_select).ok()
    };
    match index.and_then(|i| matches.get(i)) {
        Some(found) => found.trim().to_string(),
        None => fallback.to_string(),
    }
}

/// lm-eval 0.4's `exact_match` options.
#[derive(Clone, Debug, Default)]
pub struct ExactMatch {
    /// Patterns removed from both strings first, in order.
    pub regexes_to_ignore: Vec<Regex>,
    /// Compare lower-cased.
    pub ignore_case: bool,
    /// Remove ASCII punctuation (Python's `string.punctuation`).
    pub ignore_punctuation: bool,
    /// Remove ASCII digits.
    pub ignore_numbers: bool,
}

impl ExactMatch {
    /// GSM8K's in lm-eval 0.4 (`gsm8k.yaml`).
    ///
    /// # Panics
    /// Never in practice: its four patterns are constant and valid (the tests build them).
    pub fn gsm8k_v04() -> Self {
        let patterns = [",", r"\$", "(?s).*#### ", r"\.$"];
        Self {
            regexes_to_ignore: patterns
                .iter()
                .map(|p| Regex::new(p).expect("valid pattern"))
                .collect(),
            ignore_case: true,
            ..Self::default()
        }
    }

    /// The string as compared.
    pub fn normalise(&self, text: &str) -> String {
        let mut text = text.to_string();
        for pattern in &self.regexes_to_ignore {
            text = pattern.replace_all(&text, "").into_owned();
        }
        if self.ignore_case {
            text = text.to_lowercase();
        }
        if self.ignore_punctuation {
            text.retain(|c| !c.is_ascii_punctuation());
        }
        if self.ignore_numbers {
            text.retain(|c| !c.is_ascii_digit());
        }
        text
    }

    /// 1.0 when prediction and reference are equal after normalisation.
    pub fn score(&self, prediction: &str, reference: &str) -> f64 {
        f64::from(u8::from(
            self.normalise(prediction) == self.normalise(reference),
        ))
    }
}
