//! ARC-Easy and ARC-Challenge (b281b09 `tasks/arc.py`): "Question: {q}\nAnswer:", the test
//! split scored, few-shot examples drawn from train.
//!
//! Rows may have the Hugging Face `ai2_arc` schema (`choices: {text, label}`, `answerKey`, with
//! numeric keys "1"…"5" mapped to letters as the harness does) or the flat shape of the shared
//! files (`choices: [..]`, `gold`).

use serde_json::json;

use super::common::{EvalDoc, harness_config, metric_list, shots, task_error, version};
use super::multiple_choice::{ACC_FIRST, McDoc, MultipleChoiceTask};
use crate::data::{Fields, JsonlFile, split_path};
use crate::error::Result;
use crate::task::TaskOptions;

const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];

/// `arc_easy` (0-shot by default) or `arc_challenge` (25-shot, the leaderboard's).
pub(crate) fn task(name: &str, options: &TaskOptions) -> Result<MultipleChoiceTask> {
    let default_shots = if name == "arc_challenge" { 25 } else { 0 };
    let num_fewshot = shots(options, default_shots);
    let test = JsonlFile::read(&split_path(&options.data_dir, name, "test"))?;
    let mut task = MultipleChoiceTask::new(name, options.harness, num_fewshot);
    task.seed = options.fewshot_seed;
    task.docs = read_docs(&test)?;
    task.files.push(test.data_file("test"));
    if num_fewshot > 0 {
        let train = JsonlFile::read(&split_path(&options.data_dir, name, "train"))?;
        task.pool = read_docs(&train)?.into_iter().map(|d| d.doc).collect();
        task.files.push(train.data_file("train"));
    }
    task.metrics = ACC_FIRST;
    task.version = version(options.harness, 0, 1.0);
    task.config = json!({
        "task": name,
        "dataset_path": "ai2_arc",
        "dataset_name": if name == "arc_easy" { "ARC-Easy" } else { "ARC-Challenge" },
        "output_type": "multiple_choice",
        "training_split": "train",
        "test_split": "test",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "doc_to_choice": "{{choices.text}}",
        "target_delimiter": " ",
        "fewshot_delimiter": "\n\n",
        "num_fewshot": num_fewshot,
        "metric_list": metric_list(ACC_FIRST),
        "erebor": harness_config(options.harness, options.fewshot_seed, "train (random sample)"),
    });
    if task.docs.is_empty() {
        return Err(task_error(
            name,
            format!("{} has no rows", test.path.display()),
        ));
    }
    Ok(task.indexed())
}

fn read_docs(file: &JsonlFile) -> Result<Vec<EvalDoc<McDoc>>> {
    file.rows
        .iter()
        .map(|row| {
            let fields = file.fields(row);
            Ok(EvalDoc {
                doc_id: row.index,
                raw: row.ordered.clone(),
                doc: process(&fields)?,
            })
        })
        .collect()
}

/// b281b09 `ARCEasy._process_doc`.
fn process(fields: &Fields<'_>) -> Result<McDoc> {
    let question = fields.str("question")?;
    let query = format!("Question: {question}\nAnswer:");
    let choices_value = fields.value("choices")?;
    if choices_value.is_object() {
        let choices = fields.nested("choices")?;
        let text = choices
            .get("text")
            .and_then(crate::data::string_list)
            .ok_or_else(|| {
                fields.error("field `choices.text` is missing or not a list of strings")
            })?;
        let key = fields.str("answerKey")?;
        let key = match key {
            "1" => "A",
            "2" => "B",
            "3" => "C",
            "4" => "D",
            "5" => "E",
            other => other,
        };
        let gold = LETTERS.iter().position(|l| *l == key).ok_or_else(|| {
            fields.error(format!(
                "field `answerKey` is `{key}`, not one of A-E or 1-5"
            ))
        })?;
        return Ok(McDoc {
            query,
            choices: text,
            gold,
        });
    }
    let choices = fields.str_list("choices")?;
    let gold = fields.index("gold")?;
    if gold >= choices.len() {
        return Err(fields.error(format!(
            "field `gold` is {gold} but there are {} choices",
            choices.len()
        )));
    }
    Ok(McDoc {
        query,
        choices,
        gold,
    })
}
