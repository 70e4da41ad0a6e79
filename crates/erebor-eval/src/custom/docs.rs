//! A custom task's documents: `doc_to_text` / `doc_to_choice` / `doc_to_target` evaluated as
//! lm-eval 0.4 does, and the requests built from them.

use serde_json::Value;

use super::config::{ChoiceSpec, CustomTaskConfig, OutputType, TextSpec};
use super::data::config_error;
use super::templates::{Rendered, Templates, list_of_text, scalar_text};
use crate::data::{JsonlFile, Row};
use crate::error::Result;
use crate::fewshot::{self, Delimiters, Example};
use crate::task::{DocInstance, Request};

/// A document as the task sees it.
#[derive(Clone, Debug)]
pub(crate) struct ProcessedDoc {
    /// The prompt, or (multiple-input tasks) the index of the choice that is the context.
    pub text: Rendered,
    /// The choices, when the task has them.
    pub choices: Option<Vec<String>>,
    /// The answer: an index into the choices, or text.
    pub target: Rendered,
}

impl ProcessedDoc {
    /// The answer as text (`choices[i]` for an index).
    pub(crate) fn target_text(&self) -> String {
        match (&self.target, &self.choices) {
            (Rendered::Text(text), _) => text.clone(),
            (Rendered::Index(i), Some(choices)) => choices.get(*i).cloned().unwrap_or_default(),
            (Rendered::Index(i), None) => i.to_string(),
        }
    }
}

/// The prompt side of a custom task.
pub(super) struct Prompts {
    templates: Templates,
    text: TextSpec,
    choice: Option<ChoiceSpec>,
    target: TextSpec,
    output_type: OutputType,
    description: String,
    target_delimiter: String,
    fewshot_delimiter: String,
    until: Vec<String>,
    max_gen_toks: usize,
}

impl Prompts {
    /// Compiles the templates; errors name the task file and the key.
    pub(super) fn new(config: &CustomTaskConfig, origin: &str) -> Result<Self> {
        let mut templates = Templates::new();
        let mut add = |key: &str, source: &str, as_list: bool| {
            templates
                .add(key, source, as_list)
                .map_err(|e| config_error(origin, format!("`{key}`: {e}")))
        };
        if let TextSpec::Template(source) = &config.doc_to_text {
            add("doc_to_text", source, false)?;
        }
        if let TextSpec::Template(source) = &config.doc_to_target {
            add("doc_to_target", source, false)?;
        }
        if let Some(ChoiceSpec::Template(source)) = &config.doc_to_choice {
            add("doc_to_choice", source, true)?;
        }
        if config.output_type == OutputType::MultipleChoice && config.doc_to_choice.is_none() {
            return Err(config_error(
                origin,
                "`output_type: multiple_choice` needs `doc_to_choice`",
            ));
        }
        let generation = config.generation_kwargs.as_ref();
        if config.output_type == OutputType::MultipleChoice && generation.is_some() {
            return Err(config_error(
                origin,
                "`generation_kwargs` is for `output_type: generate_until`",
            ));
        }
        if generation
            .is_some_and(|g| g.do_sample == Some(true) || g.temperature.is_some_and(|t| t != 0.0))
        {
            return Err(config_error(
                origin,
                "`generation_kwargs`: decoding is greedy (do_sample: false, temperature: 0)",
            ));
        }
        let until = generation.and_then(|g| g.until.as_ref()).map_or_else(
            || vec![config.fewshot_delimiter.clone()],
            super::config::StopStrings::to_vec,
        );
        Ok(Self {
            templates,
            text: config.doc_to_text.clone(),
            choice: config.doc_to_choice.clone(),
            target: config.doc_to_target.clone(),
            output_type: config.output_type,
            description: config.description.clone(),
            target_delimiter: config.target_delimiter.clone(),
            fewshot_delimiter: config.fewshot_delimiter.clone(),
            until,
            max_gen_toks: generation.and_then(|g| g.max_gen_toks).unwrap_or(256),
        })
    }

    /// Evaluates the three `doc_to_*` for one row; errors name `file:line` and the key.
    pub(super) fn process(&self, file: &JsonlFile, row: &Row) -> Result<ProcessedDoc> {
        let fields = file.fields(row);
        let doc = &row.value;
        let choices = match &self.choice {
            None => None,
            Some(ChoiceSpec::List(list)) => Some(list.clone()),
            Some(ChoiceSpec::Template(source)) => Some(match doc.get(source) {
                Some(value) => list_of_text(value)
                    .ok_or_else(|| fields.error(format!("field `{source}` is not a list")))?,
                None => self
                    .templates
                    .render_list("doc_to_choice", doc)
                    .map_err(|e| fields.error(format!("doc_to_choice: {e}")))?,
            }),
        };
        let has_choices = choices.is_some();
        let render = |key: &str, spec: &TextSpec| -> Result<Rendered> {
            match spec {
                TextSpec::Index(i) => Ok(Rendered::Index(*i)),
                TextSpec::Template(source) => match doc.get(source) {
                    Some(value) => field_value(value, has_choices).ok_or_else(|| {
                        fields.error(format!("{key}: field `{source}` is not text or an index"))
                    }),
                    None => {
                        let text = self
                            .templates
                            .render(key, doc)
                            .map_err(|e| fields.error(format!("{key}: {e}")))?;
                        Ok(as_index(&text, has_choices)
                            .map_or(Rendered::Text(text), Rendered::Index))
                    }
                },
            }
        };
        let text = render("doc_to_text", &self.text)?;
        let target = render("doc_to_target", &self.target)?;
        if let (Some(choices), Rendered::Index(i)) = (&choices, &target)
            && *i >= choices.len()
        {
            return Err(fields.error(format!(
                "doc_to_target: index {i} but there are {} choices",
                choices.len()
            )));
        }
        Ok(ProcessedDoc {
            text,
            choices,
            target,
        })
    }

    fn question(file: &JsonlFile, row: &Row, doc: &ProcessedDoc) -> Result<String> {
        match (&doc.text, &doc.choices) {
            (Rendered::Text(text), _) => Ok(text.clone()),
            (Rendered::Index(i), Some(choices)) if *i < choices.len() => Ok(choices[*i].clone()),
            (Rendered::Index(i), _) => Err(file
                .fields(row)
                .error(format!("doc_to_text: index {i} has no choice"))),
        }
    }

    /// The instance of evaluation document `doc` with few-shot rows `shots` of `pool`.
    pub(super) fn instance(
        &self,
        eval: &JsonlFile,
        doc: usize,
        pool: Option<&JsonlFile>,
        shots: &[usize],
    ) -> Result<DocInstance> {
        let mut examples = Vec::with_capacity(shots.len());
        if let Some(pool) = pool {
            for &shot in shots {
                let row = &pool.rows[shot];
                let processed = self.process(pool, row)?;
                examples.push(Example {
                    text: Self::question(pool, row, &processed)?,
                    target: processed.target_text(),
                });
            }
        }
        let row = &eval.rows[doc];
        let processed = self.process(eval, row)?;
        let delimiters = Delimiters {
            target: &self.target_delimiter,
            fewshot: &self.fewshot_delimiter,
        };
        let (requests, target) = match self.output_type {
            OutputType::GenerateUntil => {
                let context = fewshot::build_context(
                    &self.description,
                    &examples,
                    delimiters,
                    &Self::question(eval, row, &processed)?,
                );
                let request = Request::GenerateUntil {
                    context,
                    until: self.until.clone(),
                    max_gen_toks: self.max_gen_toks,
                };
                (vec![request], processed.target_text())
            }
            OutputType::MultipleChoice => {
                self.choice_requests(eval, row, &processed, &examples, delimiters)?
            }
        };
        Ok(DocInstance {
            doc_id: row.index,
            doc: row.ordered.clone(),
            target,
            requests,
        })
    }

    fn choice_requests(
        &self,
        eval: &JsonlFile,
        row: &Row,
        doc: &ProcessedDoc,
        examples: &[Example],
        delimiters: Delimiters<'_>,
    ) -> Result<(Vec<Request>, String)> {
        let choices = doc.choices.as_deref().unwrap_or_default();
        let gold = gold_index(doc).ok_or_else(|| {
            eval.fields(row).error(format!(
                "doc_to_target `{}` is not one of the choices",
                doc.target_text()
            ))
        })?;
        let requests = match &doc.text {
            Rendered::Text(question) => {
                let context =
                    fewshot::build_context(&self.description, examples, delimiters, question);
                choices
                    .iter()
                    .map(|choice| Request::Loglikelihood {
                        context: context.clone(),
                        continuation: format!("{}{choice}", self.target_delimiter),
                    })
                    .collect()
            }
            Rendered::Index(_) => {
                let prefix = fewshot::build_context(&self.description, examples, delimiters, "");
                let continuation = format!("{}{}", self.target_delimiter, doc.target_text());
                choices
                    .iter()
                    .map(|choice| Request::Loglikelihood {
                        context: format!("{prefix}{choice}"),
                        continuation: continuation.clone(),
                    })
                    .collect()
            }
        };
        Ok((requests, gold.to_string()))
    }
}

/// The gold choice: `doc_to_text`'s index for multiple-input tasks, else `doc_to_target`'s
/// index or the position of its text among the choices.
pub(super) fn gold_index(doc: &ProcessedDoc) -> Option<usize> {
    let choices = doc.choices.as_deref()?;
    match (&doc.text, &doc.target) {
        (Rendered::Index(i), _) | (_, Rendered::Index(i)) => {
            Some(*i).filter(|i| *i < choices.len())
        }
        (_, Rendered::Text(text)) => choices.iter().position(|c| c == text),
    }
}

fn field_value(value: &Value, has_choices: bool) -> Option<Rendered> {
    match value {
        Value::Number(n) if has_choices => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Rendered::Index),
        Value::String(s) if has_choices => {
            Some(as_index(s, true).map_or(Rendered::Text(s.clone()), Rendered::Index))
        }
        other => scalar_text(other).map(Rendered::Text),
    }
}

/// lm-eval turns a rendered all-digit string into an index when the task has choices.
fn as_index(text: &str, has_choices: bool) -> Option<usize> {
    (has_choices && !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}
