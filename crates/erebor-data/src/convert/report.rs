//! The convert step's report (`report.json`), its metrics and its one-paragraph summary.

use super::sources::{InvalidRows, SourceReport};
use crate::contamination::Overlap;
use crate::ops::DedupeCounts;
use crate::stats::{PreferenceStats, SftStats};
use erebor_core::MetricsSink;
use erebor_core::dataset::{DatasetKind, TokenizerRef};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything a convert step did, written as `report.json` next to the dataset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConvertReport {
    /// SFT or preference.
    pub kind: DatasetKind,
    /// Per source: files, rows read, records made, rows skipped.
    pub sources: Vec<SourceReport>,
    /// Malformed rows skipped under `skip_invalid`.
    pub invalid_rows: InvalidRows,
    /// The contamination check, when configured.
    pub contamination: Option<ContaminationReport>,
    /// What de-duplication removed, when on.
    pub dedupe: Option<DedupeCounts>,
    /// What the length filter removed, when configured.
    pub length_filter: Option<LengthFilterReport>,
    /// The tokenizer and template, when tokenised.
    pub tokenizer: Option<TokenizerRef>,
    /// Preference rows whose completions were tokenised apart from the prompt because the
    /// tokenizer merges across the boundary.
    pub boundary_retokenised: u64,
    /// Per split: rows and statistics.
    pub splits: BTreeMap<String, SplitReport>,
    /// Wall-clock seconds per phase.
    pub seconds: BTreeMap<String, f64>,
}

/// One split's rows and statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitReport {
    /// Rows written.
    pub rows: u64,
    /// Preference statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<PreferenceStats>,
    /// SFT statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sft: Option<SftStats>,
}

/// One flagged training row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlaggedRow {
    /// The training row's id.
    pub id: String,
    /// What it overlaps.
    pub overlap: Overlap,
}

/// The contamination check's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContaminationReport {
    /// Evaluation sets checked against, with their item counts.
    pub eval_sets: BTreeMap<String, usize>,
    /// n-gram length.
    pub ngram: usize,
    /// Training rows that overlap.
    pub flagged: u64,
    /// Of which exact matches.
    pub exact: u64,
    /// Rows removed (`drop_overlapping`).
    pub dropped: u64,
    /// The first flagged rows.
    pub examples: Vec<FlaggedRow>,
}

/// The length filter's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LengthFilterReport {
    /// The `max_length` in force.
    pub max_length: Option<usize>,
    /// The `max_prompt_length` in force.
    pub max_prompt_length: Option<usize>,
    /// Rows removed.
    pub removed: u64,
}

impl ConvertReport {
    /// Records the report's numbers as metrics (index 0), keys under `convert/`.
    pub fn record_metrics(&self, metrics: &dyn MetricsSink) {
        let put = |key: &str, value: f64| metrics.record(&format!("convert/{key}"), 0, value);
        put(
            "rows_read",
            self.sources.iter().map(|s| s.rows_read).sum::<u64>() as f64,
        );
        put(
            "records",
            self.sources.iter().map(|s| s.records).sum::<u64>() as f64,
        );
        put("invalid_rows", self.invalid_rows.count as f64);
        if let Some(dedupe) = &self.dedupe {
            put("duplicates", dedupe.duplicates as f64);
            put("identical_answers", dedupe.identical_answers as f64);
        }
        if let Some(contamination) = &self.contamination {
            put("contaminated", contamination.flagged as f64);
        }
        if let Some(filter) = &self.length_filter {
            put("too_long", filter.removed as f64);
        }
        for (split, report) in &self.splits {
            put(&format!("{split}/rows"), report.rows as f64);
            if let Some(stats) = &report.preference {
                put(
                    &format!("{split}/edit_distance_mean"),
                    stats.edit_distance.mean,
                );
                put(
                    &format!("{split}/edit_distance_median"),
                    stats.edit_distance.median,
                );
                put(
                    &format!("{split}/first_difference_mean"),
                    stats.first_difference.mean,
                );
                put(
                    &format!("{split}/first_difference_median"),
                    stats.first_difference.median,
                );
                put(
                    &format!("{split}/prompt_length_mean"),
                    stats.prompt_length.mean,
                );
                put(
                    &format!("{split}/chosen_length_mean"),
                    stats.chosen_length.mean,
                );
                put(
                    &format!("{split}/rejected_length_mean"),
                    stats.rejected_length.mean,
                );
            }
            if let Some(stats) = &report.sft {
                put(
                    &format!("{split}/total_length_mean"),
                    stats.total_length.mean,
                );
                put(
                    &format!("{split}/target_length_mean"),
                    stats.target_length.mean,
                );
            }
        }
    }

    /// A few lines for the step log.
    pub fn summary(&self) -> String {
        let read: u64 = self.sources.iter().map(|s| s.rows_read).sum();
        let mut lines = vec![format!(
            "{read} rows read from {} source(s), {} invalid skipped",
            self.sources.len(),
            self.invalid_rows.count
        )];
        if let Some(dedupe) = &self.dedupe {
            lines.push(format!(
                "dedupe removed {} duplicates and {} pairs with identical answers",
                dedupe.duplicates, dedupe.identical_answers
            ));
        }
        if let Some(contamination) = &self.contamination {
            lines.push(format!(
                "contamination: {} rows overlap the evaluation sets ({} exact), {} dropped",
                contamination.flagged, contamination.exact, contamination.dropped
            ));
        }
        if let Some(filter) = &self.length_filter {
            lines.push(format!("length filter removed {} rows", filter.removed));
        }
        for (split, report) in &self.splits {
            let mut line = format!("{split}: {} rows", report.rows);
            if let Some(stats) = &report.preference {
                line.push_str(&format!(
                    "; edit distance mean {:.1}% median {:.1}% ({}), first difference at {:.1} {} on average, prompt {:.1}, chosen {:.1}, rejected {:.1}",
                    100.0 * stats.edit_distance.mean,
                    100.0 * stats.edit_distance.median,
                    stats.unit,
                    stats.first_difference.mean,
                    stats.unit,
                    stats.prompt_length.mean,
                    stats.chosen_length.mean,
                    stats.rejected_length.mean,
                ));
            }
            if let Some(stats) = &report.sft {
                line.push_str(&format!(
                    "; {:.1} {} per conversation, {:.1} of them targets",
                    stats.total_length.mean, stats.unit, stats.target_length.mean
                ));
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}
