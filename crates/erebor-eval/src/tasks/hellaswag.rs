//! HellaSwag (b281b09 `tasks/hellaswag.py`): the validation split scored, 10-shot from train.
//!
//! Raw rows (`activity_label`, `ctx_a`, `ctx_b`, `endings`, `label`) are processed as the
//! harness does: query `preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`,
//! choices `preprocess(ending)`. Rows already processed (`query`, `choices`, `gold`, as the
//! shared `hellaswag_train.jsonl`) are taken as they are: `preprocess` is not idempotent.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use super::common::{
    EvalDoc, harness_config, metric_list, py_capitalize, py_strip, shots, task_error, version,
};
use super::multiple_choice::{ACC_FIRST, McDoc, MultipleChoiceTask};
use crate::data::{Fields, JsonlFile, split_path};
use crate::error::Result;
use crate::output::pyjson::PyValue;
use crate::task::TaskOptions;

static BRACKETS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[.*?\]").expect("valid pattern"));

/// b281b09 `HellaSwag.preprocess`: strip, `" [title]"` → `". "`, drop `[...]`, one pass of
/// "  " → " ".
pub fn preprocess(text: &str) -> String {
    let text = py_strip(text).replace(" [title]", ". ");
    BRACKETS.replace_all(&text, "").replace("  ", " ")
}

/// `hellaswag`, 10-shot by default.
pub(crate) fn task(options: &TaskOptions) -> Result<MultipleChoiceTask> {
    let name = "hellaswag";
    let num_fewshot = shots(options, 10);
    let validation = JsonlFile::read(&split_path(&options.data_dir, name, "validation"))?;
    let mut task = MultipleChoiceTask::new(name, options.harness, num_fewshot);
    task.seed = options.fewshot_seed;
    task.docs = read_docs(&validation)?;
    task.files.push(validation.data_file("validation"));
    if num_fewshot > 0 {
        let train = JsonlFile::read(&split_path(&options.data_dir, name, "train"))?;
        task.pool = read_docs(&train)?.into_iter().map(|d| d.doc).collect();
        task.files.push(train.data_file("train"));
    }
    task.version = version(options.harness, 0, 1.0);
    task.config = json!({
        "task": name,
        "dataset_path": "hellaswag",
        "output_type": "multiple_choice",
        "training_split": "train",
        "validation_split": "validation",
        "doc_to_text": "{{query}}",
        "doc_to_target": "{{label}}",
        "doc_to_choice": "choices",
        "target_delimiter": " ",
        "fewshot_delimiter": "\n\n",
        "num_fewshot": num_fewshot,
        "metric_list": metric_list(ACC_FIRST),
        "erebor": harness_config(options.harness, options.fewshot_seed, "train (random sample)"),
    });
    if task.docs.is_empty() {
        return Err(task_error(
            name,
            format!("{} has no rows", validation.path.display()),
        ));
    }
    Ok(task.indexed())
}

fn read_docs(file: &JsonlFile) -> Result<Vec<EvalDoc<McDoc>>> {
    file.rows
        .iter()
        .map(|row| {
            let fields = file.fields(row);
            let doc = process(&fields)?;
            Ok(EvalDoc {
                doc_id: row.index,
                raw: as_lm_eval_doc(&row.ordered, &doc),
                doc,
            })
        })
        .collect()
}

/// The document as lm-eval 0.4's `process_docs` (`datasets.map`) leaves it: the row's keys,
/// then `query`, `choices` and `gold` (replaced in place when the row already has them).
fn as_lm_eval_doc(row: &PyValue, doc: &McDoc) -> PyValue {
    let mut out = row.clone();
    out.set("query", PyValue::str(doc.query.as_str()));
    out.set(
        "choices",
        PyValue::List(
            doc.choices
                .iter()
                .map(|c| PyValue::str(c.as_str()))
                .collect(),
        ),
    );
    out.set("gold", PyValue::Int(doc.gold as i128));
    out
}

fn process(fields: &Fields<'_>) -> Result<McDoc> {
    if fields.has("query") {
        let choices = fields.str_list("choices")?;
        let gold = fields.index("gold")?;
        return Ok(McDoc {
            query: fields.str("query")?.to_string(),
            choices,
            gold,
        });
    }
    let context = format!(
        "{} {}",
        fields.str("ctx_a")?,
        py_capitalize(fields.str("ctx_b")?)
    );
    let query = preprocess(&format!("{}: {context}", fields.str("activity_label")?));
    let choices = fields
        .str_list("endings")?
        .iter()
        .map(|e| preprocess(e))
        .collect();
    let gold = fields.index("label")?;
    Ok(McDoc {
        query,
        choices,
        gold,
    })
}
