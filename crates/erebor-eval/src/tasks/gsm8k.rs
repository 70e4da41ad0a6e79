//! GSM8K (b281b09 `tasks/gsm8k.py`): "Question: {q}\nAnswer:", greedy generation of at most
//! 256 tokens stopped at ":", "Question:" or "Question" (lm-eval 0.4: "Question:", "</s>",
//! `"<|im_end|>"`), the `#### N` answer extracted and compared as a string (`acc` in b281b09).
//!
//! Under lm-eval 0.4 (its `gsm8k.yaml`, 0.4.13) each generation goes through two filters, and
//! `exact_match` (`ignore_case`, with `,`, `\$`, `(?s).*#### ` and `\.$` removed from both sides)
//! is reported under each: `strict-match` (the first `#### (\-?[0-9\.\,]+)`) and
//! `flexible-extract` (the last match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, its first non-empty
//! group), so the metrics are `exact_match,strict-match` and `exact_match,flexible-extract`.
//!
//! No GSM8K train split ships with the leaderboard data: the exemplars come from
//! [`TaskOptions::gsm8k_exemplars`] (default `gsm8k_train.jsonl` in the data directory). When
//! that is the test file itself, its first k rows are the exemplar pool and are not scored;
//! the task's notes say so.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::common::{
    EvalDoc, document_error, harness_config, metric_list, shots, task_error, version,
};
use crate::data::{Fields, JsonlFile, split_path};
use crate::error::Result;
use crate::fewshot::{self, B281B09_DELIMITERS, Example, PlanSpec, ShotSource};
use crate::metrics::{self, ExactMatch, GSM8K_ANSWER_PATTERN, INVALID_ANSWER};
use crate::task::{
    DataFile, DocInstance, Harness, MetricInfo, NO_FILTER, Request, Response, Task, TaskOptions,
    metric_key,
};

const NAME: &str = "gsm8k";
/// Most new tokens, as the harness's HF model (`max_gen_toks`).
pub(crate) const MAX_GEN_TOKS: usize = 256;
const B281B09_UNTIL: [&str; 3] = [":", "Question:", "Question"];
const V04_UNTIL: [&str; 3] = ["Question:", "</s>", "<|im_end|>"];
const ACC: &[MetricInfo] = &[MetricInfo {
    name: "acc",
    higher_is_better: true,
}];
/// lm-eval 0.4's filters, in its `filter_list` order.
const STRICT_MATCH: &str = "strict-match";
const FLEXIBLE_EXTRACT: &str = "flexible-extract";
/// lm-eval 0.4's `flexible-extract` pattern (`group_select: -1`).
pub(crate) const FLEXIBLE_EXTRACT_PATTERN: &str = r"(-?[$0-9.,]{2,})|(-?[0-9]+)";
/// `exact_match` under each filter, as [`crate::task::metric_key`] names them.
const EXACT_MATCH: &[MetricInfo] = &[
    MetricInfo {
        name: "exact_match,strict-match",
        higher_is_better: true,
    },
    MetricInfo {
        name: "exact_match,flexible-extract",
        higher_is_better: true,
    },
];

#[derive(Clone, Debug)]
struct Doc {
    question: String,
    answer: String,
}

impl Doc {
    fn text(&self) -> String {
        format!("Question: {}\nAnswer:", self.question)
    }
}

/// The `gsm8k` task.
pub(crate) struct Gsm8k {
    harness: Harness,
    seed: Option<u64>,
    num_fewshot: usize,
    docs: Vec<EvalDoc<Doc>>,
    pool: Vec<Doc>,
    files: Vec<DataFile>,
    notes: Vec<String>,
    strict: regex::Regex,
    flexible: regex::Regex,
    exact_match: ExactMatch,
}

/// `gsm8k`, 5-shot by default.
pub(crate) fn task(options: &TaskOptions) -> Result<Gsm8k> {
    let num_fewshot = shots(options, 5);
    let test = JsonlFile::read(&split_path(&options.data_dir, NAME, "test"))?;
    let mut docs = read_docs(&test)?;
    let mut files = vec![test.data_file("test")];
    let mut notes = Vec::new();
    let mut pool = Vec::new();
    if num_fewshot > 0 {
        let exemplars = options
            .gsm8k_exemplars
            .clone()
            .unwrap_or_else(|| split_path(&options.data_dir, NAME, "train"));
        if same_file(&exemplars, &test.path) {
            if docs.len() <= num_fewshot {
                return Err(task_error(
                    NAME,
                    format!(
                        "{} has {} rows: too few to keep {num_fewshot} as exemplars",
                        test.path.display(),
                        docs.len()
                    ),
                ));
            }
            pool = docs.drain(..num_fewshot).map(|d| d.doc).collect();
            notes.push(format!(
                "gsm8k: the few-shot exemplars are the first {num_fewshot} rows of {} (lines 1-{num_fewshot}); they are excluded from scoring ({} of {} documents scored)",
                test.path.display(),
                docs.len(),
                test.rows.len()
            ));
        } else {
            let file = JsonlFile::read(&exemplars).map_err(|error| match error {
                crate::error::EvalError::Io { path, .. } => task_error(
                    NAME,
                    format!("no exemplar file {}: GSM8K has no shipped train split; name one (the step's `gsm8k_exemplars:`), or use 0 shots", path.display()),
                ),
                other => other,
            })?;
            pool = read_docs(&file)?.into_iter().map(|d| d.doc).collect();
            files.push(file.data_file("fewshot"));
        }
    }
    let strict = regex::Regex::new(GSM8K_ANSWER_PATTERN).expect("valid GSM8K pattern");
    let flexible = regex::Regex::new(FLEXIBLE_EXTRACT_PATTERN).expect("valid flexible pattern");
    Ok(Gsm8k {
        harness: options.harness,
        seed: options.fewshot_seed,
        num_fewshot,
        docs,
        pool,
        files,
        notes,
        strict,
        flexible,
        exact_match: ExactMatch::gsm8k_v04(),
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    canonical(a) == canonical(b)
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
    let answer = fields.str("answer")?.to_string();
    if metrics::gsm8k_extract(&answer) == INVALID_ANSWER {
        return Err(fields.error("field `answer` has no `#### N` final answer"));
    }
    Ok(Doc {
        question: fields.str("question")?.to_string(),
        answer,
    })
}

impl Gsm8k {
    fn instance(&self, doc: &EvalDoc<Doc>, shots: &[usize]) -> DocInstance {
        let examples: Vec<Example> = shots
            .iter()
            .map(|&i| Example {
                text: self.pool[i].text(),
                target: format!(" {}", self.pool[i].answer),
            })
            .collect();
        let context = fewshot::build_context("", &examples, B281B09_DELIMITERS, &doc.doc.text());
        let until = match self.harness {
            Harness::B281b09 => B281B09_UNTIL,
            Harness::V04 => V04_UNTIL,
        };
        DocInstance {
            doc_id: doc.doc_id,
            doc: doc.raw.clone(),
            target: doc.doc.answer.clone(),
            requests: vec![Request::GenerateUntil {
                context,
                until: until.iter().map(ToString::to_string).collect(),
                max_gen_toks: MAX_GEN_TOKS,
            }],
        }
    }

    fn generated<'a>(instance: &DocInstance, responses: &'a [Response]) -> Result<&'a str> {
        match responses {
            [Response::Generated(text)] => Ok(text),
            _ => Err(document_error(
                NAME,
                instance.doc_id,
                format!("expected one generated response, got {responses:?}"),
            )),
        }
    }

    /// The answer as the harness's filter extracts it (`take_first` of one response is the
    /// response: there is one generation per document).
    fn extract(&self, filter: &str, text: &str) -> String {
        match (self.harness, filter) {
            (Harness::B281b09, _) => metrics::gsm8k_extract(text),
            (Harness::V04, FLEXIBLE_EXTRACT) => {
                metrics::regex_filter(&self.flexible, -1, INVALID_ANSWER, text)
            }
            (Harness::V04, _) => metrics::regex_filter(&self.strict, 0, INVALID_ANSWER, text),
        }
    }

    /// lm-eval 0.4's `filter_list`.
    fn filter_list() -> serde_json::Value {
        json!([
            {"name": STRICT_MATCH, "filter": [{"function": "regex", "regex_pattern": GSM8K_ANSWER_PATTERN}, {"function": "take_first"}]},
            {"name": FLEXIBLE_EXTRACT, "filter": [{"function": "regex", "group_select": -1, "regex_pattern": FLEXIBLE_EXTRACT_PATTERN}, {"function": "take_first"}]},
        ])
    }
}

impl Task for Gsm8k {
    fn name(&self) -> &str {
        NAME
    }

    fn num_fewshot(&self) -> usize {
        self.num_fewshot
    }

    fn metrics(&self) -> &[MetricInfo] {
        match self.harness {
            Harness::B281b09 => ACC,
            Harness::V04 => EXACT_MATCH,
        }
    }

    fn version(&self) -> serde_json::Value {
        version(self.harness, 0, 3.0)
    }

    fn config(&self) -> serde_json::Value {
        let until = match self.harness {
            Harness::B281b09 => B281B09_UNTIL,
            Harness::V04 => V04_UNTIL,
        };
        json!({
            "task": NAME,
            "dataset_path": "gsm8k",
            "dataset_name": "main",
            "output_type": "generate_until",
            "test_split": "test",
            "doc_to_text": "Question: {{question}}\nAnswer:",
            "doc_to_target": "{{answer}}",
            "target_delimiter": " ",
            "fewshot_delimiter": "\n\n",
            "num_fewshot": self.num_fewshot,
            "generation_kwargs": {"until": until, "do_sample": false, "max_gen_toks": MAX_GEN_TOKS},
            "filter_list": match self.harness {
                // Unchanged since b281b09 had one filter: its configuration hash (the resume
                // key) stays what it was.
                Harness::B281b09 => json!([{"name": STRICT_MATCH, "filter": [{"function": "regex", "regex_pattern": GSM8K_ANSWER_PATTERN}, {"function": "take_first"}]}]),
                Harness::V04 => Self::filter_list(),
            },
            "metric_list": match self.harness {
                Harness::B281b09 => metric_list(self.metrics()),
                Harness::V04 => json!([{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true, "ignore_case": true, "ignore_punctuation": false, "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}]),
            },
            "erebor": harness_config(self.harness, self.seed, "exemplar file (random sample)"),
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
        let text = Self::generated(instance, responses)?;
        Ok(match self.harness {
            Harness::B281b09 => {
                let correct = metrics::gsm8k_correct(text, &instance.target).unwrap_or(false);
                vec![(ACC[0].name.to_string(), f64::from(u8::from(correct)))]
            }
            Harness::V04 => [STRICT_MATCH, FLEXIBLE_EXTRACT]
                .into_iter()
                .map(|filter| {
                    let answer = self.extract(filter, text);
                    let score = self.exact_match.score(&answer, &instance.target);
                    (metric_key("exact_match", filter), score)
                })
                .collect(),
        })
    }

    fn filters(&self) -> Vec<String> {
        match self.harness {
            Harness::B281b09 => vec![NO_FILTER.to_owned()],
            Harness::V04 => vec![STRICT_MATCH.to_owned(), FLEXIBLE_EXTRACT.to_owned()],
        }
    }

    fn filtered_responses(
        &self,
        filter: &str,
        _instance: &DocInstance,
        responses: &[Response],
    ) -> Vec<serde_json::Value> {
        responses
            .iter()
            .map(|response| match response {
                Response::Generated(text) => serde_json::Value::String(self.extract(filter, text)),
                other @ Response::Loglikelihood { .. } => crate::task::response_json(other),
            })
            .collect()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}
