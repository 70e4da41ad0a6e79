//! Dataset-wide operations: de-duplication and the deterministic train/eval split.

use crate::mappers::Record;
use crate::stable::stable_hash;
use erebor_core::ConfigError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The content of a record without its id, as hashed for de-duplication.
fn content_key(record: &Record) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut feed = |role: &str, text: &str| {
        hasher.update(role.as_bytes());
        hasher.update([0]);
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    match record {
        Record::Sft(sft) => {
            for message in &sft.messages {
                feed(&message.role, &message.content);
            }
        }
        Record::Preference(pair) => {
            for message in &pair.prompt {
                feed(&message.role, &message.content);
            }
            feed("chosen", &pair.chosen);
            feed("rejected", &pair.rejected);
        }
    }
    hasher.finalize().into()
}

/// The prompt of a record, as text: the key that keeps a question's pairs in one split.
pub fn prompt_text(record: &Record) -> String {
    let messages = match record {
        Record::Sft(sft) => &sft.messages,
        Record::Preference(pair) => &pair.prompt,
    };
    messages
        .iter()
        .filter(|message| message.role != "assistant")
        .map(|message| message.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What de-duplication removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeCounts {
    /// Records identical (ids aside) to an earlier one.
    pub duplicates: usize,
    /// Preference pairs whose chosen and rejected answers are the same text.
    pub identical_answers: usize,
}

/// Keeps the first of each set of identical records and drops pairs whose two answers are the
/// same; order is kept.
pub fn dedupe(records: Vec<Record>) -> (Vec<Record>, DedupeCounts) {
    dedupe_by(records, |record| record)
}

/// [`dedupe`] over items that carry a record.
pub(crate) fn dedupe_by<T>(
    items: Vec<T>,
    record_of: impl Fn(&T) -> &Record,
) -> (Vec<T>, DedupeCounts) {
    let mut seen = HashSet::with_capacity(items.len());
    let mut counts = DedupeCounts::default();
    let kept = items
        .into_iter()
        .filter(|item| {
            let record = record_of(item);
            if let Record::Preference(pair) = record
                && pair.chosen == pair.rejected
            {
                counts.identical_answers += 1;
                return false;
            }
            let fresh = seen.insert(content_key(record));
            if !fresh {
                counts.duplicates += 1;
            }
            fresh
        })
        .collect();
    (kept, counts)
}

/// How to hold out an evaluation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Fraction of rows for the eval split (0 < f < 1).
    #[serde(default)]
    pub eval_fraction: Option<f64>,
    /// Number of rows for the eval split (instead of a fraction).
    #[serde(default)]
    pub eval_rows: Option<usize>,
    /// Seed of the assignment.
    #[serde(default)]
    pub seed: u64,
}

impl SplitConfig {
    /// Checks that exactly one size is given and it is in range; the error names the field
    /// within the `split` block.
    pub fn check(&self) -> Result<(), ConfigError> {
        match (self.eval_fraction, self.eval_rows) {
            (Some(fraction), None) if fraction > 0.0 && fraction < 1.0 => Ok(()),
            (Some(fraction), None) => Err(ConfigError::field(
                "eval_fraction",
                format!("{fraction} is not between 0 and 1"),
            )),
            (None, Some(_)) => Ok(()),
            _ => Err(ConfigError::at(
                Vec::new(),
                "give exactly one of eval_fraction and eval_rows",
            )),
        }
    }

    fn target(&self, total: usize) -> usize {
        match (self.eval_fraction, self.eval_rows) {
            // `check` keeps the fraction within 0..1: a row count between 0 and `total`.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            (Some(fraction), _) => (total as f64 * fraction).round() as usize,
            (None, Some(rows)) => rows.min(total),
            (None, None) => 0,
        }
    }
}

/// Splits records into (train, eval). Rows with the same prompt (e.g. the three pairs of one
/// ARC question) land in the same split, so no eval prompt is seen in training. Prompt groups
/// are ordered by a hash of the seed and the prompt, and taken into eval until it holds at least
/// the target number of rows; the assignment of a group does not depend on the order of rows or
/// on the other groups' sizes before it. Both splits keep the input order.
pub fn split(records: Vec<Record>, config: &SplitConfig) -> (Vec<Record>, Vec<Record>) {
    let target = config.target(records.len());
    let keys: Vec<u64> = records
        .iter()
        .map(|record| {
            let text = prompt_text(record);
            stable_hash(&[&config.seed.to_le_bytes()[..], text.as_bytes()].concat())
        })
        .collect();
    let mut group_sizes: HashMap<u64, usize> = HashMap::new();
    for key in &keys {
        *group_sizes.entry(*key).or_default() += 1;
    }
    let mut groups: Vec<(u64, usize)> = group_sizes.into_iter().collect();
    groups.sort_unstable();
    let mut eval_groups = HashSet::new();
    let mut taken = 0;
    for (key, size) in groups {
        if taken >= target {
            break;
        }
        eval_groups.insert(key);
        taken += size;
    }
    let mut train = Vec::with_capacity(records.len() - taken);
    let mut eval = Vec::with_capacity(taken);
    for (record, key) in records.into_iter().zip(keys) {
        if eval_groups.contains(&key) {
            eval.push(record);
        } else {
            train.push(record);
        }
    }
    (train, eval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erebor_core::dataset::{ChatMessage, PreferenceRecord};

    fn pair(id: usize, question: usize, chosen: &str, rejected: &str) -> Record {
        Record::Preference(PreferenceRecord {
            id: format!("r{id}"),
            prompt: vec![ChatMessage::new("user", format!("question {question}"))],
            chosen: chosen.into(),
            rejected: rejected.into(),
        })
    }

    #[test]
    fn duplicates_and_identical_answers_are_dropped_in_order() {
        let records = vec![
            pair(0, 1, "a", "b"),
            pair(1, 1, "a", "b"),
            pair(2, 1, "a", "a"),
            pair(3, 2, "a", "b"),
        ];
        let (kept, counts) = dedupe(records);
        let ids: Vec<_> = kept.iter().map(Record::id).collect();
        assert_eq!(ids, ["r0", "r3"]);
        assert_eq!(
            counts,
            DedupeCounts {
                duplicates: 1,
                identical_answers: 1
            }
        );
    }

    #[test]
    fn splits_keep_question_groups_together_and_are_reproducible() {
        let records: Vec<Record> = (0..300)
            .map(|i| pair(i, i / 3, "a", &format!("w{i}")))
            .collect();
        let config = SplitConfig {
            eval_fraction: Some(0.1),
            eval_rows: None,
            seed: 4,
        };
        let (train, eval) = split(records.clone(), &config);
        assert_eq!(train.len() + eval.len(), 300);
        assert_eq!(
            eval.len(),
            30,
            "100 groups of 3: ten groups make exactly 30"
        );
        let eval_prompts: HashSet<String> = eval.iter().map(prompt_text).collect();
        assert!(
            train
                .iter()
                .all(|record| !eval_prompts.contains(&prompt_text(record)))
        );
        assert_eq!(split(records.clone(), &config).1, eval);
        let other = split(records, &SplitConfig { seed: 5, ..config }).1;
        assert_ne!(other, eval);
    }
}
