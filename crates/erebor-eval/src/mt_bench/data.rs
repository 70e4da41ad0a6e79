//! MT-Bench files in FastChat's formats: questions, model answers (also the GPT-4 reference
//! answers), judge prompts.
//!
//! Every question must have exactly two non-empty turns and every judge prompt must ask for
//! the verdict format the grading parses (`[[rating]]` or `[[A]]`); a file that breaks this is
//! refused with the line that does, before any answer is generated or judgment is paid for.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{MtBenchError, Result, io};
use super::pyformat;

/// MT-Bench's eight categories in the order of its question file (FastChat's radar charts use it).
pub const CATEGORIES: [&str; 8] = [
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
];

/// Categories whose judgments show the judge a reference answer (FastChat's `NEED_REF_CATS`).
pub(crate) const NEED_REF_CATS: [&str; 4] = ["math", "reasoning", "coding", "arena-hard-200"];

/// Sampling temperature of a category's answers (FastChat's `temperature_config`: 0.7 for
/// writing and roleplay, as for a category it does not list).
pub(crate) fn category_temperature(category: &str) -> f32 {
    match category {
        "stem" | "humanities" => 0.1,
        "extraction" | "math" | "coding" | "reasoning" | "arena-hard-200" => 0.0,
        _ => 0.7,
    }
}

/// The temperature a question of `category` is answered at: `override_temperature` for every
/// category when given (`temperature:` / `--temperature`, e.g. 0 to compare engines greedily),
/// else FastChat's table ([`category_temperature`]).
pub(crate) fn answer_temperature(category: &str, override_temperature: Option<f32>) -> f32 {
    override_temperature.unwrap_or_else(|| category_temperature(category))
}

/// One MT-Bench question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// FastChat's id (81..160 for MT-Bench).
    pub question_id: u64,
    /// `writing`, `roleplay`, `reasoning`, `math`, `coding`, `extraction`, `stem`, `humanities`.
    pub category: String,
    /// The user's two turns.
    pub turns: Vec<String>,
}

impl Question {
    /// Whether its judgments show a reference answer.
    pub(crate) fn needs_reference(&self) -> bool {
        NEED_REF_CATS.contains(&self.category.as_str())
    }
}

/// One model's answers to one question, in FastChat's answer JSONL shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerRecord {
    /// The question.
    pub question_id: u64,
    /// An id of this answer (FastChat: a shortuuid; here a hash of model, question and text).
    pub answer_id: String,
    /// The answering model's name.
    pub model_id: String,
    /// One choice per sample; MT-Bench uses the first.
    pub choices: Vec<AnswerChoice>,
    /// Seconds since the Unix epoch.
    pub tstamp: f64,
}

/// One sampled conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerChoice {
    /// Choice index.
    pub index: usize,
    /// The assistant's replies, one per turn.
    pub turns: Vec<String>,
}

impl AnswerRecord {
    /// A record of `turns` with a content-derived `answer_id`.
    pub fn new(question_id: u64, model_id: &str, turns: Vec<String>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(model_id.as_bytes());
        hasher.update(question_id.to_le_bytes());
        for turn in &turns {
            hasher.update((turn.len() as u64).to_le_bytes());
            hasher.update(turn.as_bytes());
        }
        let answer_id = hex::encode(hasher.finalize())[..22].to_owned();
        AnswerRecord {
            question_id,
            answer_id,
            model_id: model_id.to_owned(),
            choices: vec![AnswerChoice { index: 0, turns }],
            tstamp: chrono::Utc::now().timestamp_micros() as f64 / 1e6,
        }
    }

    /// The first choice's turns.
    pub fn turns(&self) -> &[String] {
        self.choices.first().map_or(&[], |c| c.turns.as_slice())
    }
}

/// One judge prompt from FastChat's `judge_prompts.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgePrompt {
    /// `single-v1`, `single-math-v1-multi-turn`, `pair-v2`, …
    pub name: String,
    /// `single` or `pairwise`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The system message.
    pub system_prompt: String,
    /// The user message, a Python format string.
    pub prompt_template: String,
    /// What the judge is told to end with: `[[rating]]` or `[[A]]`.
    pub output_format: String,
    /// FastChat's description (unused).
    #[serde(default)]
    pub description: String,
    /// `general`, `math`, `multi-turn`.
    #[serde(default)]
    pub category: String,
}

/// The eight prompts MT-Bench grading uses and the fields each must fill.
const REQUIRED_PROMPTS: [(&str, &[&str]); 8] = [
    ("single-v1", &["question", "answer"]),
    ("single-math-v1", &["question", "answer", "ref_answer_1"]),
    (
        "single-v1-multi-turn",
        &["question_1", "question_2", "answer_1", "answer_2"],
    ),
    (
        "single-math-v1-multi-turn",
        &[
            "question_1",
            "question_2",
            "answer_1",
            "answer_2",
            "ref_answer_1",
            "ref_answer_2",
        ],
    ),
    ("pair-v2", &["question", "answer_a", "answer_b"]),
    (
        "pair-math-v1",
        &["question", "answer_a", "answer_b", "ref_answer_1"],
    ),
    (
        "pair-v2-multi-turn",
        &[
            "question_1",
            "question_2",
            "answer_a_1",
            "answer_b_1",
            "answer_a_2",
            "answer_b_2",
        ],
    ),
    (
        "pair-math-v1-multi-turn",
        &[
            "question_1",
            "question_2",
            "answer_a_1",
            "answer_b_1",
            "answer_a_2",
            "answer_b_2",
            "ref_answer_1",
            "ref_answer_2",
        ],
    ),
];

impl JudgePrompt {
    /// Checks that the prompt asks for the verdict its output format parses, and that its
    /// template names only fields grading fills.
    fn check(&self, allowed: &[&str]) -> Result<()> {
        let error = |message: String| MtBenchError::Prompt {
            name: self.name.clone(),
            message,
        };
        let (marker, what) = match self.kind.as_str() {
            "single" => ("[[rating]]", "a rating"),
            "pairwise" => ("[[A]]", "a verdict"),
            other => {
                return Err(error(format!(
                    "type `{other}` is neither `single` nor `pairwise`"
                )));
            }
        };
        if self.output_format != marker {
            return Err(error(format!(
                "output_format is `{}`; {} prompts are graded from `{marker}`",
                self.output_format, self.kind
            )));
        }
        let text = format!("{}\n{}", self.system_prompt, self.prompt_template);
        if !text.contains(marker) {
            return Err(error(format!(
                "neither the system prompt nor the template tells the judge to give {what} \
                 as `{marker}`; without that instruction the reply cannot be graded"
            )));
        }
        for field in pyformat::fields(&self.prompt_template) {
            if !allowed.contains(&field.as_str()) {
                return Err(error(format!(
                    "the template names `{{{field}}}`; it may use {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Reads a JSONL file into `T`s, naming the line of a bad row.
fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(usize, T)>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(line).map_err(|e| MtBenchError::Data {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        rows.push((i + 1, row));
    }
    Ok(rows)
}

/// Reads and checks the questions file: unique ids, two non-empty turns each.
pub fn load_questions(path: &Path) -> Result<Vec<Question>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut questions = Vec::new();
    for (line, q) in read_jsonl::<Question>(path)? {
        let bad = |message: String| MtBenchError::Data {
            path: path.to_owned(),
            line,
            message: format!("question {}: {message}", q.question_id),
        };
        if q.turns.len() != 2 {
            return Err(bad(format!(
                "has {} turn(s); MT-Bench questions have two",
                q.turns.len()
            )));
        }
        if let Some(i) = q.turns.iter().position(|t| t.trim().is_empty()) {
            return Err(bad(format!("turn {} is empty", i + 1)));
        }
        if q.category.is_empty() {
            return Err(bad("has no category".into()));
        }
        if !seen.insert(q.question_id) {
            return Err(bad("appears twice".into()));
        }
        questions.push(q);
    }
    if questions.is_empty() {
        return Err(MtBenchError::Data {
            path: path.to_owned(),
            line: 0,
            message: "no questions".into(),
        });
    }
    Ok(questions)
}

/// Reads an answers file (FastChat's shape) by question id; a later line for the same
/// question replaces an earlier one, as FastChat's loader does.
pub fn load_answers(path: &Path) -> Result<BTreeMap<u64, AnswerRecord>> {
    let mut answers = BTreeMap::new();
    for (line, a) in read_jsonl::<AnswerRecord>(path)? {
        if a.turns().is_empty() {
            return Err(MtBenchError::Data {
                path: path.to_owned(),
                line,
                message: format!("question {}: the answer has no turns", a.question_id),
            });
        }
        answers.insert(a.question_id, a);
    }
    Ok(answers)
}

/// Writes answers as JSONL sorted by question id (as FastChat's `reorg_answer_file`).
pub fn write_answers(path: &Path, answers: &BTreeMap<u64, AnswerRecord>) -> Result<()> {
    let mut out = Vec::new();
    for answer in answers.values() {
        serde_json::to_writer(&mut out, answer).map_err(|error| io(path)(error.into()))?;
        out.push(b'\n');
    }
    write_file(path, &out)
}

/// Writes `bytes` to `path` through a temporary file, creating the folder.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The judge prompts by name, each checked; all eight MT-Bench prompts must be present.
pub fn load_judge_prompts(path: &Path) -> Result<BTreeMap<String, JudgePrompt>> {
    let mut prompts = BTreeMap::new();
    for (line, prompt) in read_jsonl::<JudgePrompt>(path)? {
        if let Some((_, allowed)) = REQUIRED_PROMPTS.iter().find(|(n, _)| *n == prompt.name) {
            prompt.check(allowed).map_err(|e| MtBenchError::Data {
                path: path.to_owned(),
                line,
                message: e.to_string(),
            })?;
        }
        prompts.insert(prompt.name.clone(), prompt);
    }
    for (name, _) in REQUIRED_PROMPTS {
        if !prompts.contains_key(name) {
            return Err(MtBenchError::Data {
                path: path.to_owned(),
                line: 0,
                message: format!("no judge prompt named `{name}`"),
            });
        }
    }
    Ok(prompts)
}

#[cfg(test)]
// The temperatures are copied from FastChat's table, not computed: they must be equal.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// MT-Bench's eight categories with FastChat's `temperature_config`
    /// (`fastchat/llm_judge/common.py`), and a category FastChat does not list (0.7).
    const FASTCHAT: [(&str, f32); 9] = [
        ("writing", 0.7),
        ("roleplay", 0.7),
        ("extraction", 0.0),
        ("math", 0.0),
        ("coding", 0.0),
        ("reasoning", 0.0),
        ("stem", 0.1),
        ("humanities", 0.1),
        ("unlisted", 0.7),
    ];

    #[test]
    fn mt_bench_without_an_override_uses_fastchats_table() {
        for (category, expected) in FASTCHAT {
            assert_eq!(answer_temperature(category, None), expected, "{category}");
        }
    }

    #[test]
    fn mt_bench_temperature_override_applies_to_every_category() {
        for t in [0.0, 0.3, 1.2] {
            for (category, _) in FASTCHAT {
                assert_eq!(
                    answer_temperature(category, Some(t)),
                    t,
                    "{category} at {t}"
                );
            }
        }
    }
}
