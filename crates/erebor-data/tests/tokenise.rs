//! Prompt/target spans against references made with jinja2 and the Python `tokenizers`
//! package (`tests/fixtures/make_token_reference.py`), on the SmolLM2 (ChatML) and Llama-2
//! tokenizers in ../shared.

use erebor_core::dataset::{ChatMessage, PreferenceRecord, SftRecord};
use erebor_data::tokenise::ChatTokenizer;
use serde_json::Value;
use std::path::PathBuf;

fn tokenizer(name: &str) -> Option<ChatTokenizer> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/tokenizers")
        .join(name);
    if !folder.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is absent and CI=true: shared fixtures are required on CI",
            folder.display()
        );
        println!(
            "skipping: {} is absent (../shared is not beside the checkout)",
            folder.display()
        );
        return None;
    }
    let template = if name == "llama2" {
        "llama-2"
    } else {
        "checkpoint"
    };
    Some(ChatTokenizer::load(&folder, name, template).unwrap())
}

fn cases() -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn messages(value: &Value) -> Vec<ChatMessage> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| u32::try_from(id.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn sft_targets_are_the_assistant_turns_with_their_end_of_turn_tokens() {
    for case in cases().iter().filter(|case| case["kind"] == "sft") {
        let Some(chat) = tokenizer(case["tokenizer"].as_str().unwrap()) else {
            return;
        };
        let record = SftRecord {
            id: "c".into(),
            messages: messages(&case["messages"]),
        };
        let tokens = chat.sft(&record).unwrap();
        assert_eq!(
            tokens.input_ids,
            ids(&case["input_ids"]),
            "{}",
            case["text"]
        );
        let spans: Vec<[u32; 2]> = case["target_spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|span| {
                [
                    u32::try_from(span[0].as_u64().unwrap()).unwrap(),
                    u32::try_from(span[1].as_u64().unwrap()).unwrap(),
                ]
            })
            .collect();
        assert_eq!(tokens.target_spans, spans, "{}", case["text"]);
        let decoded: Vec<String> = tokens
            .target_spans
            .iter()
            .map(|[a, b]| {
                chat.tokenizer()
                    .decode(&tokens.input_ids[*a as usize..*b as usize], false)
                    .unwrap()
            })
            .collect();
        let expected: Vec<String> = case["target_texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(decoded, expected);
    }
}

#[test]
fn smollm2_targets_decode_to_the_answer_and_im_end() {
    // Hand-checked: ChatML writes "<|im_start|>assistant\n" + content + "<|im_end|>\n"; the
    // header is prompt, the rest is target.
    let Some(chat) = tokenizer("smollm2") else {
        return;
    };
    let record = SftRecord {
        id: "c".into(),
        messages: vec![
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello there"),
        ],
    };
    let tokens = chat.sft(&record).unwrap();
    let [start, end] = tokens.target_spans[0];
    let target = chat
        .tokenizer()
        .decode(&tokens.input_ids[start as usize..end as usize], false)
        .unwrap();
    assert_eq!(target, "Hello there<|im_end|>\n");
    let prompt = chat
        .tokenizer()
        .decode(&tokens.input_ids[..start as usize], false)
        .unwrap();
    assert!(
        prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        "{prompt}"
    );
    assert_eq!(end as usize, tokens.input_ids.len());
}

#[test]
fn preference_prompt_and_completions_match_the_trl_style_reference() {
    for case in cases().iter().filter(|case| case["kind"] == "preference") {
        let Some(chat) = tokenizer(case["tokenizer"].as_str().unwrap()) else {
            return;
        };
        let record = PreferenceRecord {
            id: "p".into(),
            prompt: messages(&case["prompt"]),
            chosen: case["chosen"].as_str().unwrap().into(),
            rejected: case["rejected"].as_str().unwrap().into(),
        };
        let (tokens, _) = chat.preference(&record).unwrap();
        assert_eq!(
            tokens.prompt_ids,
            ids(&case["prompt_ids"]),
            "{}",
            case["prompt_text"]
        );
        assert_eq!(tokens.chosen_ids, ids(&case["chosen_ids"]));
        assert_eq!(tokens.rejected_ids, ids(&case["rejected_ids"]));
        // The two completions differ in the one changed digit only.
        let differing = tokens
            .chosen_ids
            .iter()
            .zip(&tokens.rejected_ids)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            (differing, tokens.chosen_ids.len()),
            (1, tokens.rejected_ids.len())
        );
    }
}

#[test]
fn a_template_that_refuses_the_conversation_names_the_row() {
    let Some(chat) = tokenizer("llama2") else {
        return;
    };
    let record = SftRecord {
        id: "bad/7".into(),
        messages: vec![
            ChatMessage::new("assistant", "first"),
            ChatMessage::new("user", "second"),
        ],
    };
    let error = chat.sft(&record).unwrap_err().to_string();
    assert!(
        error.starts_with("row `bad/7`: chat template `llama-2`:"),
        "{error}"
    );
    assert!(
        error.contains("Conversation roles must alternate"),
        "{error}"
    );
}
