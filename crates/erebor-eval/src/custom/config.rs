//! The custom task file: lm-eval 0.4's task YAML keys (so users can reuse theirs), plus
//! erebor's `dataset:` shorthand and an answer-extracting `regex` on `exact_match`.
//! Unknown keys are errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A custom task file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomTaskConfig {
    /// The task's name in results and metric keys.
    pub task: String,
    /// erebor's data source: a folder, a file, or files by split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetSpec>,
    /// lm-eval's `dataset_path`: `json` (files in `dataset_kwargs.data_files`) or a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_path: Option<String>,
    /// lm-eval's `dataset_name` (recorded; files come from `data_files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// lm-eval's `dataset_kwargs` (`data_files` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_kwargs: Option<DatasetKwargs>,
    /// Split scored (preferred over `validation_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_split: Option<String>,
    /// Split scored when there is no `test_split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<String>,
    /// Few-shot pool when there is no `fewshot_split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_split: Option<String>,
    /// Few-shot pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fewshot_split: Option<String>,
    /// `multiple_choice` or `generate_until` (lm-eval's default).
    #[serde(default)]
    pub output_type: OutputType,
    /// Prompt: a Jinja template, a field name, or (multiple-input tasks) a choice index.
    pub doc_to_text: TextSpec,
    /// Choices: a list, a field name, or a template yielding a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_to_choice: Option<ChoiceSpec>,
    /// Answer: an index into the choices, a field name, or a template.
    pub doc_to_target: TextSpec,
    /// Default number of few-shot examples (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_fewshot: Option<usize>,
    /// After each few-shot example.
    #[serde(default = "default_fewshot_delimiter")]
    pub fewshot_delimiter: String,
    /// Between a prompt and its answer (and before each choice).
    #[serde(default = "default_target_delimiter")]
    pub target_delimiter: String,
    /// Prepended to every context, as written.
    #[serde(default)]
    pub description: String,
    /// Metrics: `acc`, `acc_norm` (multiple choice), `exact_match` (generation).
    #[serde(default)]
    pub metric_list: Vec<MetricSpec>,
    /// Generation settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_kwargs: Option<GenerationKwargs>,
    /// At most one filter pipeline applied to generations before scoring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_list: Vec<FilterSpec>,
    /// `sampler: default | first_n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fewshot_config: Option<FewshotConfig>,
    /// Must be 1 (greedy decoding repeats nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
    /// lm-eval metadata (`version` is reported in `versions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// lm-eval tags (recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<serde_json::Value>,
    /// lm-eval's display alias (recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_alias: Option<String>,
    /// Decontamination settings (recorded, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_decontaminate: Option<bool>,
    /// Decontamination query (recorded, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_to_decontamination_query: Option<String>,
}

fn default_fewshot_delimiter() -> String {
    "\n\n".into()
}

fn default_target_delimiter() -> String {
    " ".into()
}

/// erebor's data source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetSpec {
    /// A JSONL file (every split) or a folder (`<split>.jsonl` or `<task>_<split>.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// JSONL files by split name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<DataFiles>,
}

/// lm-eval's `dataset_kwargs`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetKwargs {
    /// As `datasets.load_dataset("json", data_files=…)`: a file (the `train` split) or files
    /// by split.
    pub data_files: DataFiles,
}

/// One file (split `train`, as Hugging Face `datasets` names it) or files by split.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum DataFiles {
    /// One file.
    One(String),
    /// Files by split.
    BySplit(BTreeMap<String, String>),
}

/// What the task asks the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// One loglikelihood request per choice.
    MultipleChoice,
    /// Greedy generation until a stop string.
    #[default]
    GenerateUntil,
}

/// A template, a field name, or a fixed index.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum TextSpec {
    /// A fixed index.
    Index(usize),
    /// A field name or a Jinja template.
    Template(String),
}

/// Choices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum ChoiceSpec {
    /// Fixed choices.
    List(Vec<String>),
    /// A field name or a template yielding a list.
    Template(String),
}

/// One `metric_list` entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricSpec {
    /// `acc`, `acc_norm` or `exact_match`.
    pub metric: String,
    /// `mean` (the only aggregation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<String>,
    /// Must be true for these metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
    /// `exact_match`: compare lower-cased.
    #[serde(default)]
    pub ignore_case: bool,
    /// `exact_match`: drop ASCII punctuation.
    #[serde(default)]
    pub ignore_punctuation: bool,
    /// `exact_match`: drop ASCII digits.
    #[serde(default)]
    pub ignore_numbers: bool,
    /// `exact_match`: patterns removed from both strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regexes_to_ignore: Vec<String>,
    /// `exact_match` (erebor): extract the answer from the generation and from the target with
    /// this pattern (its first group, else the whole match) before comparing; a generation
    /// without a match scores 0, a target without one is compared whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// Generation settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerationKwargs {
    /// Stop strings (default: the few-shot delimiter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<StopStrings>,
    /// Most new tokens (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gen_toks: Option<usize>,
    /// Must be false: decoding is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_sample: Option<bool>,
    /// Must be 0: decoding is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

/// One stop string or several.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum StopStrings {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl StopStrings {
    /// As a list.
    pub(crate) fn to_vec(&self) -> Vec<String> {
        match self {
            StopStrings::One(s) => vec![s.clone()],
            StopStrings::Many(v) => v.clone(),
        }
    }
}

/// A named filter pipeline.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterSpec {
    /// Its name (`strict-match`, …).
    pub name: String,
    /// Its steps, in order.
    pub filter: Vec<FilterStep>,
}

/// One filter step: `regex` (`regex_pattern`, `group_select`, `fallback`), `take_first`,
/// `remove_whitespace`, `lowercase`, `uppercase`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterStep {
    /// The step's kind.
    pub function: String,
    /// `regex`: the pattern (default GSM8K's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_pattern: Option<String>,
    /// `regex`: which match (negative from the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_select: Option<i64>,
    /// `regex`: what a generation without a match becomes (`[invalid]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Few-shot settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FewshotConfig {
    /// `default` (random draw) or `first_n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
}
