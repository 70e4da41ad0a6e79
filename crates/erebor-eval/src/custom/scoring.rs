//! A custom task's metrics and its generation filter.

use regex::Regex;
use serde_json::Value;

use super::config::{CustomTaskConfig, FilterStep, MetricSpec, OutputType};
use super::data::config_error;
use super::docs::{ProcessedDoc, gold_index};
use crate::error::{EvalError, Result};
use crate::metrics::{self, ExactMatch, GSM8K_ANSWER_PATTERN, INVALID_ANSWER};
use crate::task::{DocInstance, MetricInfo, Response, response_json};

const ACC: MetricInfo = MetricInfo {
    name: "acc",
    higher_is_better: true,
};
const ACC_NORM: MetricInfo = MetricInfo {
    name: "acc_norm",
    higher_is_better: true,
};
const EXACT_MATCH: MetricInfo = MetricInfo {
    name: "exact_match",
    higher_is_better: true,
};

/// A compiled filter step.
enum Step {
    Regex {
        pattern: Regex,
        group_select: i64,
        fallback: String,
    },
    RemoveWhitespace,
    Lowercase,
    Uppercase,
    TakeFirst,
}

/// `exact_match` with its options and optional answer regex.
struct ExactMatchSpec {
    options: ExactMatch,
    extract: Option<Regex>,
}

/// How a custom task scores.
pub(crate) struct Scoring {
    metrics: Vec<MetricInfo>,
    exact_match: Option<ExactMatchSpec>,
    filter: Vec<Step>,
}

fn compile(origin: &str, key: &str, pattern: &str) -> Result<Regex> {
    Regex::new(pattern)
        .map_err(|e| config_error(origin, format!("`{key}`: invalid regex `{pattern}`: {e}")))
}

impl Scoring {
    /// Checks the metrics against the output type and compiles regexes.
    pub(super) fn new(config: &CustomTaskConfig, origin: &str) -> Result<Self> {
        let specs: Vec<MetricSpec> = if config.metric_list.is_empty() {
            let default = if config.output_type == OutputType::MultipleChoice {
                "acc"
            } else {
                "exact_match"
            };
            vec![
                serde_json::from_value(serde_json::json!({"metric": default}))
                    .expect("valid metric spec"),
            ]
        } else {
            config.metric_list.clone()
        };
        let mut metrics = Vec::new();
        let mut exact_match = None;
        for spec in &specs {
            if spec.aggregation.as_deref().is_some_and(|a| a != "mean")
                || spec.higher_is_better == Some(false)
            {
                return Err(config_error(
                    origin,
                    format!(
                        "metric `{}`: only `aggregation: mean` with `higher_is_better: true` is supported",
                        spec.metric
                    ),
                ));
            }
            match (spec.metric.as_str(), config.output_type) {
                ("acc", OutputType::MultipleChoice) => metrics.push(ACC),
                ("acc_norm", OutputType::MultipleChoice) => metrics.push(ACC_NORM),
                ("exact_match", OutputType::GenerateUntil) => {
                    metrics.push(EXACT_MATCH);
                    exact_match = Some(exact_match_spec(spec, origin)?);
                }
                (other, output_type) => {
                    return Err(config_error(
                        origin,
                        format!(
                            "metric `{other}` is not available for `output_type: {output_type:?}` (multiple_choice: acc, acc_norm; generate_until: exact_match)"
                        ),
                    ));
                }
            }
        }
        let filter = match config.filter_list.as_slice() {
            [] => Vec::new(),
            [one] => one
                .filter
                .iter()
                .map(|step| compile_step(step, origin))
                .collect::<Result<_>>()?,
            _ => {
                return Err(config_error(
                    origin,
                    "`filter_list`: one filter pipeline is supported",
                ));
            }
        };
        Ok(Self {
            metrics,
            exact_match,
            filter,
        })
    }

    /// The metrics reported.
    pub(super) fn metrics(&self) -> &[MetricInfo] {
        &self.metrics
    }

    /// A generation after the filter pipeline.
    fn filter_text(&self, text: &str) -> String {
        self.filter
            .iter()
            .fold(text.to_string(), |text, step| match step {
                Step::Regex {
                    pattern,
                    group_select,
                    fallback,
                } => metrics::regex_filter(pattern, *group_select, fallback, &text),
                Step::RemoveWhitespace => text.trim_start().to_string(),
                Step::Lowercase => text.to_lowercase(),
                Step::Uppercase => text.to_uppercase(),
                Step::TakeFirst => text,
            })
    }

    /// What a generation is scored as: the filter pipeline's output, then the answer the
    /// metric's `regex` extracts from it (`[invalid]` when it matches nothing), as lm-eval's
    /// regex filter leaves it.
    fn prediction(&self, text: &str) -> String {
        let filtered = self.filter_text(text);
        match self
            .exact_match
            .as_ref()
            .and_then(|spec| spec.extract.as_ref())
        {
            Some(pattern) => metrics::regex_filter(pattern, 0, INVALID_ANSWER, &filtered),
            None => filtered,
        }
    }

    /// `filtered_resps` as lm-eval writes them: for a generation, what is compared with the
    /// target (the extracted answer, not the whole generation).
    pub(super) fn filtered(&self, responses: &[Response]) -> Vec<Value> {
        responses
            .iter()
            .map(|response| match response {
                Response::Generated(text) => Value::String(self.prediction(text)),
                other @ Response::Loglikelihood { .. } => response_json(other),
            })
            .collect()
    }

    /// Per-document metric values.
    pub(super) fn score(
        &self,
        task: &str,
        instance: &DocInstance,
        doc: &ProcessedDoc,
        responses: &[Response],
    ) -> Result<Vec<(String, f64)>> {
        let error = |message: String| EvalError::Document {
            task: task.to_string(),
            doc_id: instance.doc_id,
            message,
        };
        if let Some(spec) = &self.exact_match {
            let [Response::Generated(text)] = responses else {
                return Err(error(format!(
                    "expected one generated response, got {}",
                    responses.len()
                )));
            };
            let prediction = self.prediction(text);
            let mut reference = doc.target_text();
            if let Some(pattern) = &spec.extract
                && pattern.is_match(&reference)
            {
                reference = metrics::regex_filter(pattern, 0, INVALID_ANSWER, &reference);
            }
            let valid = prediction != INVALID_ANSWER || reference == INVALID_ANSWER;
            let score = if valid {
                spec.options.score(&prediction, &reference)
            } else {
                0.0
            };
            return Ok(vec![("exact_match".into(), score)]);
        }
        let choices = doc.choices.as_deref().unwrap_or_default();
        let gold =
            gold_index(doc).ok_or_else(|| error("the target is not one of the choices".into()))?;
        let lls =
            crate::tasks::loglikelihood_values(task, instance.doc_id, responses, choices.len())?;
        Ok(self
            .metrics
            .iter()
            .map(|m| {
                let value = if m.name == "acc" {
                    metrics::acc(&lls, gold)
                } else {
                    metrics::acc_norm(&lls, choices, gold)
                };
                (m.name.to_string(), value)
            })
            .collect())
    }
}

fn exact_match_spec(spec: &MetricSpec, origin: &str) -> Result<ExactMatchSpec> {
    let regexes_to_ignore = spec
        .regexes_to_ignore
        .iter()
        .map(|p| compile(origin, "regexes_to_ignore", p))
        .collect::<Result<_>>()?;
    Ok(ExactMatchSpec {
        options: ExactMatch {
            regexes_to_ignore,
            ignore_case: spec.ignore_case,
            ignore_punctuation: spec.ignore_punctuation,
            ignore_numbers: spec.ignore_numbers,
        },
        extract: spec
            .regex
            .as_deref()
            .map(|p| compile(origin, "regex", p))
            .transpose()?,
    })
}

fn compile_step(step: &FilterStep, origin: &str) -> Result<Step> {
    let regex_only =
        step.regex_pattern.is_some() || step.group_select.is_some() || step.fallback.is_some();
    if regex_only && step.function != "regex" {
        return Err(config_error(
            origin,
            format!(
                "filter `{}` takes no regex_pattern/group_select/fallback",
                step.function
            ),
        ));
    }
    Ok(match step.function.as_str() {
        "regex" => Step::Regex {
            pattern: compile(
                origin,
                "regex_pattern",
                step.regex_pattern
                    .as_deref()
                    .unwrap_or(GSM8K_ANSWER_PATTERN),
            )?,
            group_select: step.group_select.unwrap_or(0),
            fallback: step
                .fallback
                .clone()
                .unwrap_or_else(|| INVALID_ANSWER.to_string()),
        },
        "take_first" => Step::TakeFirst,
        "remove_whitespace" => Step::RemoveWhitespace,
        "lowercase" => Step::Lowercase,
        "uppercase" => Step::Uppercase,
        other => {
            return Err(config_error(
                origin,
                format!(
                    "unknown filter function `{other}`: expected regex, take_first, remove_whitespace, lowercase or uppercase"
                ),
            ));
        }
    })
}
