//! Mappings from the rows of common dataset formats to SFT conversations and preference pairs.
//!
//! A source's `map:` is a name (`map: arc`) or a table with a `type` and options
//! (`map: {type: fields, prompt: question, chosen: good, rejected: bad}`).
//!
//! | `type` | rows | makes |
//! | --- | --- | --- |
//! | `arc` | `question`, `choices`, `gold` (or HF `choices.{text,label}`, `answerKey`) | one pair per wrong choice |
//! | `hellaswag` | `query`, `choices`, `gold` (or raw `ctx_a`, `ctx_b`, `endings`, `label`) | one pair per wrong ending |
//! | `multiple_choice` | fields named in the options | one pair per wrong choice |
//! | `low_edit` | GSM8K `question`/`answer` or MetaMathQA `query`/`response` | one pair: one intermediate result changed |
//! | `orca_dpo` | `system`, `question`, `chosen`, `rejected` | one pair |
//! | `ultrafeedback` | `chosen`/`rejected` message lists (prompt = all but the last message) | one pair |
//! | `truthy_dpo` | `system`, `prompt`, `chosen`, `rejected` | one pair |
//! | `preference_fields` | fields named in the options | one pair |
//! | `messages` | `messages: [{role, content}]` | one conversation |
//! | `sharegpt` | `conversations: [{from, value}]` | one conversation |
//! | `alpaca` | `instruction`, `input`, `output` | one conversation |
//! | `gsm8k` | `question`, `answer` (annotations stripped) | one conversation |
//! | `sft_fields` | fields named in the options | one conversation |

mod preference;
mod sft;

use crate::builders::low_edit::LowEditSkip;
use crate::error::{RowError, RowLocation};
use crate::fields::Fields;
use crate::read::RawRow;
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
pub fn deserialize_map_spec<'de, D: Deserializer<'de>>(
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

/// The id of a row: `LABEL/OWN_ID` where the row has an `id`-like field, else `LABEL/LINE`
/// (`LABEL/GROUP:ROW` for Parquet).
pub fn row_id(label: &str, fields: &Fields<'_>) -> String {
    let own = ["id", "task_id", "question_id", "ind"]
        .iter()
        .find_map(|key| fields.scalar_text(key));
    match own {
        Some(own) => format!("{label}/{own}"),
        None => match fields.location {
            RowLocation::Line { line, .. } => format!("{label}/{line}"),
            RowLocation::Parquet { row_group, row, .. } => format!("{label}/{row_group}:{row}"),
            RowLocation::Generated { index, .. } => format!("{label}/{index}"),
        },
    }
}

/// Applies `spec` to one row. `label` prefixes ids; `system` is a system prompt for mappings
/// whose rows carry none.
pub fn apply(
    spec: &MapSpec,
    label: &str,
    system: Option<&str>,
    row: &RawRow,
) -> Result<Mapped, RowError> {
    let fields = Fields::new(row);
    fields.object()?;
    let id = row_id(label, &fields);
    let pairs = |records: Vec<PreferenceRecord>| {
        Mapped::Records(records.into_iter().map(Record::Preference).collect())
    };
    let one_sft = |record: SftRecord| Mapped::Records(vec![Record::Sft(record)]);
    use crate::builders::multiple_choice as mc;
    Ok(match spec {
        MapSpec::Arc => pairs(mc::parse_arc(&fields, id)?.pairs(system)),
        MapSpec::Hellaswag => pairs(mc::parse_hellaswag(&fields, id)?.pairs(system)),
        MapSpec::MultipleChoice {
            question,
            choices,
            gold,
        } => pairs(mc::parse_generic(&fields, id, question, choices, gold)?.pairs(system)),
        MapSpec::LowEdit(options) => match preference::low_edit(&fields, id, system, options)? {
            Ok(record) => pairs(vec![record]),
            Err(skip) => Mapped::Skipped(skip_reason(skip)),
        },
        MapSpec::OrcaDpo => pairs(vec![preference::named(
            &fields,
            id,
            system,
            "question",
            "chosen",
            "rejected",
            Some("system"),
        )?]),
        MapSpec::TruthyDpo => pairs(vec![preference::named(
            &fields,
            id,
            system,
            "prompt",
            "chosen",
            "rejected",
            Some("system"),
        )?]),
        MapSpec::PreferenceFields {
            prompt,
            chosen,
            rejected,
            system: system_field,
        } => pairs(vec![preference::named(
            &fields,
            id,
            system,
            prompt,
            chosen,
            rejected,
            system_field.as_deref(),
        )?]),
        MapSpec::Ultrafeedback => pairs(vec![preference::ultrafeedback(&fields, id, system)?]),
        MapSpec::Messages { field } => one_sft(sft::messages(
            &fields,
            id,
            system,
            field.as_deref().unwrap_or("messages"),
        )?),
        MapSpec::Sharegpt { field } => one_sft(sft::sharegpt(
            &fields,
            id,
            system,
            field.as_deref().unwrap_or("conversations"),
        )?),
        MapSpec::Alpaca => one_sft(sft::alpaca(&fields, id, system)?),
        MapSpec::Gsm8k { keep_annotations } => {
            one_sft(sft::gsm8k(&fields, id, system, *keep_annotations)?)
        }
        MapSpec::SftFields {
            prompt,
            response,
            system: system_field,
        } => one_sft(sft::named(
            &fields,
            id,
            system,
            prompt,
            response,
            system_field.as_deref(),
        )?),
    })
}

fn skip_reason(skip: LowEditSkip) -> &'static str {
    skip.as_str()
}
