//! The `with:` block of a `convert` step.

use crate::builders::synth::SynthConfig;
use crate::mappers::{MapSpec, deserialize_map_spec};
use crate::ops::SplitConfig;
use crate::read::Format;
use erebor_core::config::{ConfigError, PathSegment};
use erebor_core::dataset::DatasetKind;
use serde::{Deserialize, Deserializer, Serialize};

/// A `convert` step's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertConfig {
    /// Where rows come from and how each source's rows map to records.
    pub sources: Vec<SourceConfig>,
    /// System message added to rows that have none (kept in the untokenised records).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Skip malformed rows (counted, with the first examples in the report) instead of failing.
    #[serde(default)]
    pub skip_invalid: bool,
    /// Drop rows identical to an earlier one and pairs whose answers are the same text.
    #[serde(default = "default_true")]
    pub dedupe: bool,
    /// Hold out an eval split.
    #[serde(default)]
    pub split: Option<SplitConfig>,
    /// Check training prompts against evaluation sets.
    #[serde(default)]
    pub contamination: Option<ContaminationConfig>,
    /// Model folder or `tokenizer.json` to tokenise with; without it only untokenised records
    /// are written.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// `checkpoint` (default: the tokenizer folder's own template), a built-in name, or a path
    /// to a Jinja file.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Drop rows longer than this many tokens (SFT: the conversation; preference: prompt plus
    /// the longer completion).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Drop preference rows whose prompt is longer than this many tokens.
    #[serde(default)]
    pub max_prompt_length: Option<usize>,
    /// Settings for `hf://` sources.
    #[serde(default)]
    pub hub: HubOptions,
}

fn default_true() -> bool {
    true
}

/// Which split a source's rows go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceSplit {
    /// Training rows (the random eval split may still take some).
    Train,
    /// Held-out rows, all of them.
    Eval,
}

/// One source of rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A path, glob or `hf://datasets/...` URI, or a list of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub path: Vec<String>,
    /// Generate rows with the synthetic arithmetic task instead of reading files.
    #[serde(default)]
    pub synthetic: Option<SynthConfig>,
    /// The file format; by default from the file extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// How rows become records.
    #[serde(deserialize_with = "deserialize_map_spec")]
    pub map: MapSpec,
    /// Prefix of row ids and the source's name in the report; by default the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Put every row of this source in this split.
    #[serde(default)]
    pub split: Option<SourceSplit>,
    /// Read at most this many rows (in file order).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Evaluation sets to check training prompts against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContaminationConfig {
    /// The evaluation sets.
    pub eval_sets: Vec<EvalSetConfig>,
    /// Fail the step when any training prompt overlaps.
    #[serde(default)]
    pub fail_on_overlap: bool,
    /// Remove overlapping rows (reported either way).
    #[serde(default)]
    pub drop_overlapping: bool,
    /// Word n-gram length; 13 as in the GPT-3 and Llama papers.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
}

fn default_ngram() -> usize {
    13
}

/// One evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSetConfig {
    /// A path, glob or `hf://` URI, or a list of them.
    #[serde(deserialize_with = "one_or_many")]
    pub path: Vec<String>,
    /// The item text's field; by default the first of `question`, `query`, `prompt`,
    /// `sentence`, `turns`, `instruction`, `problem` (raw HellaSwag rows become their query).
    #[serde(default)]
    pub field: Option<String>,
    /// The file format; by default from the file extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// Name in the report; by default the file stem.
    #[serde(default)]
    pub name: Option<String>,
}

/// Settings for `hf://` sources; the token always comes from `HF_TOKEN`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubOptions {
    /// Hub address; default `HF_ENDPOINT` or <https://huggingface.co>.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Retries per request after the first attempt (default 4).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Delay before the first retry in milliseconds, doubled each time (default 1000).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Resolve URIs again even when their file list is cached.
    #[serde(default)]
    pub refresh: bool,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(one) => Ok(vec![one]),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Ok(text),
                other => Err(D::Error::custom(format!(
                    "expected a path, found {}",
                    crate::fields::describe(&other)
                ))),
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected a path or a list of paths, found {}",
            crate::fields::describe(&other)
        ))),
    }
}

fn at(segments: &[PathSegment], message: impl Into<String>) -> ConfigError {
    ConfigError::at(segments.to_vec(), message)
}

fn key(name: &str) -> PathSegment {
    PathSegment::Key(name.to_owned())
}

impl ConvertConfig {
    /// Parses and checks a `with:` block; errors name the field.
    pub fn parse(with: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self = erebor_core::parse_with(with)?;
        config.check()?;
        Ok(config)
    }

    /// The kind of dataset the sources make.
    pub fn kind(&self) -> DatasetKind {
        self.sources
            .first()
            .map_or(DatasetKind::Preference, |source| source.map.kind())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.sources.is_empty() {
            return Err(ConfigError::field("sources", "give at least one source"));
        }
        let kind = self.kind();
        for (index, source) in self.sources.iter().enumerate() {
            let here = [key("sources"), PathSegment::Index(index)];
            match (&source.synthetic, source.path.is_empty()) {
                (Some(_), false) | (None, true) => {
                    return Err(at(&here, "give exactly one of `path` and `synthetic`"));
                }
                (Some(synthetic), true) => synthetic
                    .check()
                    .map_err(|e| e.within(&[here[0].clone(), here[1].clone(), key("synthetic")]))?,
                (None, false) => {}
            }
            if source.map.kind() != kind {
                return Err(at(
                    &[here[0].clone(), here[1].clone(), key("map")],
                    format!(
                        "this mapping makes {:?} rows but the first source makes {kind:?} rows; \
                         a convert step writes one kind of dataset",
                        source.map.kind()
                    ),
                ));
            }
        }
        if let Some(split) = &self.split {
            split.check().map_err(|e| e.within(&[key("split")]))?;
        }
        if self.tokenizer.is_none() {
            for field in ["chat_template", "max_length", "max_prompt_length"] {
                let given = match field {
                    "chat_template" => self.chat_template.is_some(),
                    "max_length" => self.max_length.is_some(),
                    _ => self.max_prompt_length.is_some(),
                };
                if given {
                    return Err(ConfigError::field(
                        field,
                        "needs `tokenizer` (lengths are counted in tokens)",
                    ));
                }
            }
        }
        if let Some(contamination) = &self.contamination {
            if contamination.eval_sets.is_empty() {
                return Err(at(
                    &[key("contamination"), key("eval_sets")],
                    "give at least one evaluation set",
                ));
            }
            if contamination.ngram == 0 {
                return Err(at(
                    &[key("contamination"), key("ngram")],
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}
