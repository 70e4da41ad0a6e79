//! Contamination check: training prompts that overlap an evaluation item.
//!
//! Texts are normalised (lower case, every run of non-alphanumeric characters becomes one
//! space). A training prompt is contaminated when its normalised text equals an evaluation
//! item's, or when they share a word n-gram (n = 13 by default, the GPT-3 paper's choice that
//! the Llama papers kept). Evaluation items shorter than n words are matched exactly only.

use crate::stable::stable_hash;
use serde::Serialize;
use std::collections::HashMap;

/// Lower case, non-alphanumeric runs to single spaces, trimmed.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// How a training prompt overlaps an evaluation item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapKind {
    /// Identical after normalisation.
    Exact,
    /// They share a word n-gram.
    Ngram,
}

/// The evaluation item a training prompt overlaps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// Exact or n-gram.
    pub kind: OverlapKind,
    /// The evaluation set's name.
    pub eval_set: String,
    /// The item's index in its set (0-based row order).
    pub eval_index: usize,
    /// The shared n-gram (normalised), for n-gram overlaps.
    pub ngram: Option<String>,
}

/// An index of evaluation items to check training prompts against.
#[derive(Debug)]
pub struct ContaminationIndex {
    n: usize,
    sets: Vec<String>,
    /// (set, index) of each item.
    items: Vec<(usize, usize)>,
    exact: HashMap<u64, usize>,
    ngrams: HashMap<u64, usize>,
}

fn ngram_hash(words: &[&str]) -> u64 {
    let mut hash = stable_hash(words[0].as_bytes());
    for word in &words[1..] {
        hash = stable_hash(&[&hash.to_le_bytes()[..], word.as_bytes()].concat());
    }
    hash
}

impl ContaminationIndex {
    /// An empty index for word n-grams of length `n` (≥ 1).
    pub fn new(n: usize) -> Self {
        Self {
            n: n.max(1),
            sets: Vec::new(),
            items: Vec::new(),
            exact: HashMap::new(),
            ngrams: HashMap::new(),
        }
    }

    /// Adds item `index` of evaluation set `set`.
    pub fn add(&mut self, set: &str, index: usize, text: &str) {
        let set_id = match self.sets.iter().position(|name| name == set) {
            Some(position) => position,
            None => {
                self.sets.push(set.to_owned());
                self.sets.len() - 1
            }
        };
        let item = self.items.len();
        self.items.push((set_id, index));
        let normalized = normalize(text);
        if normalized.is_empty() {
            return;
        }
        self.exact
            .entry(stable_hash(normalized.as_bytes()))
            .or_insert(item);
        let words: Vec<&str> = normalized.split(' ').collect();
        if words.len() >= self.n {
            for window in words.windows(self.n) {
                self.ngrams.entry(ngram_hash(window)).or_insert(item);
            }
        }
    }

    /// Number of items indexed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is indexed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn overlap(&self, item: usize, kind: OverlapKind, ngram: Option<String>) -> Overlap {
        let (set, index) = self.items[item];
        Overlap {
            kind,
            eval_set: self.sets[set].clone(),
            eval_index: index,
            ngram,
        }
    }

    /// The first evaluation item `text` overlaps, exact matches first.
    pub fn check(&self, text: &str) -> Option<Overlap> {
        let normalized = normalize(text);
        if normalized.is_empty() {
            return None;
        }
        if let Some(&item) = self.exact.get(&stable_hash(normalized.as_bytes())) {
            return Some(self.overlap(item, OverlapKind::Exact, None));
        }
        let words: Vec<&str> = normalized.split(' ').collect();
        if words.len() < self.n {
            return None;
        }
        words.windows(self.n).find_map(|window| {
            self.ngrams
                .get(&ngram_hash(window))
                .map(|&item| self.overlap(item, OverlapKind::Ngram, Some(window.join(" "))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_spacing() {
        assert_eq!(
            normalize("  Janet’s ducks, lay 16 eggs!\n"),
            "janet s ducks lay 16 eggs"
        );
        assert_eq!(normalize("?!"), "");
    }

    #[test]
    fn exact_and_thirteen_gram_overlaps_are_found() {
        let mut index = ContaminationIndex::new(13);
        index.add("gsm8k", 0, "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins.");
        index.add("arc", 4, "Which gas do plants take in?");
        assert_eq!(index.len(), 2);

        let exact = index.check("which GAS do plants take in").unwrap();
        assert_eq!(
            (exact.kind, exact.eval_set.as_str(), exact.eval_index),
            (OverlapKind::Exact, "arc", 4)
        );

        // 13 shared words inside a longer prompt.
        let embedded = index
            .check("Question: janet's ducks lay 16 eggs per day. She eats three for breakfast every morning, right?")
            .unwrap();
        assert_eq!(embedded.kind, OverlapKind::Ngram);
        assert_eq!(embedded.eval_set, "gsm8k");
        assert_eq!(
            embedded.ngram.as_deref(),
            Some("janet s ducks lay 16 eggs per day she eats three for breakfast")
        );

        // 12 shared words are not enough; a short item never matches by n-gram.
        assert_eq!(
            index.check("janet s ducks lay 16 eggs per day she eats three for"),
            None
        );
        assert_eq!(index.check("Tell me: which gas do plants take in?"), None);
    }
}
