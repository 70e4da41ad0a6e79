//! Statistics of a converted set: edit distance between chosen and rejected answers, where they
//! first differ, and prompt/answer lengths, over tokens (when tokenised) or words.

use serde::{Deserialize, Serialize};

/// Levenshtein distance between two sequences (insertions, deletions, substitutions of one
/// element each). The common prefix and suffix are skipped first, which leaves the result
/// unchanged and makes low-edit pairs cost linear time.
pub(crate) fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let prefix = common_prefix(a, b);
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut row: Vec<usize> = (0..=short.len()).collect();
    for (i, long_item) in long.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, short_item) in short.iter().enumerate() {
            let above = row[j + 1];
            let cost = usize::from(long_item != short_item);
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + cost);
            diagonal = above;
        }
    }
    row[short.len()]
}

/// Levenshtein distance divided by the longer length (0 for two empty sequences).
pub fn normalized_levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        0.0
    } else {
        levenshtein(a, b) as f64 / longest as f64
    }
}

/// Length of the common prefix: the index of the first differing element.
pub fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Words and punctuation marks, the unit of untokenised statistics: runs of alphanumeric
/// characters and `_` (regex `\w+`), and every other non-space character on its own.
pub fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 4);
    let mut start: Option<usize> = None;
    for (index, c) in text.char_indices() {
        if c.is_alphanumeric() || c == '_' {
            start.get_or_insert(index);
            continue;
        }
        if let Some(begin) = start.take() {
            out.push(&text[begin..index]);
        }
        if !c.is_whitespace() {
            out.push(&text[index..index + c.len_utf8()]);
        }
    }
    if let Some(begin) = start {
        out.push(&text[begin..]);
    }
    out
}

/// Mean, median, minimum and maximum of a series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Arithmetic mean (0 when empty).
    pub mean: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len();
        let median = if count % 2 == 1 {
            sorted[count / 2]
        } else {
            f64::midpoint(sorted[count / 2 - 1], sorted[count / 2])
        };
        Self {
            count,
            mean: sorted.iter().sum::<f64>() / count as f64,
            median,
            min: sorted[0],
            max: sorted[count - 1],
        }
    }
}

/// What one preference pair contributes to the statistics, in some unit (tokens or words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairMeasure {
    /// Prompt length.
    pub prompt: usize,
    /// Chosen answer length.
    pub chosen: usize,
    /// Rejected answer length.
    pub rejected: usize,
    /// Normalised edit distance between the answers.
    pub edit_distance: f64,
    /// Index of the first differing unit.
    pub first_difference: usize,
}

impl PairMeasure {
    /// Measures a pair given as unit sequences.
    pub fn of<T: PartialEq>(prompt_len: usize, chosen: &[T], rejected: &[T]) -> Self {
        Self {
            prompt: prompt_len,
            chosen: chosen.len(),
            rejected: rejected.len(),
            edit_distance: normalized_levenshtein(chosen, rejected),
            first_difference: common_prefix(chosen, rejected),
        }
    }
}

/// Statistics of a set of preference pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PreferenceStats {
    /// `tokens` or `words`.
    pub unit: String,
    /// Number of pairs.
    pub count: usize,
    /// Normalised edit distance between chosen and rejected.
    pub edit_distance: Summary,
    /// Index of the first differing unit.
    pub first_difference: Summary,
    /// First differing unit as a fraction of the chosen answer's length.
    pub first_difference_relative: Summary,
    /// Prompt lengths.
    pub prompt_length: Summary,
    /// Chosen answer lengths.
    pub chosen_length: Summary,
    /// Rejected answer lengths.
    pub rejected_length: Summary,
}

impl PreferenceStats {
    /// Summarises measured pairs.
    pub fn of(unit: &str, measures: &[PairMeasure]) -> Self {
        let series = |f: &dyn Fn(&PairMeasure) -> f64| -> Summary {
            Summary::of(&measures.iter().map(f).collect::<Vec<_>>())
        };
        Self {
            unit: unit.to_owned(),
            count: measures.len(),
            edit_distance: series(&|m| m.edit_distance),
            first_difference: series(&|m| m.first_difference as f64),
            first_difference_relative: series(&|m| {
                m.first_difference as f64 / m.chosen.max(1) as f64
            }),
            prompt_length: series(&|m| m.prompt as f64),
            chosen_length: series(&|m| m.chosen as f64),
            rejected_length: series(&|m| m.rejected as f64),
        }
    }
}

/// Statistics of a set of SFT conversations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SftStats {
    /// `tokens` or `words`.
    pub unit: String,
    /// Number of conversations.
    pub count: usize,
    /// Messages per conversation.
    pub messages: Summary,
    /// Length of the whole conversation.
    pub total_length: Summary,
    /// Length of the target part (assistant turns).
    pub target_length: Summary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances_match_hand_computed_values() {
        // kitten → sitting: k→s, e→i, +g.
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein(b"", b"abc"), 3);
        assert_eq!(levenshtein(b"flaw", b"lawn"), 2);
        assert_eq!(levenshtein(b"same", b"same"), 0);
        // Prefix/suffix skipping must not change the answer.
        assert_eq!(levenshtein(b"xxabcxx", b"xxacbxx"), 2);
        assert!((normalized_levenshtein(b"kitten", b"sitting") - 3.0 / 7.0).abs() < 1e-12);
        assert_eq!(common_prefix(b"abcd", b"abxd"), 2);
    }

    #[test]
    fn summaries_and_words() {
        let summary = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(
            (summary.mean, summary.median, summary.min, summary.max),
            (2.5, 2.5, 1.0, 4.0)
        );
        assert_eq!(
            Summary::of(&[5.0, 1.0, 9.0]).median.to_bits(),
            5.0_f64.to_bits()
        );
        assert_eq!(
            words("12 + 5 = 17\n#### 17"),
            ["12", "+", "5", "=", "17", "#", "#", "#", "#", "17"]
        );
        assert_eq!(
            words(" Janet’s snake_case, 3.5!"),
            ["Janet", "’", "s", "snake_case", ",", "3", ".", "5", "!"]
        );
    }
}
