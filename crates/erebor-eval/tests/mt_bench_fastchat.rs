//! MT-Bench judging against FastChat's own code: the fixture
//! (`tests/fixtures/fastchat_mt_bench_judging.json`, written by
//! `scripts/mt_bench_fastchat_fixture.py`) holds the exact requests FastChat's `gen_judgment.py`
//! sends to an OpenAI judge and the JSONL lines it writes, for one question of each category,
//! single and pairwise grading, both turns. erebor must send the same requests and, given the
//! same judge replies, write the same lines (byte for byte, `tstamp` aside).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use erebor_eval::mt_bench::client::Reply;
use erebor_eval::mt_bench::data::{
    AnswerRecord, JudgePrompt, Question, load_answers, load_judge_prompts, load_questions,
};
use erebor_eval::mt_bench::judging::{JudgeRequest, Judged, Sources};
use erebor_eval::mt_bench::scoring::{pairwise_records, single_record};
use erebor_eval::output::pyjson::{PyValue, dumps_ascii};
use serde_json::Value;

struct Inputs {
    fixture: Value,
    questions: Vec<Question>,
    prompts: BTreeMap<String, JudgePrompt>,
    references: BTreeMap<u64, AnswerRecord>,
}

fn inputs() -> Option<Inputs> {
    let data = common::shared("data/mt_bench")?;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fastchat_mt_bench_judging.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids: Vec<u64> = serde_json::from_value(fixture["question_ids"].clone()).unwrap();
    let questions = load_questions(&data.join("question.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|q| ids.contains(&q.question_id))
        .collect();
    Some(Inputs {
        prompts: load_judge_prompts(&data.join("judge_prompts.jsonl")).unwrap(),
        references: load_answers(&data.join("reference_answer/gpt-4.jsonl")).unwrap(),
        questions,
        fixture,
    })
}

impl Inputs {
    fn sources(&self) -> Sources<'_> {
        Sources {
            questions: &self.questions,
            prompts: &self.prompts,
            references: &self.references,
            judge_model: self.fixture["judge_model"].as_str().unwrap(),
            repeats: 1,
        }
    }

    fn answers(&self, model: &str) -> BTreeMap<u64, AnswerRecord> {
        let by_question = self.fixture["answers"][model].as_object().unwrap();
        by_question
            .iter()
            .map(|(id, turns)| {
                let id: u64 = id.parse().unwrap();
                let turns = serde_json::from_value(turns.clone()).unwrap();
                (id, AnswerRecord::new(id, model, turns))
            })
            .collect()
    }
}

/// erebor's request body against the keyword arguments FastChat passed to
/// `openai.ChatCompletion.create` (FastChat's `temperature=0` is an int; erebor sends 0.0).
fn assert_same_request(ours: &JudgeRequest, theirs: &Value) {
    let body: Value = serde_json::from_str(&ours.body).unwrap();
    let label = ours.label();
    for key in ["model", "messages", "n", "max_tokens"] {
        assert_eq!(
            body[key], theirs[key],
            "{label}: `{key}` differs from FastChat's"
        );
    }
    assert_eq!(
        body["temperature"].as_f64(),
        theirs["temperature"].as_f64(),
        "{label}"
    );
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    let mut expected: Vec<&String> = theirs.as_object().unwrap().keys().collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected, "{label}: request fields");
}

fn judged(request: &JudgeRequest, content: &str) -> Judged {
    Judged {
        request: request.clone(),
        outcome: Ok(Reply {
            model: None,
            content: content.to_owned(),
        }),
        from_cache: false,
    }
}

/// `record` written as erebor writes it against FastChat's line: the same bytes up to
/// `tstamp`, the last key, which is the writer's clock in both.
fn assert_same_line(record: &PyValue, line: &str) {
    let ours = dumps_ascii(record);
    let split = |text: &str| {
        let at = text.rfind(", \"tstamp\": ").expect("a tstamp key");
        let stamp: f64 = text[at + 12..text.len() - 1]
            .parse()
            .expect("a float tstamp");
        assert!(stamp > 1.7e9, "{stamp}");
        text[..at].to_owned()
    };
    assert_eq!(split(&ours), split(line));
    assert!(ours.ends_with('}') && line.ends_with('}'));
}

fn find<'a>(requests: &'a [JudgeRequest], line: &PyValue, game: Option<u8>) -> &'a JudgeRequest {
    let int = |key: &str| match line.get(key) {
        Some(PyValue::Int(i)) => u64::try_from(*i).unwrap(),
        other => panic!("`{key}` is {other:?}"),
    };
    let (question, turn) = (int("question_id"), u8::try_from(int("turn")).unwrap());
    requests
        .iter()
        .find(|r| r.question_id == question && r.turn == turn && r.game == game)
        .unwrap_or_else(|| panic!("erebor has no request for question {question} turn {turn}"))
}

fn text<'a>(line: &'a PyValue, key: &str) -> &'a str {
    match line.get(key) {
        Some(PyValue::Str(s)) => s,
        other => panic!("`{key}` is {other:?}"),
    }
}

#[test]
fn single_grading_sends_and_writes_what_fastchat_does() {
    let Some(inputs) = inputs() else { return };
    let cases = inputs.fixture["single"].as_array().unwrap();
    assert_eq!(cases.len(), 32, "8 questions x 2 turns x 2 models");
    let mut by_model = BTreeMap::new();
    for model in ["model-a", "model-b"] {
        by_model.insert(
            model,
            inputs.sources().single(&inputs.answers(model)).unwrap(),
        );
    }
    for case in cases {
        let line = case["line"].as_str().unwrap();
        let parsed = PyValue::parse(line).unwrap();
        let model = text(&parsed, "model");
        let ours = find(&by_model[model], &parsed, None);
        assert_same_request(ours, &case["requests"][0]);
        assert_eq!(ours.user_prompt, text(&parsed, "user_prompt"));
        let record = single_record(&judged(ours, text(&parsed, "judgment")), model, "gpt-4", 1);
        assert_same_line(&record, line);
    }
}

#[test]
fn pairwise_grading_sends_and_writes_what_fastchat_does() {
    let Some(inputs) = inputs() else { return };
    let cases = inputs.fixture["pairwise"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        16,
        "8 questions x 2 turns, model-a against model-b"
    );
    let requests = inputs
        .sources()
        .pairwise(&inputs.answers("model-a"), &inputs.answers("model-b"))
        .unwrap();
    for case in cases {
        let line = case["line"].as_str().unwrap();
        let parsed = PyValue::parse(line).unwrap();
        let (g1, g2) = (
            find(&requests, &parsed, Some(1)),
            find(&requests, &parsed, Some(2)),
        );
        assert_same_request(g1, &case["requests"][0]);
        assert_same_request(g2, &case["requests"][1]);
        let games = [
            judged(g1, text(&parsed, "g1_judgment")),
            judged(g2, text(&parsed, "g2_judgment")),
        ];
        let records = pairwise_records(&games, "model-a", "model-b", "gpt-4", 1);
        assert_eq!(records.len(), 1);
        assert_same_line(&records[0], line);
    }
}
