//! The evaluator on a small random model with the real tiny-arith tokenizer, against
//! independent references: each loglikelihood from one forward pass of the pair alone, each
//! generation from unbatched greedy generation, metrics and standard errors by hand.

// Per-document accuracies are exactly 0 or 1: equality is the check.
#![allow(clippy::float_cmp)]

mod common;

use common::{GenTask, McTask, arith_docs, reference_logprob, reference_pair, tiny_model};
use erebor_core::NullProgress;
use erebor_eval::evaluator::{EvalModel, Hooks};
use erebor_eval::{EvalSettings, Evaluator, Response, Task};
use erebor_model::{GenerationConfig, generate};

fn hooks() -> Hooks<'static> {
    Hooks {
        progress: &NullProgress,
        cancel: None,
    }
}

fn settings(batch_size: usize, share: bool) -> EvalSettings {
    EvalSettings {
        batch_size,
        max_batch_tokens: 512,
        share_contexts: share,
        ..EvalSettings::default()
    }
}

#[test]
fn loglikelihoods_match_one_forward_pass_per_request_and_acc_is_the_argmax() {
    let (model, tok) = tiny_model();
    let task = McTask {
        name: "arith_mc".into(),
        docs: arith_docs(13),
    };
    let eval = Evaluator::new(
        EvalModel {
            model: &model,
            tokenizer: &tok,
        },
        settings(5, true),
        hooks(),
    );
    let result = eval.evaluate_task(&task).unwrap();
    assert_eq!(result.docs.len(), 13);
    let mut accs = Vec::new();
    for (doc, (context, choices, gold)) in result.docs.iter().zip(arith_docs(13)) {
        let mut lls = Vec::new();
        for (response, choice) in doc.responses.iter().zip(&choices) {
            let (c, k) = reference_pair(&tok, &context, &format!(" {choice}"));
            let expected = reference_logprob(&model, &c, &k);
            let Response::Loglikelihood { logprob, .. } = response else {
                panic!("loglikelihood expected")
            };
            assert!(
                (logprob - expected).abs() < 1e-4,
                "doc {}: {logprob} vs {expected}",
                doc.instance.doc_id
            );
            lls.push(expected);
        }
        let best = (0..3).max_by(|&a, &b| lls[a].total_cmp(&lls[b])).unwrap();
        let acc = if best == gold { 1.0 } else { 0.0 };
        assert_eq!(doc.metrics, vec![("acc".to_owned(), acc)]);
        accs.push(acc);
    }
    let mean = accs.iter().sum::<f64>() / 13.0;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 12.0;
    let acc = result.metric("acc").unwrap();
    assert!((acc.value - mean).abs() < 1e-12);
    assert!((acc.stderr.unwrap() - (var / 13.0).sqrt()).abs() < 1e-12);
    assert!(
        result
            .docs
            .iter()
            .all(|d| d.warnings.is_empty() && !d.from_cache)
    );
}

#[test]
fn shared_contexts_run_fewer_tokens_with_the_same_results() {
    let (model, tok) = tiny_model();
    let task = McTask {
        name: "arith_mc".into(),
        docs: arith_docs(9),
    };
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let shared = Evaluator::new(m, settings(4, true), hooks())
        .evaluate_task(&task)
        .unwrap();
    let alone = Evaluator::new(m, settings(3, false), hooks())
        .evaluate_task(&task)
        .unwrap();
    // Only the padding and batch shapes differ.
    common::assert_same_loglikelihoods(&shared, &alone);
    assert_eq!(shared.tokens.unshared, alone.tokens.unshared);
    assert_eq!(alone.tokens.forward, alone.tokens.unshared);
    assert!(shared.tokens.forward < shared.tokens.unshared);
    // Three choices of one or two tokens each behind a context of ~25: close to 3x.
    assert!(shared.tokens.saving().unwrap() > 2.0, "{:?}", shared.tokens);
}

#[test]
fn generations_equal_unbatched_greedy_generation_cut_at_the_stop_string() {
    let (model, tok) = tiny_model();
    let prompts: Vec<(String, String)> = arith_docs(6)
        .into_iter()
        .map(|(c, choices, _)| (c.trim_end().to_owned(), choices[0].clone()))
        .collect();
    let until = vec![".".to_owned(), "\n".to_owned()];
    let task = GenTask {
        name: "arith_gen".into(),
        docs: prompts.clone(),
        until: until.clone(),
        max_gen_toks: 12,
    };
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let result = Evaluator::new(m, settings(4, true), hooks())
        .evaluate_task(&task)
        .unwrap();
    let config = GenerationConfig {
        max_new_tokens: 12,
        stop_token_ids: tok.stop_token_ids().to_vec(),
        stop_strings: until.clone(),
        ..GenerationConfig::default()
    };
    for (doc, (prompt, target)) in result.docs.iter().zip(&prompts) {
        let ids = tok.encode_ids(prompt, false).unwrap();
        let alone = generate(&model, Some(&tok), &[ids], &config).unwrap();
        assert_eq!(
            doc.responses,
            vec![Response::Generated(alone[0].text.clone())]
        );
        assert!(!alone[0].text.contains('.') && !alone[0].text.contains('\n'));
        let hit = alone[0].text.trim() == target;
        assert_eq!(doc.metrics[0].1, if hit { 1.0 } else { 0.0 });
    }
    assert!(result.tokens.forward > 0);
}

#[test]
fn left_truncation_to_the_window_is_recorded_per_document() {
    let (model, tok) = tiny_model();
    let mut docs = arith_docs(3);
    // Document 1 gets a context far longer than a 24-token window.
    docs[1].0 = format!("{} {}", "Ann has 3 apples.".repeat(8), docs[1].0);
    let task = McTask {
        name: "long".into(),
        docs,
    };
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let mut s = settings(8, true);
    s.max_length = Some(24);
    let result = Evaluator::new(m, s, hooks()).evaluate_task(&task).unwrap();
    assert!(result.docs[0].warnings.is_empty() && result.docs[2].warnings.is_empty());
    assert_eq!(
        result.docs[1].warnings.len(),
        3,
        "{:?}",
        result.docs[1].warnings
    );
    assert!(result.docs[1].warnings[0].contains("left-truncated to the window of 24"));
    assert!(result.notes.iter().any(|n| n.contains("1 of 3 documents")));
}

#[test]
fn limit_takes_the_first_documents_and_counts_the_original() {
    let (model, tok) = tiny_model();
    let task = McTask {
        name: "arith_mc".into(),
        docs: arith_docs(7),
    };
    let mut s = settings(8, true);
    s.limit = Some(4);
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let result = Evaluator::new(m, s, hooks()).evaluate_task(&task).unwrap();
    assert_eq!(result.docs.len(), 4);
    assert_eq!(result.n_original, 7);
    assert_eq!(task.instances(Some(4)).unwrap()[3], result.docs[3].instance);
}

/// 25-shot ARC-Challenge (the leaderboard setting) on the real data with the SmolLM2 tokenizer:
/// each question's four choices share a ~1,000-token context, which runs once, so the model
/// runs at least 3x fewer tokens than scoring each request alone (the goal), with the
/// same scores. A small random model of SmolLM2's vocabulary keeps it fast.
#[test]
fn arc_challenge_25_shot_runs_at_least_3x_fewer_forward_tokens() {
    let (Some(data), Some(tokenizer)) = (
        common::shared("data/leaderboard"),
        common::shared("tokenizers/smollm2"),
    ) else {
        return;
    };
    let tok = erebor_model::Tokenizer::from_dir(&tokenizer).unwrap();
    let dims = erebor_model::DecoderDims {
        vocab_size: tok.vocab_size(),
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 1,
        num_heads: 2,
        num_kv_heads: 1,
    };
    let config =
        erebor_model::ModelConfig::synthetic(erebor_model::Architecture::Llama, dims, true);
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    let model = erebor_model::CausalLm::random(
        &config,
        1,
        0.02,
        &device,
        erebor_model::burn::tensor::DType::F32,
    );
    let options = erebor_eval::TaskOptions {
        data_dir: data,
        num_fewshot: None,
        harness: erebor_eval::Harness::B281b09,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    let tasks = erebor_eval::leaderboard_tasks(&["arc_challenge"], &options).unwrap();
    assert_eq!(tasks[0].num_fewshot(), 25);
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let mut s = settings(8, true);
    s.limit = Some(6);
    s.max_batch_tokens = 32_768;
    let shared = Evaluator::new(m, s.clone(), hooks())
        .evaluate_task(tasks[0].as_ref())
        .unwrap();
    s.share_contexts = false;
    let alone = Evaluator::new(m, s, hooks())
        .evaluate_task(tasks[0].as_ref())
        .unwrap();
    let saving = shared.tokens.saving().unwrap();
    println!(
        "25-shot ARC-Challenge, 6 documents: {} forward tokens shared, {} alone ({saving:.2}x)",
        shared.tokens.forward, shared.tokens.unshared
    );
    assert!(saving >= 3.0, "{:?}", shared.tokens);
    assert_eq!(alone.tokens.forward, shared.tokens.unshared);
    for (a, b) in shared.docs.iter().zip(&alone.docs) {
        for (x, y) in a.responses.iter().zip(&b.responses) {
            let (
                Response::Loglikelihood { logprob: x, .. },
                Response::Loglikelihood { logprob: y, .. },
            ) = (x, y)
            else {
                panic!("loglikelihoods expected")
            };
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
    assert_eq!(shared.metrics, alone.metrics);
}
