//! The DPOP paper's ARC and HellaSwag pairs: each question's correct answer paired with each
//! wrong answer (ARC-Challenge train: 1,119 questions → 3,357 pairs; HellaSwag train:
//! 39,905 → 119,715).

use crate::error::RowError;
use crate::fields::Fields;
use erebor_core::dataset::{ChatMessage, PreferenceRecord};
use regex::Regex;
use std::sync::LazyLock;

/// A labelled multiple-choice question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipleChoice {
    /// Stable id of the question.
    pub id: String,
    /// The question (or context) shown to the model.
    pub question: String,
    /// The answer options.
    pub choices: Vec<String>,
    /// Index of the correct option.
    pub gold: usize,
}

impl MultipleChoice {
    /// One pair per wrong option: the prompt is the question, chosen the correct option, rejected
    /// the wrong one. Ids are `QUESTION_ID/WRONG_INDEX`.
    pub fn pairs(&self, system: Option<&str>) -> Vec<PreferenceRecord> {
        let mut prompt = Vec::with_capacity(2);
        if let Some(system) = system {
            prompt.push(ChatMessage::new("system", system));
        }
        prompt.push(ChatMessage::new("user", self.question.clone()));
        self.choices
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != self.gold)
            .map(|(index, wrong)| PreferenceRecord {
                id: format!("{}/{index}", self.id),
                prompt: prompt.clone(),
                chosen: self.choices[self.gold].clone(),
                rejected: wrong.clone(),
            })
            .collect()
    }
}

fn check_gold(
    fields: &Fields<'_>,
    field: &str,
    gold: usize,
    choices: usize,
) -> Result<(), RowError> {
    if choices < 2 {
        return Err(fields.error(
            Some("choices"),
            format!("a question needs at least 2 choices, found {choices}"),
        ));
    }
    if gold >= choices {
        return Err(fields.error(
            Some(field),
            format!("{gold} is not an index of the {choices} choices"),
        ));
    }
    Ok(())
}

/// Reads a question with the given field names (`choices` a list of strings, `gold` an index).
pub(crate) fn parse_generic(
    fields: &Fields<'_>,
    id: String,
    question: &str,
    choices: &str,
    gold: &str,
) -> Result<MultipleChoice, RowError> {
    let question_text = fields.str(question)?.trim().to_owned();
    let options: Vec<String> = fields
        .str_list(choices)?
        .into_iter()
        .map(|choice| choice.trim().to_owned())
        .collect();
    let gold_index = fields.index(gold)?;
    check_gold(fields, gold, gold_index, options.len())?;
    Ok(MultipleChoice {
        id,
        question: question_text,
        choices: options,
        gold: gold_index,
    })
}

/// Reads an ARC question: either the flat form (`question`, `choices: [..]`, `gold`) or the
/// Hugging Face `allenai/ai2_arc` form (`question`, `choices: {text, label}`, `answerKey`).
pub(crate) fn parse_arc(fields: &Fields<'_>, id: String) -> Result<MultipleChoice, RowError> {
    if fields.get("choices.text").is_none() {
        return parse_generic(fields, id, "question", "choices", "gold");
    }
    let question = fields.str("question")?.trim().to_owned();
    let texts = fields.str_list("choices.text")?;
    let labels = fields.str_list("choices.label")?;
    if labels.len() != texts.len() {
        return Err(fields.error(
            Some("choices.label"),
            format!("{} labels for {} choices", labels.len(), texts.len()),
        ));
    }
    let key = fields.str("answerKey")?.trim();
    let gold = labels
        .iter()
        .position(|label| label.trim() == key)
        .ok_or_else(|| {
            fields.error(
                Some("answerKey"),
                format!("`{key}` is not one of the labels {labels:?}"),
            )
        })?;
    check_gold(fields, "answerKey", gold, texts.len())?;
    Ok(MultipleChoice {
        id,
        question,
        choices: texts
            .into_iter()
            .map(|text| text.trim().to_owned())
            .collect(),
        gold,
    })
}

/// lm-evaluation-harness' HellaSwag text clean-up: WikiHow's `[title]` becomes a sentence
/// break, other bracketed tags go, double spaces collapse.
pub fn hellaswag_preprocess(text: &str) -> String {
    static BRACKETS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[.*?\]").expect("regex"));
    let text = text.trim().replace(" [title]", ". ");
    BRACKETS.replace_all(&text, "").replace("  ", " ")
}

/// Python's `str.capitalize`: first character upper case, the rest lower case.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Reads a HellaSwag item: the preprocessed form (`query`, `choices`, `gold`) or the raw one
/// (`activity_label`, `ctx_a`, `ctx_b`, `endings`, `label`), preprocessed as
/// lm-evaluation-harness does.
pub(crate) fn parse_hellaswag(fields: &Fields<'_>, id: String) -> Result<MultipleChoice, RowError> {
    if fields.get("query").is_some() {
        return parse_generic(fields, id, "query", "choices", "gold");
    }
    let context = format!(
        "{} {}",
        fields.str("ctx_a")?,
        capitalize(fields.opt_str("ctx_b")?.unwrap_or(""))
    );
    let query = hellaswag_preprocess(&format!("{}: {}", fields.str("activity_label")?, context));
    let endings: Vec<String> = fields
        .str_list("endings")?
        .into_iter()
        .map(hellaswag_preprocess)
        .collect();
    let gold = fields.index("label")?;
    check_gold(fields, "label", gold, endings.len())?;
    Ok(MultipleChoice {
        id,
        question: query,
        choices: endings,
        gold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RowLocation;
    use crate::read::RawRow;
    use serde_json::json;

    fn raw(value: serde_json::Value) -> RawRow {
        RawRow {
            location: RowLocation::Line {
                file: "arc.jsonl".into(),
                line: 9,
            },
            value,
        }
    }

    #[test]
    fn each_wrong_answer_makes_one_pair() {
        let row = raw(json!({"question": "Q?", "choices": ["a", "b", "c", "d"], "gold": 2}));
        let question = parse_arc(&Fields::new(&row), "q1".into()).unwrap();
        let pairs = question.pairs(None);
        assert_eq!(pairs.len(), 3);
        assert!(pairs.iter().all(|pair| pair.chosen == "c"));
        let rejected: Vec<_> = pairs.iter().map(|pair| pair.rejected.as_str()).collect();
        assert_eq!(rejected, ["a", "b", "d"]);
        assert_eq!(pairs[2].id, "q1/3");
        assert_eq!(pairs[0].prompt, vec![ChatMessage::new("user", "Q?")]);
    }

    #[test]
    fn the_hub_form_of_arc_uses_answer_key_labels() {
        let row = raw(json!({"question": "Q?", "answerKey": "B",
            "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}}));
        let question = parse_arc(&Fields::new(&row), "q".into()).unwrap();
        assert_eq!(question.gold, 1);
        let bad = raw(json!({"question": "Q?", "answerKey": "E",
            "choices": {"text": ["x", "y"], "label": ["A", "B"]}}));
        let error = parse_arc(&Fields::new(&bad), "q".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "arc.jsonl:9: field `answerKey`: `E` is not one of the labels [\"A\", \"B\"]"
        );
    }

    #[test]
    fn a_gold_index_out_of_range_is_named() {
        let row = raw(json!({"question": "Q?", "choices": ["a", "b"], "gold": 2}));
        let error = parse_arc(&Fields::new(&row), "q".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "arc.jsonl:9: field `gold`: 2 is not an index of the 2 choices"
        );
    }

    #[test]
    fn raw_hellaswag_is_preprocessed_like_the_harness() {
        // Values from the first row of HellaSwag validation; the expected query is what
        // lm-evaluation-harness' `process_docs` makes of it.
        let row = raw(json!({"activity_label": "Roof shingle removal",
            "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
            "endings": ["is using wrap to wrap a pair of skis.", "a [header] b  [title] c"],
            "label": "1"}));
        let item = parse_hellaswag(&Fields::new(&row), "h".into()).unwrap();
        assert_eq!(
            item.question,
            "Roof shingle removal: A man is sitting on a roof. He"
        );
        assert_eq!(item.choices[1], "a b . c");
        assert_eq!(item.gold, 1);
    }
}
