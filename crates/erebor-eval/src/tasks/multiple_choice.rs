//! b281b09's `MultipleChoiceTask` (ARC, HellaSwag, MMLU): documents `{query, choices, gold}`,
//! one loglikelihood request `" " + choice` per choice after the few-shot context, `acc` and
//! `acc_norm`.

use std::collections::HashMap;

use serde_json::Value;

use super::common::{EvalDoc, loglikelihoods};
use crate::error::Result;
use crate::fewshot::{self, B281B09_DELIMITERS, Example, PlanSpec, ShotSource};
use crate::metrics;
use crate::task::{DataFile, DocInstance, Harness, MetricInfo, Request, Response, Task};

/// A processed multiple-choice document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct McDoc {
    /// `doc_to_text`.
    pub query: String,
    /// The answers, without the continuation's leading space.
    pub choices: Vec<String>,
    /// Index of the right answer.
    pub gold: usize,
}

impl McDoc {
    fn example(&self) -> Example {
        Example {
            text: self.query.clone(),
            target: format!(
                " {}",
                self.choices.get(self.gold).map_or("", String::as_str)
            ),
        }
    }
}

/// `acc`, then `acc_norm`: lm-eval's order (its arc, hellaswag and mmlu YAMLs list them so).
pub(crate) const ACC_FIRST: &[MetricInfo] = &[
    MetricInfo {
        name: "acc",
        higher_is_better: true,
    },
    MetricInfo {
        name: "acc_norm",
        higher_is_better: true,
    },
];

/// Everything a multiple-choice task is made of.
pub(crate) struct MultipleChoiceTask {
    pub name: String,
    pub group: Option<String>,
    pub harness: Harness,
    pub seed: Option<u64>,
    pub num_fewshot: usize,
    /// Prepended to every context, its "\n\n" included.
    pub description: String,
    pub docs: Vec<EvalDoc<McDoc>>,
    pub pool: Vec<McDoc>,
    /// The pool's first k in order (MMLU) instead of a draw.
    pub first_n: bool,
    pub metrics: &'static [MetricInfo],
    pub files: Vec<DataFile>,
    pub version: Value,
    pub config: Value,
    pub notes: Vec<String>,
    by_id: HashMap<usize, usize>,
}

impl MultipleChoiceTask {
    /// Indexes the documents by `doc_id`; call after filling the fields.
    pub(super) fn indexed(mut self) -> Self {
        self.by_id = self
            .docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.doc_id, i))
            .collect();
        self
    }

    /// A task with no documents yet; fill the fields, then call [`Self::indexed`].
    pub(super) fn new(name: impl Into<String>, harness: Harness, num_fewshot: usize) -> Self {
        Self {
            name: name.into(),
            group: None,
            harness,
            seed: None,
            num_fewshot,
            description: String::new(),
            docs: Vec::new(),
            pool: Vec::new(),
            first_n: false,
            metrics: ACC_FIRST,
            files: Vec::new(),
            version: Value::Null,
            config: Value::Null,
            notes: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    fn source(&self) -> ShotSource {
        let len = self.pool.len();
        if self.first_n {
            ShotSource::FirstN { len }
        } else {
            ShotSource::Sample {
                len,
                exclude_doc: false,
            }
        }
    }

    fn instance(&self, doc: &EvalDoc<McDoc>, shots: &[usize]) -> DocInstance {
        let examples: Vec<Example> = shots.iter().map(|&i| self.pool[i].example()).collect();
        let context = fewshot::build_context(
            &self.description,
            &examples,
            B281B09_DELIMITERS,
            &doc.doc.query,
        );
        let requests = doc
            .doc
            .choices
            .iter()
            .map(|choice| Request::Loglikelihood {
                context: context.clone(),
                continuation: format!(" {choice}"),
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

impl Task for MultipleChoiceTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    fn num_fewshot(&self) -> usize {
        self.num_fewshot
    }

    fn metrics(&self) -> &[MetricInfo] {
        self.metrics
    }

    fn version(&self) -> Value {
        self.version.clone()
    }

    fn config(&self) -> Value {
        self.config.clone()
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
            source: self.source(),
        };
        let plan = fewshot::plan(&self.name, &spec, &|_, _| false)?;
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
            .by_id
            .get(&instance.doc_id)
            .map(|&i| &self.docs[i].doc)
            .ok_or_else(|| {
                super::common::document_error(
                    &self.name,
                    instance.doc_id,
                    "not a document of this task".into(),
                )
            })?;
        let lls = loglikelihoods(&self.name, instance.doc_id, responses, doc.choices.len())?;
        let acc = metrics::acc(&lls, doc.gold);
        let acc_norm = metrics::acc_norm(&lls, &doc.choices, doc.gold);
        Ok(self
            .metrics
            .iter()
            .map(|m| {
                (
                    m.name.to_string(),
                    if m.name == "acc" { acc } else { acc_norm },
                )
            })
            .collect())
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}
