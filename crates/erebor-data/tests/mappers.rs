//! The format mappings on rows shaped like the public datasets they are named after
//! (`Intel/orca_dpo_pairs`, `jondurbin/truthy-dpo-v0.1`, `HuggingFaceH4/ultrafeedback_binarized`,
//! `tatsu-lab/alpaca`, OpenAI-style messages), and their errors.

use erebor_core::dataset::{ChatMessage, PreferenceRecord, SftRecord};
use erebor_data::RowLocation;
use erebor_data::convert::config::SourceConfig;
use erebor_data::mappers::{self, MapSpec, Mapped, Record};
use erebor_data::read::RawRow;
use serde_json::{Value, json};

fn row(value: Value) -> RawRow {
    RawRow {
        location: RowLocation::Line {
            file: "rows.jsonl".into(),
            line: 4,
        },
        value,
    }
}

fn apply(spec: &MapSpec, value: Value, system: Option<&str>) -> Result<Record, String> {
    match mappers::apply(spec, "src", system, &row(value)).map_err(|error| error.to_string())? {
        Mapped::Records(mut records) if records.len() == 1 => Ok(records.remove(0)),
        other => panic!("{other:?}"),
    }
}

fn pair(record: Record) -> PreferenceRecord {
    match record {
        Record::Preference(pair) => pair,
        Record::Sft(_) => panic!("not a pair"),
    }
}

fn conversation(record: Record) -> SftRecord {
    match record {
        Record::Sft(sft) => sft,
        Record::Preference(_) => panic!("not a conversation"),
    }
}

#[test]
fn orca_and_truthy_rows_keep_their_own_system_prompt() {
    let orca = pair(
        apply(
            &MapSpec::OrcaDpo,
            json!({"system": "You are an AI assistant.", "question": "Q", "chosen": "good", "rejected": "bad"}),
            Some("step system"),
        )
        .unwrap(),
    );
    assert_eq!(
        orca.prompt,
        vec![
            ChatMessage::new("system", "You are an AI assistant."),
            ChatMessage::new("user", "Q")
        ]
    );
    assert_eq!(
        (orca.chosen.as_str(), orca.rejected.as_str()),
        ("good", "bad")
    );
    assert_eq!(orca.id, "src/4");

    // An empty system field falls back to the step's system prompt.
    let truthy = pair(
        apply(
            &MapSpec::TruthyDpo,
            json!({"id": "04c275bf", "source": "truthy_dpo", "system": "", "prompt": "P", "chosen": "c", "rejected": "r"}),
            Some("step system"),
        )
        .unwrap(),
    );
    assert_eq!(truthy.id, "src/04c275bf");
    assert_eq!(truthy.prompt[0], ChatMessage::new("system", "step system"));

    let error = apply(
        &MapSpec::OrcaDpo,
        json!({"system": "", "question": "Q", "chosen": 3, "rejected": "r"}),
        None,
    )
    .unwrap_err();
    assert_eq!(
        error,
        "rows.jsonl:4: field `chosen`: expected a string, found a number (3)"
    );
}

#[test]
fn ultrafeedback_prompts_must_agree() {
    let messages = |answer: &str| json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": answer}]);
    let good = pair(
        apply(
            &MapSpec::Ultrafeedback,
            json!({"chosen": messages("a"), "rejected": messages("b")}),
            None,
        )
        .unwrap(),
    );
    assert_eq!(good.prompt, vec![ChatMessage::new("user", "Hi")]);
    let differing = json!({"chosen": messages("a"), "rejected": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "b"}]});
    assert_eq!(
        apply(&MapSpec::Ultrafeedback, differing, None).unwrap_err(),
        "rows.jsonl:4: field `rejected`: the rejected conversation's prompt differs from the chosen one's"
    );
    let bad_role =
        json!({"chosen": [{"role": "human", "content": "Hi"}], "rejected": messages("b")});
    assert_eq!(
        apply(&MapSpec::Ultrafeedback, bad_role, None).unwrap_err(),
        "rows.jsonl:4: field `chosen.0.role`: `human` is not one of system, user, assistant"
    );
}

#[test]
fn alpaca_messages_and_named_fields_make_conversations() {
    let alpaca = conversation(
        apply(
            &MapSpec::Alpaca,
            json!({"instruction": "Translate.", "input": "Bonjour", "output": "Hello"}),
            None,
        )
        .unwrap(),
    );
    assert_eq!(
        alpaca.messages,
        vec![
            ChatMessage::new("user", "Translate.\n\nBonjour"),
            ChatMessage::new("assistant", "Hello")
        ]
    );
    let no_input = conversation(
        apply(
            &MapSpec::Alpaca,
            json!({"instruction": "Say hi.", "input": "", "output": "hi"}),
            Some("S"),
        )
        .unwrap(),
    );
    assert_eq!(no_input.messages[0], ChatMessage::new("system", "S"));
    assert_eq!(no_input.messages[1].content, "Say hi.");

    let spec = MapSpec::Messages { field: None };
    let messages = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]});
    assert_eq!(
        conversation(apply(&spec, messages, Some("ignored")).unwrap())
            .messages
            .len(),
        3
    );
    let no_answer = json!({"messages": [{"role": "user", "content": "u"}]});
    assert_eq!(
        apply(&spec, no_answer, None).unwrap_err(),
        "rows.jsonl:4: field `messages`: the conversation has no assistant turn to train on"
    );
    let late_system = json!({"messages": [{"role": "user", "content": "u"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]});
    assert_eq!(
        apply(&spec, late_system, None).unwrap_err(),
        "rows.jsonl:4: field `messages.1`: a system message may only come first"
    );

    let gsm8k = conversation(
        apply(
            &MapSpec::Gsm8k {
                keep_annotations: false,
            },
            json!({"question": "Q", "answer": "2*3=<<2*3=6>>6\n#### 6"}),
            None,
        )
        .unwrap(),
    );
    assert_eq!(gsm8k.messages[1].content, "2*3=6\n#### 6");
}

#[test]
fn map_names_and_tables_parse_with_field_errors() {
    let parse =
        |value: Value| serde_json::from_value::<SourceConfig>(value).map(|source| source.map);
    assert_eq!(
        parse(json!({"path": "x", "map": "hellaswag"})).unwrap(),
        MapSpec::Hellaswag
    );
    assert_eq!(
        parse(json!({"path": "x", "map": {"type": "sft_fields", "prompt": "q", "response": "a"}}))
            .unwrap(),
        MapSpec::SftFields {
            prompt: "q".into(),
            response: "a".into(),
            system: None
        }
    );
    let error = parse(json!({"path": "x", "map": {"type": "preference_fields", "prompt": "q"}}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing field `chosen`"), "{error}");
    let error = parse(json!({"path": "x", "map": {"type": "low_edit", "sed": 1}}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `sed`"), "{error}");
}
