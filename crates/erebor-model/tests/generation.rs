//! Generation: greedy continuations equal transformers' `generate(do_sample=False)` on the
//! hf-tiny checkpoints, alone and batched with prompts of other lengths (left padding); seeded
//! sampling is reproducible; stop tokens, stop strings and `max_new_tokens` end sequences;
//! and SmolLM2-135M-Instruct from its `Q4_1` GGUF answers the capital of France with "Paris".

mod common;

use burn::tensor::DType;
use common::{ids, json, shared};
use erebor_model::{ChatMessage, Checkpoint, FinishReason, GenerationConfig, generate};

fn greedy(n: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: n,
        ..GenerationConfig::default()
    }
}

#[test]
fn greedy_continuations_match_transformers_alone_and_batched() {
    for arch in ["llama", "qwen2", "mistral"] {
        let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
            return;
        };
        let r = json(&dir.join("reference.json"));
        let prompt = ids(&r["prompt_ids"]);
        let want = ids(&r["greedy_continuation"]);
        let device = common::device();
        let model = Checkpoint::load(&dir, &device, DType::F32).unwrap().model;
        let alone = generate(
            &model,
            None,
            std::slice::from_ref(&prompt),
            &greedy(want.len()),
        )
        .unwrap();
        assert_eq!(alone[0].token_ids, want, "{arch}: greedy continuation");
        assert_eq!(alone[0].finish_reason, FinishReason::Length);

        // Batched with a shorter and a longer prompt: left padding must not change anything.
        let short = prompt[5..].to_vec();
        let mut long = vec![7, 8, 9, 10];
        long.extend_from_slice(&prompt);
        let prompts = vec![short.clone(), prompt.clone(), long.clone()];
        let batched = generate(&model, None, &prompts, &greedy(want.len())).unwrap();
        assert_eq!(
            batched[1].token_ids, want,
            "{arch}: batched greedy continuation"
        );
        for (p, g) in [(&short, &batched[0]), (&long, &batched[2])] {
            let single =
                generate(&model, None, std::slice::from_ref(p), &greedy(want.len())).unwrap();
            assert_eq!(g.token_ids, single[0].token_ids, "{arch}: batched vs alone");
        }

        // A stop token ends the sequence where it appears.
        let stop = GenerationConfig {
            stop_token_ids: vec![want[3]],
            ..greedy(want.len())
        };
        let stopped = generate(&model, None, std::slice::from_ref(&prompt), &stop).unwrap();
        let cut = want.iter().position(|&t| t == want[3]).unwrap();
        assert_eq!(stopped[0].token_ids, want[..=cut]);
        assert_eq!(stopped[0].finish_reason, FinishReason::StopToken);
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_tiny_top_p_is_greedy() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let r = json(&dir.join("reference.json"));
    let prompt = ids(&r["prompt_ids"]);
    let model = Checkpoint::load(&dir, &common::device(), DType::F32)
        .unwrap()
        .model;
    let sampled = |seed, top_p| GenerationConfig {
        max_new_tokens: 12,
        temperature: 1.5,
        top_p,
        seed,
        ..GenerationConfig::default()
    };
    let a = generate(
        &model,
        None,
        std::slice::from_ref(&prompt),
        &sampled(1, 1.0),
    )
    .unwrap();
    let b = generate(
        &model,
        None,
        std::slice::from_ref(&prompt),
        &sampled(1, 1.0),
    )
    .unwrap();
    let c = generate(
        &model,
        None,
        std::slice::from_ref(&prompt),
        &sampled(2, 1.0),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_ne!(
        a[0].token_ids, c[0].token_ids,
        "different seeds give different samples"
    );
    // A random model at temperature 1.5 is far from greedy.
    assert_ne!(a[0].token_ids, ids(&r["greedy_continuation"]));
    let nucleus = generate(
        &model,
        None,
        std::slice::from_ref(&prompt),
        &sampled(3, 1e-6),
    )
    .unwrap();
    assert_eq!(nucleus[0].token_ids, ids(&r["greedy_continuation"]));
}

#[test]
fn smollm2_gguf_answers_paris() {
    let Some(dir) = shared("models/smollm2-135m-instruct") else {
        return;
    };
    let device = common::device();
    let ckpt = Checkpoint::load(
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &device,
        DType::F32,
    )
    .unwrap();
    let config = ckpt.model.config();
    assert_eq!(
        (
            config.num_layers,
            config.hidden_size,
            config.num_heads,
            config.num_kv_heads
        ),
        (30, 576, 9, 3)
    );
    assert!(config.tie_word_embeddings);
    let tok = ckpt
        .tokenizer
        .as_ref()
        .expect("tokenizer.json beside the GGUF");
    let template = tok.chat_template().unwrap().unwrap();
    let prompt = template
        .render(&[ChatMessage::user("What is the capital of France?")], true)
        .unwrap();
    let ids = tok.encode_ids(&prompt, false).unwrap();
    let config = GenerationConfig {
        max_new_tokens: 16,
        stop_token_ids: tok.stop_token_ids().to_vec(),
        ..GenerationConfig::default()
    };
    let out = generate(&ckpt.model, Some(tok), std::slice::from_ref(&ids), &config).unwrap();
    assert!(out[0].text.contains("Paris"), "answer: {:?}", out[0].text);

    // A stop string cuts the text before it.
    let config = GenerationConfig {
        stop_strings: vec!["Paris".into()],
        ..config
    };
    let out = generate(&ckpt.model, Some(tok), &[ids], &config).unwrap();
    assert_eq!(out[0].finish_reason, FinishReason::StopString);
    assert!(
        !out[0].text.contains("Paris") && !out[0].text.is_empty(),
        "{:?}",
        out[0].text
    );
}

#[test]
fn bad_generation_requests_are_errors() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let model = Checkpoint::load(&dir, &common::device(), DType::F32)
        .unwrap()
        .model;
    assert!(generate(&model, None, &[vec![]], &greedy(3)).is_err());
    assert!(
        generate(&model, None, &[vec![1; 250]], &greedy(10)).is_err(),
        "past the 256 window"
    );
    let stop = GenerationConfig {
        stop_strings: vec!["x".into()],
        ..greedy(3)
    };
    assert!(
        generate(&model, None, &[vec![1, 2]], &stop).is_err(),
        "stop strings need a tokenizer"
    );
}
