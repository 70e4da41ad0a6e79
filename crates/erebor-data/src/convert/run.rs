//! The convert pipeline: read and map → contamination check → dedupe → split → tokenise and
//! length-filter → statistics → dataset folder and report.

use super::config::{ConvertConfig, SourceSplit};
use super::output::{SplitRows, measure, write_dataset};
use super::report::{ContaminationReport, ConvertReport, FlaggedRow, LengthFilterReport};
use super::sources::{
    INVALID_EXAMPLES, InvalidRows, LoadEnv, LoadedRecord, load_eval_set, load_sources,
};
use crate::contamination::{ContaminationIndex, OverlapKind};
use crate::error::DataError;
use crate::hub::HubClient;
use crate::mappers::Record;
use crate::ops::{DedupeCounts, dedupe_by, prompt_text, split};
use crate::tokenise::ChatTokenizer;
use erebor_core::dataset::TokenizerRef;
use erebor_core::{CancelToken, MetricsSink, ProgressReporter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a conversion runs and reports.
pub struct ConvertEnv<'a> {
    /// Relative paths in the config are relative to this folder.
    pub base_dir: &'a Path,
    /// The dataset (`dataset/`) and `report.json` are written here.
    pub work_dir: &'a Path,
    /// Downloads from the Hub are cached here.
    pub cache_dir: &'a Path,
    /// Statistics go here.
    pub metrics: &'a dyn MetricsSink,
    /// Progress goes here.
    pub progress: &'a dyn ProgressReporter,
    /// Polled between rows.
    pub cancel: CancelToken,
}

/// What a conversion produced.
#[derive(Clone, Debug)]
pub struct ConvertOutput {
    /// The dataset folder.
    pub dataset_dir: PathBuf,
    /// `report.json`.
    pub report_path: PathBuf,
    /// The report's content.
    pub report: ConvertReport,
}

fn hub_client(config: &ConvertConfig, cache_dir: &Path) -> HubClient {
    let mut client = HubClient::from_env(cache_dir);
    if let Some(endpoint) = &config.hub.endpoint {
        endpoint
            .trim_end_matches('/')
            .clone_into(&mut client.endpoint);
    }
    if let Some(retries) = config.hub.retries {
        client.retries = retries;
    }
    if let Some(backoff) = config.hub.backoff_ms {
        client.backoff = std::time::Duration::from_millis(backoff);
    }
    client.refresh = config.hub.refresh;
    client
}

/// Runs a conversion.
pub fn run_convert(
    config: &ConvertConfig,
    env: &ConvertEnv<'_>,
) -> Result<ConvertOutput, DataError> {
    let mut seconds = BTreeMap::new();
    let clock = Instant::now();
    let hub = hub_client(config, env.cache_dir);
    let load_env = LoadEnv {
        base_dir: env.base_dir,
        hub: &hub,
        skip_invalid: config.skip_invalid,
        system_prompt: config.system_prompt.as_deref(),
        cancel: &env.cancel,
        progress: env.progress,
    };
    let (loaded, sources, mut invalid) = load_sources(&config.sources, &load_env)?;
    seconds.insert("read_and_build".to_owned(), clock.elapsed().as_secs_f64());

    let clock = Instant::now();
    let (loaded, contamination) = check_contamination(config, loaded, &load_env)?;
    let (mut splits, dedupe) = dedupe_and_split(config, loaded);
    seconds.insert("filter_and_split".to_owned(), clock.elapsed().as_secs_f64());

    let clock = Instant::now();
    let tokenised = tokenise_splits(config, env, &mut splits, &mut invalid)?;
    if tokenised.reference.is_some() {
        seconds.insert("tokenise".to_owned(), clock.elapsed().as_secs_f64());
    }

    let clock = Instant::now();
    let kind = config.kind();
    let split_reports: BTreeMap<String, _> = splits
        .iter()
        .map(|split_rows| {
            (
                split_rows.name.clone(),
                measure(kind, split_rows, &tokenised.turn_end),
            )
        })
        .collect();
    let mut report = ConvertReport {
        kind,
        sources,
        invalid_rows: invalid,
        contamination,
        dedupe,
        length_filter: tokenised.length_filter,
        tokenizer: tokenised.reference.clone(),
        boundary_retokenised: tokenised.boundary_retokenised,
        splits: split_reports,
        seconds: BTreeMap::new(),
    };
    seconds.insert("statistics".to_owned(), clock.elapsed().as_secs_f64());
    if splits[0].records.is_empty() {
        return Err(DataError::Invalid(format!(
            "the training split is empty after conversion:\n{}",
            report.summary()
        )));
    }

    let clock = Instant::now();
    std::fs::create_dir_all(env.work_dir).map_err(|error| DataError::io(env.work_dir, error))?;
    let dataset_dir = env.work_dir.join("dataset");
    let stats = dataset_stats(&report);
    write_dataset(
        &dataset_dir,
        kind,
        &splits,
        tokenised.reference.as_ref(),
        stats,
    )?;
    seconds.insert("write".to_owned(), clock.elapsed().as_secs_f64());
    report.seconds = seconds;

    let report_path = env.work_dir.join("report.json");
    let text = serde_json::to_string_pretty(&report)
        .map_err(|error| DataError::Invalid(error.to_string()))?;
    std::fs::write(&report_path, text).map_err(|error| DataError::io(&report_path, error))?;
    report.record_metrics(env.metrics);
    tracing::info!("convert summary:\n{}", report.summary());
    Ok(ConvertOutput {
        dataset_dir,
        report_path,
        report,
    })
}

/// The statistics the dataset folder keeps from the report: per split, de-duplication,
/// contamination and invalid rows.
fn dataset_stats(report: &ConvertReport) -> serde_json::Value {
    serde_json::json!({
        "splits": report.splits,
        "dedupe": report.dedupe,
        "contamination": report.contamination.as_ref().map(|c| serde_json::json!({"flagged": c.flagged, "dropped": c.dropped})),
        "invalid_rows": report.invalid_rows.count,
    })
}

/// Explicit eval rows, de-duplicated (when asked) together with the rest, then the rest split
/// into train and held-out eval rows: `train` first, `eval` when it has rows.
fn dedupe_and_split(
    config: &ConvertConfig,
    loaded: Vec<LoadedRecord>,
) -> (Vec<SplitRows>, Option<DedupeCounts>) {
    // Explicit eval rows first, so a training row identical to one of them is the one dropped.
    let (mut eval_rows, mut train_rows): (Vec<LoadedRecord>, Vec<LoadedRecord>) = loaded
        .into_iter()
        .partition(|row| row.split == Some(SourceSplit::Eval));
    let explicit_eval = eval_rows.len();
    eval_rows.append(&mut train_rows);
    let (all_rows, dedupe) = if config.dedupe {
        let (kept, counts) = dedupe_by(eval_rows, |row| &row.record);
        (kept, Some(counts))
    } else {
        (eval_rows, None)
    };
    let mut eval: Vec<Record> = Vec::new();
    let mut candidates: Vec<Record> = Vec::new();
    for row in all_rows {
        if row.split == Some(SourceSplit::Eval) {
            eval.push(row.record);
        } else {
            candidates.push(row.record);
        }
    }
    debug_assert!(eval.len() <= explicit_eval);
    let train = match &config.split {
        Some(split_config) => {
            let (train, mut held_out) = split(candidates, split_config);
            eval.append(&mut held_out);
            train
        }
        None => candidates,
    };
    let mut splits = vec![SplitRows {
        name: "train".into(),
        records: train,
        tokens: None,
    }];
    if !eval.is_empty() {
        splits.push(SplitRows {
            name: "eval".into(),
            records: eval,
            tokens: None,
        });
    }
    (splits, dedupe)
}

/// What tokenising the splits gave the report (all empty without a `tokenizer:`).
struct Tokenised {
    /// The tokenizer used.
    reference: Option<TokenizerRef>,
    /// Rows removed for length, when a limit was set.
    length_filter: Option<LengthFilterReport>,
    /// Rows whose prompt/answer boundary had to be tokenised again.
    boundary_retokenised: u64,
    /// The template's end-of-turn tokens, cut off answers before measuring them.
    turn_end: Vec<u32>,
}

/// Tokenises every split with the configured tokenizer and chat template, dropping rows over
/// the length limits; does nothing without a `tokenizer:`.
fn tokenise_splits(
    config: &ConvertConfig,
    env: &ConvertEnv<'_>,
    splits: &mut [SplitRows],
    invalid: &mut InvalidRows,
) -> Result<Tokenised, DataError> {
    let mut tokenised = Tokenised {
        reference: None,
        length_filter: None,
        boundary_retokenised: 0,
        turn_end: Vec::new(),
    };
    let Some(source) = &config.tokenizer else {
        return Ok(tokenised);
    };
    let tokenizer_dir = erebor_core::hub_models::resolve_model(env.base_dir, source)
        .map_err(|e| DataError::Invalid(format!("tokenizer: {e}")))?;
    let chat = ChatTokenizer::load(
        &tokenizer_dir,
        source,
        config.chat_template.as_deref().unwrap_or("checkpoint"),
    )?;
    let mut removed = 0u64;
    let total: u64 = splits.iter().map(|split| split.records.len() as u64).sum();
    env.progress.start_phase("tokenise", Some(total));
    for split_rows in splits.iter_mut() {
        let outcome = super::tokenise::tokenise_split(&chat, config, split_rows, env, invalid)?;
        removed += outcome.too_long;
        tokenised.boundary_retokenised += outcome.boundary_retokenised;
    }
    if config.max_length.is_some() || config.max_prompt_length.is_some() {
        tokenised.length_filter = Some(LengthFilterReport {
            max_length: config.max_length,
            max_prompt_length: config.max_prompt_length,
            removed,
        });
    }
    tokenised.reference = Some(chat.reference().clone());
    tokenised.turn_end = chat.turn_end_ids()?;
    Ok(tokenised)
}

/// How many flagged rows the report quotes.
const FLAGGED_EXAMPLES: usize = 20;

fn check_contamination(
    config: &ConvertConfig,
    loaded: Vec<LoadedRecord>,
    env: &LoadEnv<'_>,
) -> Result<(Vec<LoadedRecord>, Option<ContaminationReport>), DataError> {
    let Some(contamination) = &config.contamination else {
        return Ok((loaded, None));
    };
    let mut index = ContaminationIndex::new(contamination.ngram);
    let mut eval_sets = BTreeMap::new();
    for set in &contamination.eval_sets {
        let (name, texts) = load_eval_set(set, env)?;
        for (position, text) in texts.iter().enumerate() {
            index.add(&name, position, text);
        }
        eval_sets.insert(name, texts.len());
    }
    let mut report = ContaminationReport {
        eval_sets,
        ngram: contamination.ngram,
        flagged: 0,
        exact: 0,
        dropped: 0,
        examples: Vec::new(),
    };
    let mut kept = Vec::with_capacity(loaded.len());
    for row in loaded {
        match index.check(&prompt_text(&row.record)) {
            Some(overlap) => {
                report.flagged += 1;
                report.exact += u64::from(overlap.kind == OverlapKind::Exact);
                if report.examples.len() < FLAGGED_EXAMPLES {
                    report.examples.push(FlaggedRow {
                        id: row.record.id().to_owned(),
                        overlap,
                    });
                }
                if contamination.drop_overlapping {
                    report.dropped += 1;
                } else {
                    kept.push(row);
                }
            }
            None => kept.push(row),
        }
    }
    if contamination.fail_on_overlap && report.flagged > 0 {
        let examples: Vec<String> = report
            .examples
            .iter()
            .take(5)
            .map(|flag| {
                format!(
                    "  {} overlaps {} item {} ({:?})",
                    flag.id, flag.overlap.eval_set, flag.overlap.eval_index, flag.overlap.kind
                )
            })
            .collect();
        return Err(DataError::Invalid(format!(
            "{} training rows overlap the evaluation sets (fail_on_overlap is set):\n{}",
            report.flagged,
            examples.join("\n")
        )));
    }
    Ok((kept, Some(report)))
}

/// Records a row that failed after mapping (e.g. its template raised) as invalid.
pub(super) fn note_invalid(invalid: &mut InvalidRows, error: &DataError) {
    invalid.count += 1;
    if invalid.examples.len() < INVALID_EXAMPLES {
        invalid.examples.push(error.to_string());
    }
}
