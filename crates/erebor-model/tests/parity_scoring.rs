//! Sequence and per-token log-probs of the preference pairs in hf-tiny/*/reference.json, for the
//! reference model and `policy/`, through the training API (`sequence_logprobs`, also on an
//! autodiff device with gradients) and the evaluation API (`Scorer`, batched, padded, shared
//! context), all against the numbers transformers computed.

mod common;

use burn::tensor::activation::log_sigmoid;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::{floats, ids, json, max_abs_diff, shared, values_f64};
use erebor_model::{Checkpoint, LoglikelihoodRequest, Scorer, ScorerOptions, sequence_logprobs};

fn rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(ids).collect()
}

fn int_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| i64::from(x)).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

/// A JSON array of numbers as f32.
// The loss runs in f32: the reference values are narrowed to it on purpose.
#[allow(clippy::cast_possible_truncation)]
fn f32s(v: &serde_json::Value) -> Vec<f32> {
    floats(v).iter().map(|&x| x as f32).collect()
}

fn completion_mask(rows: usize, len: usize, prompt: usize, device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = (0..rows)
        .flat_map(|_| (0..len).map(move |t| if t >= prompt { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_data(TensorData::new(flat, [rows, len]), device)
}

/// The preference pairs of a fixture: its `pairs` object, the prompt length, and the chosen
/// and rejected rows (prompt included).
struct Pairs {
    json: serde_json::Value,
    prompt_len: usize,
    chosen: Vec<Vec<u32>>,
    rejected: Vec<Vec<u32>>,
}

fn pairs_of(dir: &std::path::Path) -> Pairs {
    let json = json(&dir.join("reference.json"))["pairs"].clone();
    Pairs {
        prompt_len: usize::try_from(json["prompt_len"].as_u64().unwrap()).unwrap(),
        chosen: rows(&json["chosen"]),
        rejected: rows(&json["rejected"]),
        json,
    }
}

fn seq_logps_training_api(arch: &str) {
    let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
        return;
    };
    let Pairs {
        json: pairs,
        prompt_len: p,
        chosen,
        rejected,
    } = pairs_of(&dir);
    let device = common::device();
    for (sub, prefix) in [(dir.clone(), "ref"), (dir.join("policy"), "policy")] {
        let model = Checkpoint::load(&sub, &device, DType::F32).unwrap().model;
        for (name, seqs) in [("chosen", &chosen), ("rejected", &rejected)] {
            let ids_t = int_tensor(seqs, &device);
            let logits = model.forward(ids_t.clone());
            let mask = completion_mask(seqs.len(), seqs[0].len(), p, &device);
            let got = values_f64(sequence_logprobs(logits, ids_t, mask));
            let want = floats(&pairs[format!("{prefix}_{name}_logps")]);
            let d = max_abs_diff(&got, &want);
            assert!(
                d <= 1e-4,
                "{arch} {prefix} {name}: {got:?} vs {want:?} (diff {d})"
            );
        }
    }
}

#[test]
fn sequence_logprobs_match_transformers() {
    for arch in ["llama", "qwen2", "mistral"] {
        seq_logps_training_api(arch);
    }
}

fn requests(seqs: &[Vec<u32>], p: usize) -> Vec<LoglikelihoodRequest> {
    seqs.iter()
        .map(|s| LoglikelihoodRequest {
            context: s[..p].to_vec(),
            continuation: s[p..].to_vec(),
        })
        .collect()
}

#[test]
fn scorer_matches_transformers_batched_padded_and_shared() {
    for arch in ["llama", "qwen2", "mistral"] {
        let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
            return;
        };
        let Pairs {
            json: pairs,
            prompt_len: p,
            chosen,
            rejected,
        } = pairs_of(&dir);
        let device = common::device();
        let model = Checkpoint::load(dir.join("policy"), &device, DType::F32)
            .unwrap()
            .model;

        // chosen, rejected, plus shorter variants so that batches need padding, plus pairs that
        // share their context (chosen[i] and rejected[i] share the 8-token prompt).
        let mut reqs = requests(&chosen, p);
        reqs.extend(requests(&rejected, p));
        for s in &chosen {
            reqs.push(LoglikelihoodRequest {
                context: s[..p + 2].to_vec(),
                continuation: s[p + 2..p + 5].to_vec(),
            });
        }
        let base = ScorerOptions {
            pad_id: 0,
            ..ScorerOptions::for_model(&model)
        };
        let one_at_a_time = ScorerOptions {
            batch_size: 1,
            share_contexts: false,
            ..base.clone()
        };
        let batched = ScorerOptions {
            batch_size: 8,
            share_contexts: false,
            ..base.clone()
        };
        let shared_ctx = ScorerOptions {
            batch_size: 3,
            share_contexts: true,
            ..base.clone()
        };
        let single = Scorer::new(&model, one_at_a_time)
            .loglikelihood(&reqs)
            .unwrap();
        let batch = Scorer::new(&model, batched).loglikelihood(&reqs).unwrap();
        let shared = Scorer::new(&model, shared_ctx)
            .loglikelihood(&reqs)
            .unwrap();

        let want_tokens = floats(&pairs["policy_chosen_token_logps_row0"]);
        let got_tokens: Vec<f64> = single[0]
            .token_logprobs
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let d = max_abs_diff(&got_tokens, &want_tokens);
        assert!(
            d <= 1e-4,
            "{arch}: per-token log-probs of row 0 differ by {d}"
        );
        let sums: Vec<f64> = single[..4].iter().map(|x| x.logprob).collect();
        let mut want = floats(&pairs["policy_chosen_logps"]);
        want.extend(floats(&pairs["policy_rejected_logps"]));
        assert!(
            max_abs_diff(&sums, &want) <= 1e-4,
            "{arch}: sums {sums:?} vs {want:?}"
        );

        for (other, label) in [(&batch, "batched"), (&shared, "shared-context")] {
            for (i, (a, b)) in single.iter().zip(other.iter()).enumerate() {
                let ta: Vec<f64> = a.token_logprobs.iter().map(|&x| f64::from(x)).collect();
                let tb: Vec<f64> = b.token_logprobs.iter().map(|&x| f64::from(x)).collect();
                let d = max_abs_diff(&ta, &tb);
                assert!(d <= 1e-5, "{arch} {label} request {i}: differs by {d}");
                assert_eq!(
                    a.is_greedy, b.is_greedy,
                    "{arch} {label} request {i}: is_greedy"
                );
            }
        }
    }
}

#[test]
fn scorer_left_truncates_like_lm_eval() {
    let Some(dir) = shared("fixtures/hf-tiny/llama") else {
        return;
    };
    let chosen = pairs_of(&dir).chosen;
    let device = common::device();
    let model = Checkpoint::load(&dir, &device, DType::F32).unwrap().model;
    // With a window of 10, (ctx 8 + cont 10)[-11:][:-1] keeps the last 10 inputs: scoring the
    // full request equals scoring the request whose context is cut to its last token.
    let opts = ScorerOptions {
        max_length: 10,
        share_contexts: false,
        ..ScorerOptions::for_model(&model)
    };
    let s = &chosen[0];
    let full = LoglikelihoodRequest {
        context: s[..8].to_vec(),
        continuation: s[8..].to_vec(),
    };
    let cut = LoglikelihoodRequest {
        context: s[7..8].to_vec(),
        continuation: s[8..].to_vec(),
    };
    let out = Scorer::new(&model, opts.clone())
        .loglikelihood(&[full])
        .unwrap();
    let wide = ScorerOptions {
        max_length: 256,
        ..opts
    };
    let reference = Scorer::new(&model, wide).loglikelihood(&[cut]).unwrap();
    assert!(out[0].truncated);
    assert!((out[0].logprob - reference[0].logprob).abs() < 1e-5);
}

/// DPO loss on the pairs, backward through the policy on an autodiff device: the embedding
/// gradient's norm and row sums match `PyTorch`'s.
#[test]
fn dpo_gradient_through_the_model_matches_pytorch() {
    for arch in ["llama", "qwen2", "mistral"] {
        let Some(dir) = shared(&format!("fixtures/hf-tiny/{arch}")) else {
            return;
        };
        let Pairs {
            json: pairs,
            prompt_len: p,
            chosen,
            rejected,
        } = pairs_of(&dir);
        let beta = pairs["beta"].as_f64().unwrap();
        let device = common::device().autodiff();
        let policy = Checkpoint::load(dir.join("policy"), &device, DType::F32)
            .unwrap()
            .model;
        let mut all = chosen.clone();
        all.extend(rejected.clone());
        let ids_t = int_tensor(&all, &device);
        let mask = completion_mask(4, all[0].len(), p, &device);
        let logps = sequence_logprobs(policy.forward(ids_t.clone()), ids_t, mask);
        let pc = logps.clone().narrow(0, 0, 2);
        let pr = logps.narrow(0, 2, 2);
        let rc = Tensor::<1>::from_floats(f32s(&pairs["ref_chosen_logps"]).as_slice(), &device);
        let rr = Tensor::<1>::from_floats(f32s(&pairs["ref_rejected_logps"]).as_slice(), &device);
        let d = (pc - rc) - (pr - rr);
        let loss = log_sigmoid(d.mul_scalar(beta)).neg().mean();
        let want_loss = pairs["losses"]["dpo"].as_f64().unwrap();
        let got_loss = f64::from(loss.clone().into_scalar::<f32>());
        assert!(
            (got_loss - want_loss).abs() < 1e-5,
            "{arch}: loss {got_loss} vs {want_loss}"
        );
        let grads = loss.backward();
        let g = policy
            .embed_tokens
            .val()
            .grad(&grads)
            .expect("embedding gradient");
        let norm = f64::from(g.clone().square().sum().sqrt().into_scalar::<f32>());
        let want_norm = pairs["grads"]["dpo"]["embed_grad_norm"].as_f64().unwrap();
        assert!(
            (norm - want_norm).abs() <= 1e-4 * want_norm.max(1e-3),
            "{arch}: grad norm {norm} vs {want_norm}"
        );
        let row_sums: Vec<f64> = chosen[0][..4]
            .iter()
            .map(|&t| {
                let row = g.clone().narrow(0, t as usize, 1).sum();
                f64::from(row.into_scalar::<f32>())
            })
            .collect();
        let want_rows = floats(&pairs["grads"]["dpo"]["embed_grad_row_sum"]);
        let d = max_abs_diff(&row_sums, &want_rows);
        assert!(d <= 1e-5, "{arch}: embedding gradient rows differ by {d}");
    }
}

/// Training batches padded on the right (rows of different lengths, mask 0 on padding) give the
/// same per-sequence log-probs as each row alone.
#[test]
fn right_padded_training_batches_equal_rows_alone() {
    let Some(dir) = shared("fixtures/hf-tiny/mistral") else {
        return;
    };
    let Pairs {
        prompt_len: p,
        chosen,
        ..
    } = pairs_of(&dir);
    let device = common::device();
    let model = Checkpoint::load(dir.join("policy"), &device, DType::F32)
        .unwrap()
        .model;
    let short = chosen[1][..14].to_vec();
    let alone = |row: &Vec<u32>| {
        let ids_t = int_tensor(std::slice::from_ref(row), &device);
        let mask = completion_mask(1, row.len(), p, &device);
        values_f64(sequence_logprobs(model.forward(ids_t.clone()), ids_t, mask))[0]
    };
    let want = [alone(&chosen[0]), alone(&short)];
    let len = chosen[0].len() + 3;
    let padded: Vec<Vec<u32>> = [&chosen[0], &short]
        .iter()
        .map(|r| {
            let mut v = (*r).clone();
            v.resize(len, 0);
            v
        })
        .collect();
    let mask: Vec<f32> = [chosen[0].len(), short.len()]
        .iter()
        .flat_map(|&n| (0..len).map(move |t| f32::from(u8::from(t >= p && t < n))))
        .collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [2, len]), &device);
    let ids_t = int_tensor(&padded, &device);
    let got = values_f64(sequence_logprobs(model.forward(ids_t.clone()), ids_t, mask));
    assert!(max_abs_diff(&got, &want) <= 1e-5, "{got:?} vs {want:?}");
}
