//! WinoGrande XL (b281b09 `tasks/winogrande.py`): partial evaluation. The context is the
//! sentence up to the blank with an option filled in, the continuation `" " + the rest`; the
//! few-shot examples are sentences filled with their right option. The validation split is
//! scored, 5-shot from train (`winogrande_xl_{validation,train}.jsonl`, or `winogrande_…`).

use serde_json::json;

use super::common::{
    EvalDoc, document_error, harness_config, loglikelihoods, metric_list, py_strip, shots,
    task_error, version,
};
use crate::data::{Fields, JsonlFile, read_first_existing, split_path};
use crate::error::Result;
use crate::fewshot::{self, B281B09_DELIMITERS, Example, PlanSpec, ShotSource};
use crate::metrics;
use crate::task::{
    DataFile, DocInstance, Harness, MetricInfo, Request, Response, Task, TaskOptions,
};

const NAME: &str = "winogrande";
const METRICS: &[MetricInfo] = &[MetricInfo {
    name: "acc",
    higher_is_better: true,
}];

/// A WinoGrande sentence split at its blank.
#[derive(Clone, Debug)]
struct Doc {
    /// The sentence before `_`.
    before: String,
    /// `" " + the sentence after "_", stripped` (`partial_target`).
    target: String,
    options: [String; 2],
    /// 0 or 1 (`answer_to_num`).
    gold: usize,
}

impl Doc {
    /// `partial_context(doc, option)`.
    fn context(&self, option: usize) -> String {
        format!("{}{}", self.before, self.options[option])
    }
}

/// The `winogrande` task.
pub(crate) struct Winogrande {
    harness: Harness,
    seed: Option<u64>,
    num_fewshot: usize,
    docs: Vec<EvalDoc<Doc>>,
    pool: Vec<Doc>,
    files: Vec<DataFile>,
}

/// `winogrande`, 5-shot by default.
pub(crate) fn task(options: &TaskOptions) -> Result<Winogrande> {
    let num_fewshot = shots(options, 5);
    let read = |split: &str| {
        let dir = &options.data_dir;
        read_first_existing(
            NAME,
            &[
                split_path(dir, "winogrande_xl", split),
                split_path(dir, NAME, split),
            ],
        )
    };
    let validation = read("validation")?;
    let docs = read_docs(&validation)?;
    if docs.is_empty() {
        return Err(task_error(
            NAME,
            format!("{} has no rows", validation.path.display()),
        ));
    }
    let mut files = vec![validation.data_file("validation")];
    let mut pool = Vec::new();
    if num_fewshot > 0 {
        let train = read("train")?;
        pool = read_docs(&train)?.into_iter().map(|d| d.doc).collect();
        files.push(train.data_file("train"));
    }
    Ok(Winogrande {
        harness: options.harness,
        seed: options.fewshot_seed,
        num_fewshot,
        docs,
        pool,
        files,
    })
}

fn read_docs(file: &JsonlFile) -> Result<Vec<EvalDoc<Doc>>> {
    file.rows
        .iter()
        .map(|row| {
            Ok(EvalDoc {
                doc_id: row.index,
                raw: row.ordered.clone(),
                doc: process(&file.fields(row))?,
            })
        })
        .collect()
}

fn process(fields: &Fields<'_>) -> Result<Doc> {
    let sentence = fields.str("sentence")?;
    let blank = sentence
        .find('_')
        .ok_or_else(|| fields.error("field `sentence` has no `_` blank"))?;
    let gold = match fields.str("answer")? {
        "1" => 0,
        "2" => 1,
        other => {
            return Err(fields.error(format!("field `answer` is `{other}`, not \"1\" or \"2\"")));
        }
    };
    Ok(Doc {
        before: sentence[..blank].to_string(),
        target: format!(" {}", py_strip(&sentence[blank + 1..])),
        options: [
            fields.str("option1")?.to_string(),
            fields.str("option2")?.to_string(),
        ],
        gold,
    })
}

/// b281b09 `Winogrande.append_context`: the context split on "\n\n", its last part (the
/// document's own sentence) replaced by `partial`.
fn append_context(context: &str, partial: &str) -> String {
    let mut parts: Vec<&str> = context.split("\n\n").collect();
    parts.pop();
    parts.push(partial);
    parts.join("\n\n")
}

impl Winogrande {
    fn instance(&self, doc: &EvalDoc<Doc>, shots: &[usize]) -> DocInstance {
        let examples: Vec<Example> = shots
            .iter()
            .map(|&i| Example {
                text: self.pool[i].context(self.pool[i].gold),
                target: self.pool[i].target.clone(),
            })
            .collect();
        let right = doc.doc.context(doc.doc.gold);
        let context = fewshot::build_context("", &examples, B281B09_DELIMITERS, &right);
        let prefix = &context[..context.len() - right.len()];
        let requests = (0..2)
            .map(|option| {
                let partial = doc.doc.context(option);
                let context = match self.harness {
                    Harness::B281b09 => append_context(&context, &partial),
                    Harness::V04 => format!("{prefix}{partial}"),
                };
                Request::Loglikelihood {
                    context,
                    continuation: doc.doc.target.clone(),
                }
            })
            .collect();
        DocInstance {
            doc_id: doc.doc_id,
            doc: doc.raw.clone(),
            target: doc.doc.gold.to_string(),
            requests,
        }
    }
}

impl Task for Winogrande {
    fn name(&self) -> &str {
        NAME
    }

    fn num_fewshot(&self) -> usize {
        self.num_fewshot
    }

    fn metrics(&self) -> &[MetricInfo] {
        METRICS
    }

    fn version(&self) -> serde_json::Value {
        version(self.harness, 0, 1.0)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "task": NAME,
            "dataset_path": "winogrande",
            "dataset_name": "winogrande_xl",
            "output_type": "multiple_choice",
            "training_split": "train",
            "validation_split": "validation",
            "doc_to_text": "partial_context(sentence[:index('_')] + option)",
            "doc_to_target": "' ' + sentence[index('_') + 1:].strip()",
            "fewshot_delimiter": "\n\n",
            "num_fewshot": self.num_fewshot,
            "metric_list": metric_list(METRICS),
            "erebor": harness_config(self.harness, self.seed, "train (random sample)"),
        })
    }

    fn data_files(&self) -> Vec<DataFile> {
        self.files.clone()
    }

    fn instances(&self, limit: Option<usize>) -> Result<Vec<DocInstance>> {
        let spec = PlanSpec {
            harness: self.harness,
            seed: self.seed,
            num_docs: self.docs.len(),
            limit,
            num_fewshot: self.num_fewshot,
            source: ShotSource::Sample {
                len: self.pool.len(),
                exclude_doc: false,
            },
        };
        let plan = fewshot::plan(NAME, &spec, &|_, _| false)?;
        Ok(plan
            .iter()
            .map(|p| self.instance(&self.docs[p.doc], &p.shots))
            .collect())
    }

    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> Result<Vec<(String, f64)>> {
        let doc = self
            .docs
            .get(instance.doc_id)
            .filter(|d| d.doc_id == instance.doc_id)
            .ok_or_else(|| {
                document_error(NAME, instance.doc_id, "not a document of this task".into())
            })?;
        let lls = loglikelihoods(NAME, instance.doc_id, responses, 2)?;
        Ok(vec![("acc".into(), metrics::acc(&lls, doc.doc.gold))])
    }
}
