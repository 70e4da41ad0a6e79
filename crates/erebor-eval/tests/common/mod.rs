//! Helpers shared by erebor-eval's integration tests: a small random model with the real
//! tokenizer of workflows/models/tiny-arith, hand-written tasks, and a brute-force reference
//! for loglikelihoods.
#![allow(dead_code)]

use std::path::PathBuf;

use erebor_eval::output::pyjson::PyValue;
use erebor_eval::{DocInstance, MetricInfo, Request, Response, Task};
use erebor_model::burn::tensor::{DType, Int, Tensor, TensorData};
use erebor_model::{CausalLm, ModelConfig, Tokenizer, token_logprobs};
use serde_json::json;

/// workflows/models/tiny-arith (config and tokenizer only).
pub(crate) fn tiny_arith_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows/models/tiny-arith")
}

/// A random tiny-arith model (seed 3, a wider init than training's so scores differ) and
/// its tokenizer.
pub(crate) fn tiny_model() -> (CausalLm, Tokenizer) {
    let dir = tiny_arith_dir();
    let config = ModelConfig::from_dir(&dir).unwrap();
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    let model = CausalLm::random(&config, 3, 0.2, &device, DType::F32);
    (model, Tokenizer::from_dir(&dir).unwrap())
}

/// `../shared` beside the checkout (or `$EREBOR_SHARED`). Absent: `None` with a message, but
/// under `CI=true` the test fails instead of skipping.
pub(crate) fn shared(rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("EREBOR_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let path = dir.join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing and CI=true: shared fixtures are required on CI",
        path.display()
    );
    eprintln!("skipping: {} not found (set EREBOR_SHARED)", path.display());
    None
}

/// A multiple-choice task built from (context, choices, gold) triples: one loglikelihood
/// request per choice (`" " + choice`), `acc` = the argmax is the gold choice.
pub(crate) struct McTask {
    pub(crate) name: String,
    pub(crate) docs: Vec<(String, Vec<String>, usize)>,
}

const ACC: [MetricInfo; 1] = [MetricInfo {
    name: "acc",
    higher_is_better: true,
}];

impl Task for McTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn num_fewshot(&self) -> usize {
        0
    }
    fn metrics(&self) -> &[MetricInfo] {
        &ACC
    }
    fn version(&self) -> serde_json::Value {
        json!(1.0)
    }
    fn config(&self) -> serde_json::Value {
        json!({"task": self.name, "output_type": "multiple_choice"})
    }
    fn data_files(&self) -> Vec<erebor_eval::DataFile> {
        Vec::new()
    }
    fn instances(&self, limit: Option<usize>) -> erebor_eval::Result<Vec<DocInstance>> {
        Ok(self
            .docs
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .enumerate()
            .map(|(i, (context, choices, gold))| DocInstance {
                doc_id: i,
                doc: PyValue::from(&json!({"query": context, "choices": choices, "gold": gold})),
                target: gold.to_string(),
                requests: choices
                    .iter()
                    .map(|c| Request::Loglikelihood {
                        context: context.clone(),
                        continuation: format!(" {c}"),
                    })
                    .collect(),
            })
            .collect())
    }
    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> erebor_eval::Result<Vec<(String, f64)>> {
        let lls: Vec<f64> = responses
            .iter()
            .map(|r| match r {
                Response::Loglikelihood { logprob, .. } => *logprob,
                Response::Generated(_) => f64::NAN,
            })
            .collect();
        let best = (0..lls.len())
            .max_by(|&a, &b| lls[a].total_cmp(&lls[b]))
            .unwrap();
        let gold: usize = instance.target.parse().unwrap();
        Ok(vec![("acc".into(), if best == gold { 1.0 } else { 0.0 })])
    }
}

/// A generation task: greedy until `until`, `exact_match` = the text, trimmed, is the target.
pub(crate) struct GenTask {
    pub(crate) name: String,
    pub(crate) docs: Vec<(String, String)>,
    pub(crate) until: Vec<String>,
    pub(crate) max_gen_toks: usize,
}

const EXACT: [MetricInfo; 1] = [MetricInfo {
    name: "exact_match",
    higher_is_better: true,
}];

impl Task for GenTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn num_fewshot(&self) -> usize {
        0
    }
    fn metrics(&self) -> &[MetricInfo] {
        &EXACT
    }
    fn version(&self) -> serde_json::Value {
        json!(0)
    }
    fn config(&self) -> serde_json::Value {
        json!({"task": self.name, "output_type": "generate_until"})
    }
    fn data_files(&self) -> Vec<erebor_eval::DataFile> {
        Vec::new()
    }
    fn instances(&self, limit: Option<usize>) -> erebor_eval::Result<Vec<DocInstance>> {
        Ok(self
            .docs
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .enumerate()
            .map(|(i, (prompt, target))| DocInstance {
                doc_id: i,
                doc: PyValue::from(&json!({"prompt": prompt, "answer": target})),
                target: target.clone(),
                requests: vec![Request::GenerateUntil {
                    context: prompt.clone(),
                    until: self.until.clone(),
                    max_gen_toks: self.max_gen_toks,
                }],
            })
            .collect())
    }
    fn process_results(
        &self,
        instance: &DocInstance,
        responses: &[Response],
    ) -> erebor_eval::Result<Vec<(String, f64)>> {
        let hit = matches!(&responses[0], Response::Generated(t) if t.trim() == instance.target);
        Ok(vec![("exact_match".into(), if hit { 1.0 } else { 0.0 })])
    }
}

/// Problems over the tiny-arith vocabulary; contexts repeat across choices.
pub(crate) fn arith_docs(n: usize) -> Vec<(String, Vec<String>, usize)> {
    let names = ["Ann", "Bob", "Mia", "Sam"];
    let things = ["apples", "books", "coins", "cards"];
    (0..n)
        .map(|i| {
            let a = 2 + i % 7;
            let b = 1 + (i * 3) % 5;
            let mut context = format!(
                "{} has {a} {}. {} gets {b} more. How many {} does {} have now?\nAnswer:",
                names[i % 4],
                things[i % 4],
                if i % 2 == 0 { "She" } else { "He" },
                things[i % 4],
                names[i % 4]
            );
            // Every third context ends in a space, which moves to the continuations.
            if i % 3 == 0 {
                context.push(' ');
            }
            let choices = (0..3).map(|k| (a + b + k).to_string()).collect();
            (context, choices, i % 3)
        })
        .collect()
}

/// lm-eval's `_encode_pair`, written out again for the reference: trailing whitespace of the
/// context moves to the continuation; the continuation is what follows the context's tokens
/// in the encoding of the whole.
pub(crate) fn reference_pair(
    tok: &Tokenizer,
    context: &str,
    continuation: &str,
) -> (Vec<u32>, Vec<u32>) {
    let n_space = context.len() - context.trim_end().len();
    let ctx = &context[..context.len() - n_space];
    let cont = format!("{}{continuation}", &context[context.len() - n_space..]);
    let whole = tok.encode_ids(&format!("{ctx}{cont}"), false).unwrap();
    let ctx_ids = tok.encode_ids(ctx, false).unwrap();
    (ctx_ids.clone(), whole[ctx_ids.len()..].to_vec())
}

/// The log-probability of `continuation` after `context`, from one full forward pass of the
/// pair alone (no batching, no padding, no cache).
pub(crate) fn reference_logprob(model: &CausalLm, context: &[u32], continuation: &[u32]) -> f64 {
    let ids: Vec<u32> = context.iter().chain(continuation).copied().collect();
    let n = ids.len();
    let device = model.device();
    let input: Vec<i64> = ids[..n - 1].iter().map(|&x| i64::from(x)).collect();
    let targets: Vec<i64> = ids[1..].iter().map(|&x| i64::from(x)).collect();
    let logits = model.forward(Tensor::<2, Int>::from_data(
        TensorData::new(input, [1, n - 1]),
        &device,
    ));
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [1, n - 1]), &device);
    let lps: Vec<f32> = token_logprobs(logits, targets)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    lps[n - 1 - continuation.len()..]
        .iter()
        .map(|&x| f64::from(x))
        .sum()
}

/// The run description the output tests write: a fixed model, hashes and times, under
/// `harness`.
pub(crate) fn run_info(harness: erebor_eval::Harness) -> erebor_eval::output::RunInfo {
    erebor_eval::output::RunInfo {
        model: "models/tiny".into(),
        model_sha256: "ab".repeat(32),
        model_parameters: 1234,
        dtype: "f32".into(),
        device: "cpu".into(),
        harness,
        fewshot_seed: None,
        settings: erebor_eval::EvalSettings::default(),
        max_length: 256,
        cache_dir: None,
        start_time: 1_700_000_000.5,
        end_time: 1_700_000_010.0,
        date_id: "2026-11-30T20-40-12.123456".into(),
    }
}

/// Asserts two evaluations of the same task gave the same loglikelihoods, request by request:
/// equal within 1e-5 relative (only padding, batch shapes and prefix reuse differ) and the
/// same greedy flags.
pub(crate) fn assert_same_loglikelihoods(
    a: &erebor_eval::evaluator::TaskResult,
    b: &erebor_eval::evaluator::TaskResult,
) {
    assert_eq!(a.docs.len(), b.docs.len());
    for (da, db) in a.docs.iter().zip(&b.docs) {
        for (x, y) in da.responses.iter().zip(&db.responses) {
            let (
                Response::Loglikelihood {
                    logprob: x,
                    is_greedy: gx,
                },
                Response::Loglikelihood {
                    logprob: y,
                    is_greedy: gy,
                },
            ) = (x, y)
            else {
                panic!("loglikelihoods expected")
            };
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
            assert_eq!(gx, gy);
        }
    }
}
