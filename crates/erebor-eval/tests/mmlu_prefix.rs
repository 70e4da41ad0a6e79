//! MMLU 5-shot prefix KV reuse against lm-eval 0.4.13's own request list
//! (`tests/fixtures/lm_eval_mmlu_tokens.json`, made by scripts/lm-eval-mmlu-tokens.py: lm-eval's
//! `mmlu_<subject>` tasks built the requests, its HF backend's `_encode_pair` tokenised them
//! with the SmolLM2 tokenizer and its batching with the one-token logits cache was counted).
//!
//! Every question of a subject starts with the same description and five dev examples; erebor
//! runs that prefix once per subject and each question's rest on its KV cache. Checked: erebor
//! builds the same requests as lm-eval (a digest of every request string), erebor's own count
//! of what lm-eval's HF backend runs equals lm-eval's, erebor runs at least 5x fewer forward
//! tokens on whole subjects, and the scores equal scoring without any sharing within 1e-5.

mod common;

use std::path::PathBuf;

use erebor_core::NullProgress;
use erebor_eval::evaluator::{EvalModel, Hooks, TaskResult};
use erebor_eval::{EvalSettings, Evaluator, Harness, Request, Task, TaskOptions};
use erebor_model::burn::tensor::DType;
use erebor_model::{Architecture, CausalLm, DecoderDims, DeviceSpec, ModelConfig, Tokenizer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Whole subjects (662 questions), so the prefix is shared as in a full MMLU run.
const SUBJECTS: [&str; 4] = [
    "abstract_algebra",
    "anatomy",
    "high_school_government_and_politics",
    "marketing",
];

fn fixture() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lm_eval_mmlu_tokens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small random model of SmolLM2's vocabulary: only the token counts and the agreement of
/// the two scoring paths matter here.
fn model(tok: &Tokenizer) -> CausalLm {
    let dims = DecoderDims {
        vocab_size: tok.vocab_size(),
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 2,
        num_kv_heads: 1,
    };
    let config = ModelConfig::synthetic(Architecture::Llama, dims, true);
    let device = DeviceSpec::Cpu.device().unwrap();
    CausalLm::random(&config, 7, 0.2, &device, DType::F32)
}

/// lm-eval's digest of a subject's requests (see the script): `doc_id \x1f context \x1f
/// continuation \x1e` for every request, `doc_id` being the index within the subject.
fn request_digest(instances: &[erebor_eval::DocInstance]) -> String {
    let mut h = Sha256::new();
    for (doc_id, instance) in instances.iter().enumerate() {
        for request in &instance.requests {
            let Request::Loglikelihood {
                context,
                continuation,
            } = request
            else {
                panic!("loglikelihood requests expected")
            };
            h.update(format!("{doc_id}\x1f{context}\x1f{continuation}\x1e").as_bytes());
        }
    }
    hex::encode(h.finalize())
}

fn evaluate(m: EvalModel<'_>, task: &dyn Task, settings: EvalSettings) -> TaskResult {
    let hooks = Hooks {
        progress: &NullProgress,
        cancel: None,
    };
    Evaluator::new(m, settings, hooks)
        .evaluate_task(task)
        .unwrap()
}

fn settings(max_length: usize, share: bool, limit: Option<usize>) -> EvalSettings {
    EvalSettings {
        batch_size: 8,
        max_batch_tokens: 32_768,
        share_contexts: share,
        max_length: Some(max_length),
        limit,
        ..EvalSettings::default()
    }
}

#[test]
fn mmlu_prefix_reuse_runs_at_least_5x_fewer_tokens_than_lm_evals_hf_backend() {
    let (Some(data), Some(tokenizer)) = (
        common::shared("data/leaderboard"),
        common::shared("tokenizers/smollm2"),
    ) else {
        return;
    };
    let expected = fixture();
    let max_length = usize::try_from(expected["max_length"].as_u64().unwrap()).unwrap();
    let tok = Tokenizer::from_dir(&tokenizer).unwrap();
    let model = model(&tok);
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let options = TaskOptions {
        data_dir: data,
        num_fewshot: None,
        harness: Harness::V04,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    // EREBOR_MMLU_SUBJECTS=all: every subject (the full count in BENCHMARKS.md; minutes).
    let subjects: Vec<&str> = match std::env::var("EREBOR_MMLU_SUBJECTS").as_deref() {
        Ok("all") => erebor_eval::tasks::MMLU_SUBJECTS.to_vec(),
        _ => SUBJECTS.to_vec(),
    };
    let names: Vec<String> = subjects.iter().map(|s| format!("mmlu_{s}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tasks = erebor_eval::leaderboard_tasks(&refs, &options).unwrap();
    let (mut ours, mut theirs, mut lm_eval_own_tokens) = (0u64, 0u64, 0u64);
    for (task, subject) in tasks.iter().zip(subjects.iter().copied()) {
        let lm_eval = &expected["subjects"][subject];
        let instances = task.instances(None).unwrap();
        assert_eq!(
            request_digest(&instances),
            lm_eval["requests_sha256"].as_str().unwrap(),
            "{subject}: erebor's requests differ from lm-eval's"
        );
        let result = evaluate(m, task.as_ref(), settings(max_length, true, None));
        let lm_eval_tokens = lm_eval["forward_tokens"].as_u64().unwrap();
        // Equal on the default subjects. Not on every subject: transformers 5.24's
        // AutoTokenizer, which lm-eval tokenised with, encodes some MMLU text differently from
        // the tokenizer.json itself (the `tokenizers` library, which erebor matches), e.g. every
        // college_physics and college_chemistry question; EREBOR_MMLU_SUBJECTS=all prints both.
        if SUBJECTS.contains(&subject) {
            assert_eq!(
                result.tokens.lm_eval_hf, lm_eval_tokens,
                "{subject}: erebor's count of lm-eval's HF forward tokens"
            );
        }
        lm_eval_own_tokens += result.tokens.lm_eval_hf;
        println!(
            "{subject}: {} documents, erebor {} forward tokens, lm-eval HF {lm_eval_tokens} \
             ({:.2}x; {} on erebor's tokens), each request alone {}",
            instances.len(),
            result.tokens.forward,
            lm_eval_tokens as f64 / result.tokens.forward as f64,
            result.tokens.lm_eval_hf,
            result.tokens.unshared
        );
        ours += result.tokens.forward;
        theirs += lm_eval_tokens;
    }
    let saving = theirs as f64 / ours as f64;
    println!(
        "{} subjects: erebor {ours}, lm-eval HF {theirs}: {saving:.2}x; lm-eval's batching of \
         erebor's tokens {lm_eval_own_tokens}",
        subjects.len()
    );
    assert!(
        saving >= 5.0,
        "{saving:.2}x fewer forward tokens than lm-eval"
    );
}

#[test]
fn mmlu_scores_with_the_shared_prefix_equal_scoring_each_request_alone() {
    let (Some(data), Some(tokenizer)) = (
        common::shared("data/leaderboard"),
        common::shared("tokenizers/smollm2"),
    ) else {
        return;
    };
    let tok = Tokenizer::from_dir(&tokenizer).unwrap();
    let model = model(&tok);
    let m = EvalModel {
        model: &model,
        tokenizer: &tok,
    };
    let options = TaskOptions {
        data_dir: data,
        num_fewshot: None,
        harness: Harness::B281b09,
        gsm8k_exemplars: None,
        fewshot_seed: None,
        hub_cache: std::path::PathBuf::new(),
    };
    let tasks =
        erebor_eval::leaderboard_tasks(&["mmlu_abstract_algebra", "mmlu_marketing"], &options)
            .unwrap();
    for task in &tasks {
        let shared = evaluate(m, task.as_ref(), settings(4096, true, Some(10)));
        let alone = evaluate(m, task.as_ref(), settings(4096, false, Some(10)));
        assert_eq!(alone.tokens.forward, alone.tokens.unshared);
        assert!(
            shared.tokens.forward * 3 < shared.tokens.lm_eval_hf,
            "{}: the prefix was not reused: {:?}",
            task.name(),
            shared.tokens
        );
        common::assert_same_loglikelihoods(&shared, &alone);
        assert_eq!(shared.metrics, alone.metrics);
    }
}
