//! Chat templates against golden strings rendered by transformers' `apply_chat_template` /
//! `render_jinja_template` (`tests/fixtures/goldens.json`, made by `tests/fixtures/make_goldens.py`;
//! it records the transformers and jinja2 versions), plus the SmolLM2 checkpoint template through
//! the real tokenizer files in ../shared.

mod common;

use std::path::PathBuf;

use erebor_text::{ChatMessage, ChatTemplate, TextError, Tokenizer};
use serde_json::Value;

fn goldens() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/goldens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn conversation(g: &Value, key: &str) -> Vec<ChatMessage> {
    serde_json::from_value(g["conversations"][key].clone()).unwrap()
}

fn template_for(g: &Value, case: &Value) -> ChatTemplate {
    let key = case["template"].as_str().unwrap();
    let bos = case["bos"].as_str().unwrap();
    let eos = case["eos"].as_str().unwrap();
    let t = match g["templates"].get(key) {
        Some(src) => ChatTemplate::from_jinja(key, src.as_str().unwrap(), bos, eos).unwrap(),
        None => ChatTemplate::builtin(key, Some(bos), Some(eos)).unwrap(),
    };
    match case["system_prompt"].as_str() {
        Some(p) => t.with_system_prompt(p),
        None => t,
    }
}

#[test]
fn every_golden_case_renders_like_transformers() {
    let g = goldens();
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() > 50, "fixture has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let template = template_for(&g, case);
        // The override is applied by the template; the fixture's conversation key is the
        // conversation before the override.
        let messages = conversation(&g, case["conversation"].as_str().unwrap());
        let add_gen = case["add_generation_prompt"].as_bool().unwrap();
        let got = template.render(&messages, add_gen);
        match (case.get("expected"), got) {
            (Some(want), Ok(text)) => assert_eq!(text, want.as_str().unwrap(), "case {name}"),
            (None, Err(TextError::Template { message, .. })) => {
                let want = case["error"].as_str().unwrap();
                assert!(
                    message.contains(want),
                    "case {name}: error {message:?} lacks {want:?}"
                );
            }
            (want, got) => panic!("case {name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn generation_tags_give_transformers_assistant_spans() {
    let g = goldens();
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with("generation/") || case["add_generation_prompt"].as_bool().unwrap() {
            continue;
        }
        let template = template_for(&g, case);
        let messages = conversation(&g, case["conversation"].as_str().unwrap());
        let rendered = template.render_with_assistant_spans(&messages).unwrap();
        assert_eq!(
            rendered.text,
            case["expected"].as_str().unwrap(),
            "case {name}"
        );
        let want: Vec<std::ops::Range<usize>> = case["generation_spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| json_usize(&s[0])..json_usize(&s[1]))
            .collect();
        assert_eq!(rendered.assistant_spans, want, "case {name}");
        for span in &rendered.assistant_spans {
            assert!(
                rendered.text[span.clone()].ends_with("<|im_end|>"),
                "case {name}"
            );
        }
    }
}

#[test]
fn prefix_rendering_finds_assistant_turns_without_generation_tags() {
    let g = goldens();
    let messages = conversation(&g, "multi");
    let chatml = ChatTemplate::builtin("chatml", None, None).unwrap();
    let r = chatml.render_with_assistant_spans(&messages).unwrap();
    let turns: Vec<&str> = r
        .assistant_spans
        .iter()
        .map(|s| &r.text[s.clone()])
        .collect();
    assert_eq!(
        turns,
        [
            "Hi there<|im_end|>\n",
            "   I am an assistant   <|im_end|>\n"
        ]
    );
    let llama2 = ChatTemplate::builtin("llama-2", None, None).unwrap();
    let r = llama2.render_with_assistant_spans(&messages).unwrap();
    let turns: Vec<&str> = r
        .assistant_spans
        .iter()
        .map(|s| &r.text[s.clone()])
        .collect();
    assert_eq!(turns, [" Hi there </s>", " I am an assistant </s>"]);
}

#[test]
fn smollm2_checkpoint_template_inserts_its_default_system_prompt() {
    let g = goldens();
    let Some(dir) = common::shared("tokenizers/smollm2") else {
        return;
    };
    let tok = Tokenizer::from_dir(&dir).unwrap();
    let template = tok
        .chat_template()
        .unwrap()
        .expect("SmolLM2 has a chat template");
    for case in g["smollm2_chat"].as_array().unwrap() {
        let messages = conversation(&g, case["conversation"].as_str().unwrap());
        let add_gen = case["add_generation_prompt"].as_bool().unwrap();
        assert_eq!(
            template.render(&messages, add_gen).unwrap(),
            case["expected"].as_str().unwrap(),
            "{case}"
        );
    }
    // Tokenised as apply_chat_template(tokenize=True) does: no special tokens added.
    let text = template.render(&conversation(&g, "user"), true).unwrap();
    let want: Vec<u32> = common::ids(&g["smollm2_chat_ids_user_gen"]);
    assert_eq!(tok.encode_ids(&text, false).unwrap(), want);
    // A system prompt override replaces the default one.
    let custom = template.with_system_prompt("Be brief.");
    let text = custom.render(&conversation(&g, "user"), true).unwrap();
    assert!(text.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"));
}

#[test]
fn template_errors_name_the_template() {
    let err = ChatTemplate::from_jinja("broken", "{% for m in messages %}", "", "").unwrap_err();
    assert!(
        matches!(&err, TextError::Template { name, .. } if name == "broken"),
        "{err}"
    );
    let err = ChatTemplate::builtin("vicuna", None, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("chatml, llama-2, mistral, llama-3"),
        "{err}"
    );
    let mistral = ChatTemplate::builtin("mistral", None, None).unwrap();
    let err = mistral
        .render(&[ChatMessage::system("s"), ChatMessage::user("u")], true)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Conversation roles must alternate"),
        "{err}"
    );
}

/// A JSON non-negative integer as `usize`.
fn json_usize(v: &serde_json::Value) -> usize {
    usize::try_from(v.as_u64().unwrap()).unwrap()
}
