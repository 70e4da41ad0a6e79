//! Continuous batching: requests that join a running batch at different steps get exactly the
//! tokens `generate` gives each prompt alone (and transformers' greedy continuation on the
//! hf-tiny checkpoints, Mistral's sliding window included); seeded sampling does not depend on
//! the batch's other sequences; a closed receiver leaves the batch; streamed pieces
//! concatenate to the final text, cut before a stop string.

mod common;

use std::sync::{Arc, Mutex};

use burn::tensor::DType;
use common::{ids, json, shared};
use erebor_model::config::{Architecture, DecoderDims};
use erebor_model::{
    BatchEvent, BatchRequest, Batcher, CausalLm, Checkpoint, EventSink, FinishReason,
    GenerationConfig, ModelConfig, Tokenizer, generate,
};

/// Collects events; `closed` simulates a client that went away.
#[derive(Clone, Default)]
struct Collect {
    events: Arc<Mutex<Vec<BatchEvent>>>,
    closed: Arc<Mutex<bool>>,
}

impl EventSink for Collect {
    fn send(&mut self, event: BatchEvent) -> bool {
        self.events.lock().unwrap().push(event);
        !*self.closed.lock().unwrap()
    }
    fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap()
    }
}

impl Collect {
    fn finished(&self) -> Option<erebor_model::Generation> {
        self.events.lock().unwrap().iter().find_map(|e| match e {
            BatchEvent::Finished(g) => Some(g.clone()),
            _ => None,
        })
    }
    fn streamed(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                BatchEvent::Delta { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

fn request(prompt: &[u32], config: &GenerationConfig, sink: &Collect) -> BatchRequest {
    BatchRequest {
        prompt: prompt.to_vec(),
        config: config.clone(),
        sink: Box::new(sink.clone()),
    }
}

/// Admits `prompts[i]` before step `joins[i]` and steps until every sequence is done.
fn run_staggered(
    batcher: &mut Batcher,
    prompts: &[Vec<u32>],
    configs: &[GenerationConfig],
    joins: &[usize],
) -> Vec<Collect> {
    let sinks: Vec<Collect> = prompts.iter().map(|_| Collect::default()).collect();
    let mut step = 0;
    loop {
        for (i, &j) in joins.iter().enumerate() {
            if j == step {
                batcher.admit(vec![request(&prompts[i], &configs[i], &sinks[i])]);
            }
        }
        if batcher.active_len() == 0 && joins.iter().all(|&j| j <= step) {
            return sinks;
        }
        batcher.step();
        step += 1;
    }
}

fn greedy(n: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: n,
        ..GenerationConfig::default()
    }
}

#[test]
fn staggered_requests_match_generate_alone_and_transformers() {
    for arch in ["llama", "qwen2", "mistral"] {
        let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
            return;
        };
        let r = json(&dir.join("reference.json"));
        let prompt = ids(&r["prompt_ids"]);
        let want = ids(&r["greedy_continuation"]);
        let model = Checkpoint::load(&dir, &common::device(), DType::F32)
            .unwrap()
            .model;
        let mut long = vec![7, 8, 9, 10, 11, 12];
        long.extend_from_slice(&prompt);
        let prompts = vec![
            prompt[3..].to_vec(),
            prompt.clone(),
            long,
            prompt[..4].to_vec(),
        ];
        let n = want.len();
        let configs = vec![greedy(n + 4), greedy(n), greedy(n + 2), greedy(3)];
        let alone: Vec<Vec<u32>> = prompts
            .iter()
            .zip(&configs)
            .map(|(p, c)| {
                generate(&model, None, std::slice::from_ref(p), c).unwrap()[0]
                    .token_ids
                    .clone()
            })
            .collect();
        let mut batcher = Batcher::new(model, None, 3);
        // The fourth joins after the first has left and while the others run.
        let sinks = run_staggered(&mut batcher, &prompts, &configs, &[0, 2, 2, 7]);
        for (i, sink) in sinks.iter().enumerate() {
            let got = sink.finished().expect("finished").token_ids;
            assert_eq!(got, alone[i], "{arch}: request {i} vs generate alone");
        }
        assert_eq!(
            sinks[1].finished().unwrap().token_ids,
            want,
            "{arch}: vs transformers"
        );
    }
}

/// A random model with SmolLM2's tokenizer (its vocabulary and chat template).
fn random_with_tokenizer() -> Option<(CausalLm, Tokenizer)> {
    let dir = shared("tokenizers/smollm2")?;
    let tokenizer = Tokenizer::from_dir(&dir).unwrap();
    let dims = DecoderDims {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: 64,
        intermediate_size: 128,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
    };
    let config = ModelConfig::synthetic(Architecture::Llama, dims, true);
    let model = CausalLm::random(&config, 7, 0.5, &common::device(), DType::F32);
    Some((model, tokenizer))
}

#[test]
fn seeded_sampling_is_per_request_and_streams_concatenate() {
    let Some((model, tok)) = random_with_tokenizer() else {
        return;
    };
    let prompt = tok.encode_ids("The quick brown fox", false).unwrap();
    let other = tok.encode_ids("Once upon a time there was", false).unwrap();
    let sampled = GenerationConfig {
        max_new_tokens: 24,
        temperature: 0.9,
        top_p: 0.95,
        seed: 42,
        ..GenerationConfig::default()
    };
    let reference = generate(&model, Some(&tok), std::slice::from_ref(&prompt), &sampled).unwrap();
    let mut batcher = Batcher::new(model.clone(), Some(tok.clone()), 4);
    let other_config = GenerationConfig {
        seed: 5,
        ..sampled.clone()
    };
    let sinks = run_staggered(
        &mut batcher,
        &[other.clone(), prompt.clone(), other],
        &[other_config.clone(), sampled.clone(), greedy(30)],
        &[0, 3, 1],
    );
    let got = sinks[1].finished().unwrap();
    assert_eq!(
        got, reference[0],
        "same seed, same sample beside other requests"
    );
    for s in &sinks {
        assert_eq!(
            s.streamed(),
            s.finished().unwrap().text,
            "pieces concatenate"
        );
    }

    // A stop string taken from the greedy text cuts it, streamed or not.
    let plain = generate(
        &model,
        Some(&tok),
        std::slice::from_ref(&prompt),
        &greedy(30),
    )
    .unwrap();
    let text = plain[0].text.clone();
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() > 12, "{text:?}");
    let stop: String = chars[8..11].iter().collect();
    let cut = GenerationConfig {
        stop_strings: vec![stop.clone()],
        ..greedy(30)
    };
    let want = generate(&model, Some(&tok), std::slice::from_ref(&prompt), &cut).unwrap();
    assert_eq!(want[0].finish_reason, FinishReason::StopString);
    let sinks = run_staggered(&mut batcher, &[prompt], &[cut], &[0]);
    assert_eq!(sinks[0].finished().unwrap(), want[0]);
    assert_eq!(sinks[0].streamed(), want[0].text);
    assert!(!sinks[0].streamed().contains(&stop));
}

#[test]
fn a_closed_receiver_leaves_and_the_others_go_on() {
    let Some((model, tok)) = random_with_tokenizer() else {
        return;
    };
    let a = tok.encode_ids("alpha beta gamma", false).unwrap();
    let b = tok.encode_ids("one two", false).unwrap();
    let want = generate(&model, Some(&tok), std::slice::from_ref(&b), &greedy(20)).unwrap();
    let mut batcher = Batcher::new(model, Some(tok), 2);
    let (sa, sb) = (Collect::default(), Collect::default());
    batcher.admit(vec![
        request(&a, &greedy(200), &sa),
        request(&b, &greedy(20), &sb),
    ]);
    batcher.step();
    *sa.closed.lock().unwrap() = true;
    batcher.step();
    assert_eq!(
        batcher.active_len(),
        1,
        "the closed request left at the next step"
    );
    while batcher.active_len() > 0 {
        batcher.step();
    }
    assert_eq!(sb.finished().unwrap(), want[0]);
    assert!(sa.finished().is_none());

    // Requests through the channel loop: a bad one is refused, a good one answered.
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let (bad, good) = (Collect::default(), Collect::default());
    tx.send(request(&[], &greedy(4), &bad)).unwrap();
    tx.send(request(&b, &greedy(20), &good)).unwrap();
    drop(tx);
    batcher.run(rx);
    assert!(matches!(
        bad.events.lock().unwrap()[0],
        BatchEvent::Failed(_)
    ));
    assert_eq!(good.finished().unwrap(), want[0]);
}
