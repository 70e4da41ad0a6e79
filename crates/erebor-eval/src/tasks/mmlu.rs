//! MMLU (b281b09 `tasks/hendrycks_test.py`), one task per subject (`mmlu_<subject>`, group
//! `mmlu`): the test split scored, the first k dev items of the subject as few-shot examples,
//! in file order (no draw), and the description "The following are multiple choice questions
//! (with answers) about {subject with spaces}.\n\n".
//!
//! `mmlu_test.jsonl` and `mmlu_dev.jsonl` hold all subjects (`subject` field); each
//! subject's split is its rows in file order. A document's `doc_id` is its line index in
//! `mmlu_test.jsonl`.

use std::collections::BTreeMap;

use serde_json::json;

use super::common::{EvalDoc, harness_config, metric_list, py_strip, shots, task_error, version};
use super::multiple_choice::{ACC_FIRST, McDoc, MultipleChoiceTask};
use crate::data::{Fields, JsonlFile, split_path};
use crate::error::Result;
use crate::task::TaskOptions;

/// The 57 subjects, in the harness's order.
pub const MMLU_SUBJECTS: [&str; 57] = [
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
];

const KEYS: [&str; 4] = ["A", "B", "C", "D"];

/// One task per subject in `subjects` (in that order), reading the two files once.
pub(crate) fn tasks(subjects: &[&str], options: &TaskOptions) -> Result<Vec<MultipleChoiceTask>> {
    if let Some(unknown) = subjects.iter().find(|s| !MMLU_SUBJECTS.contains(s)) {
        return Err(task_error(
            &format!("mmlu_{unknown}"),
            "unknown MMLU subject",
        ));
    }
    let num_fewshot = shots(options, 5);
    let test = JsonlFile::read(&split_path(&options.data_dir, "mmlu", "test"))?;
    let mut test_docs = by_subject(&test)?;
    let (dev, mut dev_docs) = if num_fewshot > 0 {
        let dev = JsonlFile::read(&split_path(&options.data_dir, "mmlu", "dev"))?;
        let docs = by_subject(&dev)?;
        (Some(dev), docs)
    } else {
        (None, BTreeMap::new())
    };
    subjects
        .iter()
        .map(|subject| {
            let name = format!("mmlu_{subject}");
            let mut task = MultipleChoiceTask::new(&name, options.harness, num_fewshot);
            task.group = Some("mmlu".into());
            task.seed = options.fewshot_seed;
            task.first_n = true;
            task.metrics = ACC_FIRST;
            task.docs = test_docs.remove(*subject).unwrap_or_default();
            if task.docs.is_empty() {
                return Err(task_error(
                    &name,
                    format!(
                        "{} has no rows with subject `{subject}`",
                        test.path.display()
                    ),
                ));
            }
            task.files.push(test.data_file("test"));
            if let Some(dev) = &dev {
                task.pool = dev_docs
                    .remove(*subject)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| d.doc)
                    .collect();
                task.files.push(dev.data_file("dev"));
            }
            let description = format!(
                "The following are multiple choice questions (with answers) about {}.",
                subject.replace('_', " ")
            );
            task.description = format!("{description}\n\n");
            task.version = version(options.harness, 1, 1.0);
            task.config = config(&name, subject, &task.description, num_fewshot, options);
            Ok(task.indexed())
        })
        .collect()
}

fn config(
    name: &str,
    subject: &str,
    description: &str,
    num_fewshot: usize,
    options: &TaskOptions,
) -> serde_json::Value {
    json!({
        "task": name,
        "task_alias": subject,
        "group": "mmlu",
        "dataset_path": "cais/mmlu",
        "dataset_name": subject,
        "output_type": "multiple_choice",
        "test_split": "test",
        "fewshot_split": "dev",
        "fewshot_config": {"sampler": "first_n"},
        "description": description,
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
        "doc_to_choice": KEYS,
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "fewshot_delimiter": "\n\n",
        "num_fewshot": num_fewshot,
        "metric_list": metric_list(ACC_FIRST),
        "erebor": harness_config(options.harness, options.fewshot_seed, "dev (first k, in order)"),
    })
}

fn by_subject(file: &JsonlFile) -> Result<BTreeMap<String, Vec<EvalDoc<McDoc>>>> {
    let mut subjects: BTreeMap<String, Vec<EvalDoc<McDoc>>> = BTreeMap::new();
    for row in &file.rows {
        let fields = file.fields(row);
        let subject = fields.str("subject")?.to_string();
        let doc = EvalDoc {
            doc_id: row.index,
            raw: row.ordered.clone(),
            doc: process(&fields)?,
        };
        subjects.entry(subject).or_default().push(doc);
    }
    Ok(subjects)
}

/// b281b09 `GeneralHendrycksTest._process_doc`: the question stripped, one "K. choice" line per
/// choice (zipped with A-D), "Answer:"; the choices are the letters.
fn process(fields: &Fields<'_>) -> Result<McDoc> {
    let question = py_strip(fields.str("question")?);
    let mut options = String::new();
    for (key, choice) in KEYS.iter().zip(fields.str_list("choices")?) {
        options.push_str(&format!("{key}. {choice}\n"));
    }
    Ok(McDoc {
        query: format!("{question}\n{options}Answer:"),
        choices: KEYS.iter().map(ToString::to_string).collect(),
        gold: fields.index("answer")?,
    })
}
