//! The dataset folder (see `erebor_core::dataset`) and the statistics of each split.

use super::report::SplitReport;
use crate::error::DataError;
use crate::mappers::Record;
use crate::ops::prompt_text;
use crate::stats::{PairMeasure, PreferenceStats, SftStats, Summary, words};
use erebor_core::dataset::{
    DATASET_FORMAT_VERSION, DatasetKind, DatasetManifest, SplitFiles, TokenisedPreference,
    TokenisedSft, TokenizerRef,
};
use erebor_core::jsonl::JsonlWriter;
use std::collections::BTreeMap;
use std::path::Path;

/// The tokenised rows of one split, of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitTokens {
    /// SFT rows.
    Sft(Vec<TokenisedSft>),
    /// Preference rows.
    Preference(Vec<TokenisedPreference>),
}

/// One split ready to write.
#[derive(Clone, Debug)]
pub struct SplitRows {
    /// `train` or `eval`.
    pub name: String,
    /// Untokenised records.
    pub records: Vec<Record>,
    /// Tokenised rows, same order, when tokenised.
    pub tokens: Option<SplitTokens>,
}

/// `ids` without `suffix` when it ends with it and keeps at least one token.
fn without_suffix<'a>(ids: &'a [u32], suffix: &[u32]) -> &'a [u32] {
    if ids.len() > suffix.len() && ids.ends_with(suffix) {
        &ids[..ids.len() - suffix.len()]
    } else {
        ids
    }
}

/// Statistics of a split: over tokens when tokenised, else over words. Token statistics of pairs
/// measure the answers' own tokens: `turn_end` (the template's end-of-turn tokens, the same in
/// every completion) is cut off both completions first, as the paper measures the answers.
pub fn measure(kind: DatasetKind, split: &SplitRows, turn_end: &[u32]) -> SplitReport {
    match kind {
        DatasetKind::Preference => measure_pairs(split, turn_end),
        DatasetKind::Sft => measure_conversations(split),
    }
}

/// [`measure`] for preference pairs: prompt and answer lengths, `turn_end` cut off the answers.
fn measure_pairs(split: &SplitRows, turn_end: &[u32]) -> SplitReport {
    let rows = split.records.len() as u64;
    let measures: Vec<PairMeasure> = match &split.tokens {
        Some(SplitTokens::Preference(tokens)) => tokens
            .iter()
            .map(|row| {
                PairMeasure::of(
                    row.prompt_ids.len(),
                    without_suffix(&row.chosen_ids, turn_end),
                    without_suffix(&row.rejected_ids, turn_end),
                )
            })
            .collect(),
        _ => split
            .records
            .iter()
            .filter_map(|record| match record {
                Record::Preference(pair) => Some(PairMeasure::of(
                    words(&prompt_text(record)).len(),
                    &words(&pair.chosen),
                    &words(&pair.rejected),
                )),
                Record::Sft(_) => None,
            })
            .collect(),
    };
    let unit = if split.tokens.is_some() {
        "tokens"
    } else {
        "words"
    };
    SplitReport {
        rows,
        preference: Some(PreferenceStats::of(unit, &measures)),
        sft: None,
    }
}

/// [`measure`] for SFT conversations: messages, total and target lengths.
fn measure_conversations(split: &SplitRows) -> SplitReport {
    let rows = split.records.len() as u64;
    let messages: Vec<f64> = split
        .records
        .iter()
        .map(|record| match record {
            Record::Sft(sft) => sft.messages.len() as f64,
            Record::Preference(_) => 0.0,
        })
        .collect();
    let (unit, total, target): (&str, Vec<f64>, Vec<f64>) = match &split.tokens {
        Some(SplitTokens::Sft(tokens)) => (
            "tokens",
            tokens
                .iter()
                .map(|row| row.input_ids.len() as f64)
                .collect(),
            tokens
                .iter()
                .map(|row| row.target_tokens() as f64)
                .collect(),
        ),
        _ => {
            let count = |record: &Record, targets_only: bool| match record {
                Record::Sft(sft) => sft
                    .messages
                    .iter()
                    .filter(|m| !targets_only || m.role == "assistant")
                    .map(|m| words(&m.content).len())
                    .sum::<usize>() as f64,
                Record::Preference(_) => 0.0,
            };
            (
                "words",
                split.records.iter().map(|r| count(r, false)).collect(),
                split.records.iter().map(|r| count(r, true)).collect(),
            )
        }
    };
    SplitReport {
        rows,
        preference: None,
        sft: Some(SftStats {
            unit: unit.into(),
            count: split.records.len(),
            messages: Summary::of(&messages),
            total_length: Summary::of(&total),
            target_length: Summary::of(&target),
        }),
    }
}

fn write_rows<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<u64, DataError> {
    let to_data_error = |error: erebor_core::jsonl::JsonlError| match error {
        erebor_core::jsonl::JsonlError::Io { path, source } => DataError::io(path, source),
        other @ erebor_core::jsonl::JsonlError::Parse { .. } => {
            DataError::Invalid(other.to_string())
        }
    };
    let mut writer = JsonlWriter::create(path).map_err(to_data_error)?;
    for row in rows {
        writer.write(row).map_err(to_data_error)?;
    }
    writer.finish().map_err(to_data_error)
}

/// Writes the dataset folder at `dir`: into `dir.partial` first, then renamed over `dir`, so a
/// reader never sees half a dataset.
pub(crate) fn write_dataset(
    dir: &Path,
    kind: DatasetKind,
    splits: &[SplitRows],
    tokenizer: Option<&TokenizerRef>,
    stats: serde_json::Value,
) -> Result<(), DataError> {
    let partial = dir.with_extension("partial");
    let io = |path: &Path, error| DataError::io(path, error);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io(&partial, e))?;
    let mut manifest_splits = BTreeMap::new();
    for split in splits {
        let records_name = format!("{}.jsonl", split.name);
        let rows = write_rows(&partial.join(&records_name), &split.records)?;
        let tokens_name = match &split.tokens {
            Some(tokens) => {
                let name = format!("{}.tokens.jsonl", split.name);
                let path = partial.join(&name);
                match tokens {
                    SplitTokens::Sft(rows) => write_rows(&path, rows)?,
                    SplitTokens::Preference(rows) => write_rows(&path, rows)?,
                };
                Some(name)
            }
            None => None,
        };
        manifest_splits.insert(
            split.name.clone(),
            SplitFiles {
                rows,
                records: records_name,
                tokens: tokens_name,
            },
        );
    }
    let manifest = DatasetManifest {
        format_version: DATASET_FORMAT_VERSION,
        kind,
        splits: manifest_splits,
        tokenizer: tokenizer.cloned(),
        stats,
    };
    manifest.write(&partial).map_err(|e| io(&partial, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(&partial, dir).map_err(|e| io(dir, e))
}
