//! [`apply`]: one row through its source's mapping; [`row_id`]: the id its records get.

use super::spec::{MapSpec, Mapped, Record};
use super::{preference, sft};
use crate::builders::low_edit::LowEditSkip;
use crate::builders::multiple_choice as mc;
use crate::error::{RowError, RowLocation};
use crate::fields::Fields;
use crate::read::RawRow;
use erebor_core::dataset::{PreferenceRecord, SftRecord};

/// The id of a row: `LABEL/OWN_ID` where the row has an `id`-like field, else `LABEL/LINE`
/// (`LABEL/GROUP:ROW` for Parquet).
pub(crate) fn row_id(label: &str, fields: &Fields<'_>) -> String {
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
        MapSpec::OrcaDpo => {
            let keys = ["question", "chosen", "rejected"];
            named_pair(&fields, id, system, keys, Some("system"))?
        }
        MapSpec::TruthyDpo => {
            let keys = ["prompt", "chosen", "rejected"];
            named_pair(&fields, id, system, keys, Some("system"))?
        }
        MapSpec::PreferenceFields {
            prompt,
            chosen,
            rejected,
            system: system_field,
        } => {
            let keys = [prompt.as_str(), chosen.as_str(), rejected.as_str()];
            named_pair(&fields, id, system, keys, system_field.as_deref())?
        }
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

/// Preference records as what a mapping made.
fn pairs(records: Vec<PreferenceRecord>) -> Mapped {
    Mapped::Records(records.into_iter().map(Record::Preference).collect())
}

/// One SFT record as what a mapping made.
fn one_sft(record: SftRecord) -> Mapped {
    Mapped::Records(vec![Record::Sft(record)])
}

/// One pair from the fields named `[prompt, chosen, rejected]` (and the system prompt's field).
fn named_pair(
    fields: &Fields<'_>,
    id: String,
    system: Option<&str>,
    [prompt, chosen, rejected]: [&str; 3],
    system_field: Option<&str>,
) -> Result<Mapped, RowError> {
    let pair = preference::named(fields, id, system, prompt, chosen, rejected, system_field)?;
    Ok(pairs(vec![pair]))
}

fn skip_reason(skip: LowEditSkip) -> &'static str {
    skip.as_str()
}
