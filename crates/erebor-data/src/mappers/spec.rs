//! What a source's `map:` says ([`MapSpec`] and its options) and what a mapping makes of a row
//! ([`Mapped`], [`Record`]).

use erebor_core::dataset::{DatasetKind, PreferenceRecord, SftRecord};
use serde::{Deserialize, Deserializer, Serialize};

/// A converted row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Record {
    /// A conversation for SFT.
    Sft(SftRecord),
    /// A preference pair.
    Preference(PreferenceRecord),
}

impl Record {
    /// The row's id.
    pub fn id(&self) -> &str {
        match self {
            Record::Sft(record) => &record.id,
            Record::Preference(record) => &record.id,
        }
    }
}

/// Options of the `low_edit` mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowEditOptions {
    /// Seed of the choice of result and new value; each row's draw depends only on it and the
    /// row's id.
    #[serde(default)]
    pub seed: u64,
    /// Question field; default `question`, else `query`.
    #[serde(default)]
    pub question: Option<String>,
    /// Solution field; default `answer`, else `response`.
    #[serde(default)]
    pub answer: Option<String>,
    /// Keep GSM8K calculator annotations (`<<2*3=6>>`) instead of stripping them.
    #[serde(default)]
    pub keep_annotations: bool,
}

/// The mapping of a source's rows (see the module docs for the table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MapSpec {
    /// ARC questions → pairs.
    Arc,
    /// HellaSwag contexts → pairs.
    Hellaswag,
    /// Any multiple-choice rows → pairs.
    MultipleChoice {
        /// Question field.
        question: String,
        /// Field with the list of choices.
        choices: String,
        /// Field with the index of the correct choice.
        gold: String,
    },
    /// Worked solutions → low-edit pairs.
    LowEdit(LowEditOptions),
    /// Orca-DPO pairs.
    OrcaDpo,
    /// UltraFeedback-binarized pairs.
    Ultrafeedback,
    /// Truthy-DPO pairs.
    TruthyDpo,
    /// Preference rows with named fields.
    PreferenceFields {
        /// Prompt field.
        prompt: String,
        /// Chosen answer field.
        chosen: String,
        /// Rejected answer field.
        rejected: String,
        /// Optional system message field.
        #[serde(default)]
        system: Option<String>,
    },
    /// OpenAI-style message lists.
    Messages {
        /// The list's field; default `messages`.
        #[serde(default)]
        field: Option<String>,
    },
    /// ShareGPT conversations.
    Sharegpt {
        /// The list's field; default `conversations`.
        #[serde(default)]
        field: Option<String>,
    },
    /// Alpaca instructions.
    Alpaca,
    /// GSM8K question and worked answer as one exchange.
    Gsm8k {
        /// Keep calculator annotations.
        #[serde(default)]
        keep_annotations: bool,
    },
    /// SFT rows with named fields.
    SftFields {
        /// Prompt field.
        prompt: String,
        /// Response field.
        response: String,
        /// Optional system message field.
        #[serde(default)]
        system: Option<String>,
    },
}

/// `map: arc` as shorthand for `map: {type: arc}`.
pub(crate) fn deserialize_map_spec<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<MapSpec, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    let value = match value {
        serde_json::Value::String(name) => serde_json::json!({ "type": name }),
        other => other,
    };
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

impl MapSpec {
    /// Whether this mapping makes SFT conversations or preference pairs.
    pub fn kind(&self) -> DatasetKind {
        match self {
            MapSpec::Messages { .. }
            | MapSpec::Sharegpt { .. }
            | MapSpec::Alpaca
            | MapSpec::Gsm8k { .. }
            | MapSpec::SftFields { .. } => DatasetKind::Sft,
            _ => DatasetKind::Preference,
        }
    }
}

/// What a mapping made of one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// Zero or more records.
    Records(Vec<Record>),
    /// A valid row that gives no record, with the reason (e.g. a solution without an
    /// intermediate result to change).
    Skipped(&'static str),
}
