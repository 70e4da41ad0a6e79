//! Verdicts and scores: FastChat's rating regexes and `[[A]]`/`[[B]]`/`[[C]]` verdicts, the
//! judgment JSONL records, and the aggregates recorded as `mt_bench/…` metrics.
//!
//! Unlike FastChat's `show_result.py`, which drops a judgment without a rating (score −1)
//! silently, every failed or unparseable judgment is counted in `judge_errors`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::judging::Judged;
use crate::output::pyjson::PyValue;

static RATING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[(\d+\.?\d*)\]\]").expect("rating pattern"));
static RATING_BACKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(\d+\.?\d*)\]").expect("backup rating pattern"));

/// The rating in a judgment: the first `[[x]]`, else the first `[x]` (FastChat's
/// `one_score_pattern` then `one_score_pattern_backup`), as a JSON number (an integer when
/// written without a point, as Python's `ast.literal_eval` reads it).
pub(crate) fn parse_rating(judgment: &str) -> Option<Value> {
    let found = RATING
        .captures(judgment)
        .or_else(|| RATING_BACKUP.captures(judgment))?;
    let text = found.get(1)?.as_str();
    if text.contains('.') {
        serde_json::Number::from_f64(text.parse().ok()?).map(Value::Number)
    } else {
        text.parse::<u64>().ok().map(Value::from)
    }
}

/// The verdict of a pairwise judgment: `A`, `B`, `tie` (`[[C]]`) or `error`, checked in that
/// order as FastChat does.
pub(crate) fn parse_winner(judgment: &str) -> &'static str {
    if judgment.contains("[[A]]") {
        "A"
    } else if judgment.contains("[[B]]") {
        "B"
    } else if judgment.contains("[[C]]") {
        "tie"
    } else {
        "error"
    }
}

fn tstamp() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// `[judge model, prompt name]`, FastChat's `judge` tuple.
fn judge_field(judge_model: &str, prompt_name: &str) -> PyValue {
    PyValue::List(vec![PyValue::str(judge_model), PyValue::str(prompt_name)])
}

/// One single-grading judgment as FastChat writes it, keys in FastChat's order (`score` −1
/// when it has none; a request that failed has `judgment` "$ERROR$" as FastChat's, plus the
/// reason in `error`; `repeat` only when judged more than once).
pub fn single_record(judged: &Judged, model: &str, judge_model: &str, repeats: u32) -> PyValue {
    let r = &judged.request;
    let (judgment, score, error) = match &judged.outcome {
        Ok(reply) => (
            reply.content.clone(),
            parse_rating(&reply.content).map_or(PyValue::Int(-1), |v| PyValue::from(&v)),
            None,
        ),
        Err(e) => ("$ERROR$".to_owned(), PyValue::Int(-1), Some(e.to_string())),
    };
    let mut record = PyValue::dict([
        ("question_id", PyValue::Int(r.question_id.into())),
        ("model", PyValue::str(model)),
        ("judge", judge_field(judge_model, &r.prompt_name)),
        ("user_prompt", PyValue::str(r.user_prompt.as_str())),
        ("judgment", PyValue::Str(judgment)),
        ("score", score),
        ("turn", PyValue::Int(r.turn.into())),
        ("tstamp", PyValue::Float(tstamp())),
    ]);
    if repeats > 1 {
        record.set("repeat", PyValue::Int(r.repeat.into()));
    }
    if let Some(e) = error {
        record.set("error", PyValue::Str(e));
    }
    record
}

fn winner_of(judged: &Judged) -> (&'static str, String) {
    match &judged.outcome {
        Ok(reply) => (parse_winner(&reply.content), reply.content.clone()),
        Err(_) => ("error", "$ERROR$".to_owned()),
    }
}

/// Pairs each game-1 judgment with its game-2 twin (same question, turn and repeat) and writes
/// FastChat's pairwise record (keys in its order), with winners mapped to `model_1`/`model_2`.
pub fn pairwise_records(
    judged: &[Judged],
    model_1: &str,
    model_2: &str,
    judge_model: &str,
    repeats: u32,
) -> Vec<PyValue> {
    let mut second: BTreeMap<(u64, u8, u32), &Judged> = BTreeMap::new();
    for j in judged.iter().filter(|j| j.request.game == Some(2)) {
        second.insert((j.request.question_id, j.request.turn, j.request.repeat), j);
    }
    let mut out = Vec::new();
    for g1 in judged.iter().filter(|j| j.request.game == Some(1)) {
        let r = &g1.request;
        let Some(g2) = second.get(&(r.question_id, r.turn, r.repeat)) else {
            continue;
        };
        let (w1, j1) = winner_of(g1);
        let (w2, j2) = winner_of(g2);
        let map = |w: &str, a: &str, b: &str| match w {
            "A" => PyValue::str(a),
            "B" => PyValue::str(b),
            other => PyValue::str(other),
        };
        let mut record = PyValue::dict([
            ("question_id", PyValue::Int(r.question_id.into())),
            ("model_1", PyValue::str(model_1)),
            ("model_2", PyValue::str(model_2)),
            ("g1_winner", map(w1, "model_1", "model_2")),
            ("g2_winner", map(w2, "model_2", "model_1")),
            ("judge", judge_field(judge_model, &r.prompt_name)),
            ("g1_user_prompt", PyValue::str(r.user_prompt.as_str())),
            ("g1_judgment", PyValue::Str(j1)),
            (
                "g2_user_prompt",
                PyValue::str(g2.request.user_prompt.as_str()),
            ),
            ("g2_judgment", PyValue::Str(j2)),
            ("turn", PyValue::Int(r.turn.into())),
            ("tstamp", PyValue::Float(tstamp())),
        ]);
        if repeats > 1 {
            record.set("repeat", PyValue::Int(r.repeat.into()));
        }
        out.push(record);
    }
    out
}

/// Aggregates of single grading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SingleScores {
    /// Mean over (question, turn) of the median over repeats; `None` when nothing was rated.
    pub score: Option<f64>,
    /// The same over turn 1.
    pub turn1: Option<f64>,
    /// The same over turn 2.
    pub turn2: Option<f64>,
    /// The same per category.
    pub categories: BTreeMap<String, f64>,
    /// Mean rating of each repeat's judgments (one entry per repeat).
    pub per_repeat: Vec<Option<f64>>,
    /// Judgments that failed or had no rating.
    pub judge_errors: usize,
    /// Judgments asked for.
    pub judgments: usize,
}

impl SingleScores {
    /// Largest minus smallest per-repeat mean (0 with one repeat).
    pub fn spread(&self) -> Option<f64> {
        let values: Vec<f64> = self.per_repeat.iter().flatten().copied().collect();
        let max = values.iter().copied().reduce(f64::max)?;
        let min = values.iter().copied().reduce(f64::min)?;
        Some(max - min)
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// Scores single-grading judgments.
pub(crate) fn single_scores(judged: &[Judged], repeats: u32) -> SingleScores {
    let mut by_item: BTreeMap<(u64, u8), (String, Vec<f64>)> = BTreeMap::new();
    let mut by_repeat: Vec<Vec<f64>> = vec![Vec::new(); repeats as usize];
    let mut errors = 0;
    for j in judged {
        let r = &j.request;
        let rating = j
            .outcome
            .as_ref()
            .ok()
            .and_then(|reply| parse_rating(&reply.content))
            .and_then(|v| v.as_f64());
        let entry = by_item
            .entry((r.question_id, r.turn))
            .or_insert_with(|| (r.category.clone(), Vec::new()));
        match rating {
            Some(value) => {
                entry.1.push(value);
                if let Some(list) = by_repeat.get_mut(r.repeat as usize) {
                    list.push(value);
                }
            }
            None => errors += 1,
        }
    }
    let mut all = Vec::new();
    let mut turns: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut categories: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for ((_, turn), (category, values)) in &by_item {
        let Some(m) = median(values) else { continue };
        all.push(m);
        turns[usize::from(*turn == 2)].push(m);
        categories.entry(category.clone()).or_default().push(m);
    }
    SingleScores {
        score: mean(&all),
        turn1: mean(&turns[0]),
        turn2: mean(&turns[1]),
        categories: categories
            .into_iter()
            .filter_map(|(c, v)| mean(&v).map(|m| (c, m)))
            .collect(),
        per_repeat: by_repeat.iter().map(|v| mean(v)).collect(),
        judge_errors: errors,
        judgments: judged.len(),
    }
}

/// Aggregates of pairwise grading, from model 1's side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairwiseScores {
    /// Both orders agree model 1 is better.
    pub wins: usize,
    /// Both orders agree model 2 is better.
    pub losses: usize,
    /// A tie, or the two orders disagree.
    pub ties: usize,
    /// Pairs where either order failed or gave no verdict (left out of the rates).
    pub judge_errors: usize,
}

impl PairwiseScores {
    /// wins / (wins + losses + ties).
    pub(crate) fn win_rate(&self) -> Option<f64> {
        let n = self.wins + self.losses + self.ties;
        (n > 0).then(|| self.wins as f64 / n as f64)
    }

    /// losses / (wins + losses + ties).
    pub(crate) fn loss_rate(&self) -> Option<f64> {
        let n = self.wins + self.losses + self.ties;
        (n > 0).then(|| self.losses as f64 / n as f64)
    }

    /// (wins + ties / 2) / (wins + losses + ties), FastChat's `win_rate_adjusted`.
    pub fn win_rate_adjusted(&self) -> Option<f64> {
        let n = self.wins + self.losses + self.ties;
        (n > 0).then(|| (self.wins as f64 + 0.5 * self.ties as f64) / n as f64)
    }
}

/// Tallies pairwise records as FastChat's `show_result.py`: an error in either order leaves the
/// pair out (counted here), a tie or disagreement is a tie.
pub(crate) fn pairwise_scores(records: &[PyValue]) -> PairwiseScores {
    let winner = |record: &PyValue, key: &str| match record.get(key) {
        Some(PyValue::Str(w)) => w.clone(),
        _ => "error".to_owned(),
    };
    let mut scores = PairwiseScores::default();
    for record in records {
        let (g1, g2) = (winner(record, "g1_winner"), winner(record, "g2_winner"));
        let (g1, g2) = (g1.as_str(), g2.as_str());
        if g1 == "error" || g2 == "error" {
            scores.judge_errors += 1;
        } else if g1 == "tie" || g1 != g2 {
            scores.ties += 1;
        } else if g1 == "model_1" {
            scores.wins += 1;
        } else {
            scores.losses += 1;
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ratings_as_fastchat_reads_them() {
        assert_eq!(parse_rating("Rating: [[7]]"), Some(json!(7)));
        assert_eq!(parse_rating("Rating: [[7.5]] and [[3]]"), Some(json!(7.5)));
        assert_eq!(parse_rating("I give it [8]."), Some(json!(8)));
        assert_eq!(parse_rating("[1] first then [[9]]"), Some(json!(9)));
        assert_eq!(parse_rating("Rating: 7/10"), None);
        assert_eq!(parse_rating("[[7.]]"), Some(json!(7.0)));
        assert_eq!(parse_winner("[[B]] ... [[A]]"), "A");
        assert_eq!(parse_winner("verdict: [[C]]"), "tie");
        assert_eq!(parse_winner("no idea"), "error");
        assert_eq!(median(&[3.0, 9.0, 4.0]), Some(4.0));
        assert_eq!(median(&[3.0, 4.0]), Some(3.5));
    }

    #[test]
    fn pairwise_disagreement_is_a_tie_and_errors_are_counted() {
        let rec = |g1: &str, g2: &str| {
            PyValue::dict([
                ("g1_winner", PyValue::str(g1)),
                ("g2_winner", PyValue::str(g2)),
            ])
        };
        let scores = pairwise_scores(&[
            rec("model_1", "model_1"),
            rec("model_1", "model_2"),
            rec("model_2", "model_2"),
            rec("tie", "tie"),
            rec("error", "model_1"),
        ]);
        assert_eq!(
            scores,
            PairwiseScores {
                wins: 1,
                losses: 1,
                ties: 2,
                judge_errors: 1
            }
        );
        assert_eq!(scores.win_rate(), Some(0.25));
        assert_eq!(scores.win_rate_adjusted(), Some(0.5));
    }
}
