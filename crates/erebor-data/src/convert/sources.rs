//! Reading a convert step's sources into records, with per-source counts and the invalid rows
//! that `skip_invalid` let through.

use super::config::{EvalSetConfig, SourceConfig, SourceSplit};
use crate::builders::multiple_choice::parse_hellaswag;
use crate::builders::synth::{self, SynthConfig};
use crate::error::{DataError, RowLocation};
use crate::fields::Fields;
use crate::hub::HubClient;
use crate::mappers::{self, Mapped, Record};
use crate::read::{self, Format, RawRow, SourceFile};
use erebor_core::{CancelToken, ProgressReporter};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How many invalid rows the report quotes.
pub(crate) const INVALID_EXAMPLES: usize = 10;

/// What a loader needs from the step.
pub(crate) struct LoadEnv<'a> {
    /// Folder relative paths are resolved against.
    pub base_dir: &'a Path,
    /// Client for `hf://` paths.
    pub hub: &'a HubClient,
    /// Skip malformed rows instead of failing.
    pub skip_invalid: bool,
    /// System prompt for rows without one.
    pub system_prompt: Option<&'a str>,
    /// Polled between rows.
    pub cancel: &'a CancelToken,
    /// Rows read so far are reported here.
    pub progress: &'a dyn ProgressReporter,
}

/// One input file as recorded in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Path or `hf://` URI.
    pub name: String,
    /// Local copy (the cache, for `hf://` files).
    pub local_path: PathBuf,
    /// SHA-256 of the downloaded file (`hf://` files).
    pub sha256: Option<String>,
}

/// What one source gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// The source's label.
    pub name: String,
    /// Its files.
    pub files: Vec<FileReport>,
    /// Rows read (valid or not).
    pub rows_read: u64,
    /// Records made.
    pub records: u64,
    /// Malformed rows skipped.
    pub invalid: u64,
    /// Valid rows that made no record, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// Malformed rows across all sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InvalidRows {
    /// How many were skipped.
    pub count: u64,
    /// The first few errors, each naming `file:line` and field.
    pub examples: Vec<String>,
}

/// A record and the split its source asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadedRecord {
    /// The record.
    pub record: Record,
    /// The source's `split:`, if any.
    pub split: Option<SourceSplit>,
}

/// Expands one path, glob or `hf://` URI into files.
pub fn resolve(spec: &str, base_dir: &Path, hub: &HubClient) -> Result<Vec<FileReport>, DataError> {
    if spec.starts_with("hf://") {
        return Ok(hub
            .fetch(spec)?
            .into_iter()
            .map(|file| FileReport {
                name: file.uri,
                local_path: file.local_path,
                sha256: Some(file.sha256),
            })
            .collect());
    }
    Ok(read::expand_local(spec, base_dir)?
        .into_iter()
        .map(|path| FileReport {
            name: if spec.contains(['*', '?', '[']) {
                path.display().to_string()
            } else {
                spec.to_owned()
            },
            local_path: path,
            sha256: None,
        })
        .collect())
}

fn format_of(file: &FileReport, given: Option<Format>) -> Result<Format, DataError> {
    given.or_else(|| Format::from_name(&file.name)).ok_or_else(|| DataError::File {
        file: file.name.clone(),
        message: "cannot tell the format from the extension; set `format:` (jsonl, json, csv, tsv, parquet)".into(),
    })
}

fn stem(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_suffix(".gz").unwrap_or(base);
    base.split_once('.')
        .map_or(base, |(stem, _)| stem)
        .to_owned()
}

/// Reads every source and maps its rows.
pub(crate) fn load_sources(
    sources: &[SourceConfig],
    env: &LoadEnv<'_>,
) -> Result<(Vec<LoadedRecord>, Vec<SourceReport>, InvalidRows), DataError> {
    let mut gathered = Gathered::default();
    let mut reports = Vec::new();
    env.progress.start_phase("read", None);
    for (index, source) in sources.iter().enumerate() {
        reports.push(load_source(index, source, env, &mut gathered)?);
    }
    env.progress.set_position(gathered.total_rows);
    Ok((gathered.records, reports, gathered.invalid))
}

/// What reading the sources has gathered so far, over all of them.
#[derive(Default)]
struct Gathered {
    records: Vec<LoadedRecord>,
    invalid: InvalidRows,
    total_rows: u64,
}

impl Gathered {
    /// Maps one row of `source` (labelled `label`) into records, counted in `report`. A
    /// malformed row is counted and quoted under `skip_invalid`, and is the error otherwise.
    fn visit_row(
        &mut self,
        env: &LoadEnv<'_>,
        source: &SourceConfig,
        label: &str,
        row: Result<RawRow, DataError>,
        report: &mut SourceReport,
    ) -> Result<(), DataError> {
        report.rows_read += 1;
        self.total_rows += 1;
        if self.total_rows.is_multiple_of(4096) {
            if env.cancel.is_cancelled() {
                return Err(DataError::Cancelled);
            }
            env.progress.set_position(self.total_rows);
        }
        let mapped =
            row.and_then(|row| Ok(mappers::apply(&source.map, label, env.system_prompt, &row)?));
        match mapped {
            Ok(Mapped::Records(made)) => {
                report.records += made.len() as u64;
                self.records
                    .extend(made.into_iter().map(|record| LoadedRecord {
                        record,
                        split: source.split,
                    }));
            }
            Ok(Mapped::Skipped(reason)) => {
                *report.skipped.entry(reason.to_owned()).or_default() += 1;
            }
            Err(error @ (DataError::Row(_) | DataError::Syntax { .. })) if env.skip_invalid => {
                report.invalid += 1;
                self.invalid.count += 1;
                if self.invalid.examples.len() < INVALID_EXAMPLES {
                    self.invalid.examples.push(error.to_string());
                }
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }
}

/// The rows of source `index` generated by its `synthetic:` task, each labelled `label`.
fn synthetic_rows(
    synthetic: &SynthConfig,
    label: &str,
    index: usize,
) -> Result<Vec<(String, RawRow)>, DataError> {
    (0..synthetic.count as u64)
        .map(|row| {
            let problem = synth::generate(synthetic, row);
            let value = serde_json::to_value(&problem)
                .map_err(|error| DataError::Invalid(error.to_string()))?;
            let location = RowLocation::Generated {
                source: format!("sources.{index}.synthetic"),
                index: row,
            };
            Ok((label.to_owned(), RawRow { location, value }))
        })
        .collect()
}

/// Reads source `index` (its generated rows, then its files, up to its `limit`) into
/// `gathered`; returns its report.
fn load_source(
    index: usize,
    source: &SourceConfig,
    env: &LoadEnv<'_>,
    gathered: &mut Gathered,
) -> Result<SourceReport, DataError> {
    let mut report = SourceReport::default();
    let rows = match &source.synthetic {
        Some(synthetic) => {
            let label = source.name.clone().unwrap_or_else(|| "synthetic".into());
            let rows = synthetic_rows(synthetic, &label, index)?;
            report.name = label;
            rows
        }
        None => Vec::new(),
    };
    let mut files = Vec::new();
    for spec in &source.path {
        files.extend(resolve(spec, env.base_dir, env.hub)?);
    }
    report.name = source
        .name
        .clone()
        .unwrap_or_else(|| match files.as_slice() {
            [one] => stem(&one.name),
            _ if !report.name.is_empty() => report.name.clone(),
            _ => format!("source{index}"),
        });
    let limit = source.limit.unwrap_or(usize::MAX) as u64;
    for (label, row) in rows {
        if report.rows_read >= limit {
            break;
        }
        gathered.visit_row(env, source, &label, Ok(row), &mut report)?;
    }
    for file in &files {
        let format = format_of(file, source.format)?;
        let label = match (&source.name, files.len()) {
            (Some(name), 1) => name.clone(),
            (Some(name), _) => format!("{name}/{}", stem(&file.name)),
            (None, _) => stem(&file.name),
        };
        let source_file = SourceFile {
            path: file.local_path.clone(),
            name: file.name.clone(),
        };
        let result = read::read_file(&source_file, format, &mut |row| {
            if report.rows_read >= limit {
                return Err(DataError::Stopped);
            }
            gathered.visit_row(env, source, &label, row, &mut report)
        });
        match result {
            Err(DataError::Stopped) => break,
            other => other?,
        }
    }
    report.files = files;
    tracing::info!(source = %report.name, rows = report.rows_read, records = report.records, invalid = report.invalid, "read source");
    Ok(report)
}

/// The text of one evaluation item.
fn eval_text(row: &RawRow, field: Option<&str>) -> Result<String, DataError> {
    let fields = Fields::new(row);
    fields.object()?;
    let field = match field {
        Some(field) => field.to_owned(),
        None if fields.get("ctx_a").is_some() && fields.get("endings").is_some() => {
            return Ok(parse_hellaswag(&fields, String::new())?.question);
        }
        None => [
            "question",
            "query",
            "prompt",
            "sentence",
            "turns",
            "instruction",
            "problem",
        ]
        .iter()
        .find(|name| fields.get(name).is_some())
        .map(|name| (*name).to_owned())
        .ok_or_else(|| {
            fields.error(
                None,
                "no question/query/prompt/sentence/turns field; set `field:`",
            )
        })?,
    };
    match fields.require(&field)? {
        serde_json::Value::Array(_) => Ok(fields.str_list(&field)?.join("\n")),
        _ => Ok(fields.str(&field)?.to_owned()),
    }
}

/// Reads the item texts of an evaluation set: (set name, texts in row order).
pub(crate) fn load_eval_set(
    set: &EvalSetConfig,
    env: &LoadEnv<'_>,
) -> Result<(String, Vec<String>), DataError> {
    let mut files = Vec::new();
    for spec in &set.path {
        files.extend(resolve(spec, env.base_dir, env.hub)?);
    }
    let name = set.name.clone().unwrap_or_else(|| stem(&files[0].name));
    let mut texts = Vec::new();
    for file in &files {
        let format = format_of(file, set.format)?;
        let source_file = SourceFile {
            path: file.local_path.clone(),
            name: file.name.clone(),
        };
        read::read_file(&source_file, format, &mut |row| {
            texts.push(eval_text(&row?, set.field.as_deref())?);
            Ok(())
        })?;
    }
    Ok((name, texts))
}
