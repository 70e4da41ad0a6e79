//! Throughput of the preference step's optimizer loop (DPOP): forward of chosen and rejected,
//! loss, backward, global-norm clipping, `AdamW`, metrics; plus the reference pre-pass.
//!
//! ```sh
//! cargo run -p erebor-train --example bench_preference -- --model tiny10m --device cpu
//! # LibTorch CPU (see scripts/tch-cpu-check.sh for the environment):
//! CARGO_TARGET_DIR=target/tch cargo run -p erebor-train --features tch --example bench_preference -- --device tch-cpu
//! # The H100 benchmark of issue 5 (not run yet: no GPU lent to this session):
//! ... --model qwen2-0.5b --device cuda:0 --precision bf16 --pairs 8 --seq 512 --steps 10
//! ```
//! Options: `--model tiny10m|qwen2-0.5b`, `--device cpu|tch-cpu|cuda:N`,
//! `--precision f32|bf16|bf16-mixed`,
//! `--pairs N` (per optimizer step, one micro-batch), `--seq N` (tokens per sequence: half prompt,
//! half completion), `--steps N` (measured, after one warm-up step). Prints one JSON line, with
//! the memory estimate `erebor plan` gives a preference step of the same shape and precision
//! (to hold against the device's measured peak).
//! Tokens count both sequences of every pair, as in the issue's `PyTorch` baseline.

use burn::tensor::{DType, Device};
use erebor_core::{CancelToken, MemorySink, NullProgress};
use erebor_model::memory::{TrainingAttention, estimate_memory_with};
use erebor_model::{CausalLm, DeviceSpec, MemoryEstimate, ModelConfig, Trainable, training_device};
use erebor_train::batch::PairExample;
use erebor_train::losses::{PreferenceLossKind, PreferenceObjective};
use erebor_train::memory_plan::step_plan;
use erebor_train::optim::{AdamW, AdamWConfig};
use erebor_train::precision::Precision;
use erebor_train::preference::{PairObjective, PairUnit, reference_logps};
use erebor_train::schedule::{LrDecay, LrSchedule};
use erebor_train::trainer::{LoopSettings, train};
use rand::{RngExt, SeedableRng};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// The plan `erebor plan` makes for a preference step (`erebor_train::memory_plan::footprint`):
/// both sequences of every pair in one pass, full fine-tuning, `AdamW`'s two moments, the
/// attention path of `device`.
fn plan_memory(
    config: &ModelConfig,
    policy: Precision,
    pairs: usize,
    seq: usize,
    device: DeviceSpec,
) -> MemoryEstimate {
    estimate_memory_with(
        config,
        &step_plan(policy, Trainable::Full, 2 * pairs, seq, false),
        TrainingAttention::on_device(device),
    )
}

/// `count` random pairs of `seq` tokens each (half prompt, half completion), the rejected
/// completion one token off the chosen one.
fn random_pairs(vocab: u32, count: usize, seq: usize) -> Vec<PairExample> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut draw = |n: usize| {
        (0..n)
            .map(|_| rng.random_range(3..vocab))
            .collect::<Vec<u32>>()
    };
    (0..count)
        .map(|_| {
            let chosen = draw(seq - seq / 2);
            let mut rejected = chosen.clone();
            rejected[3] = (rejected[3] + 1) % vocab;
            PairExample {
                prompt_ids: draw(seq / 2),
                chosen_ids: chosen,
                rejected_ids: rejected,
            }
        })
        .collect()
}

/// The loop's settings: `total` steps of `pairs` pairs at a constant learning rate, no
/// checkpoints kept beyond one, no evaluation.
fn loop_settings<'a>(
    pairs: usize,
    total: u64,
    dtype: DType,
    device: Device,
    checkpoint_dir: &std::path::Path,
    sink: &'a MemorySink,
) -> LoopSettings<'a> {
    LoopSettings {
        batch_size: pairs,
        grad_accum: 1,
        total_steps: total,
        schedule: LrSchedule {
            peak: 1e-6,
            warmup_steps: 0,
            total_steps: total,
            decay: LrDecay::Constant,
        },
        optimizer: AdamW::new(AdamWConfig::default()),
        max_grad_norm: 1.0,
        seed: 0,
        checkpoint_every: None,
        keep_checkpoints: 1,
        eval_every: None,
        checkpoint_dir: checkpoint_dir.to_owned(),
        fingerprint: "bench".into(),
        precision: format!("{dtype:?}"),
        device,
        metrics: sink,
        progress: &NullProgress,
        cancel: CancelToken::new(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model_name = arg(&args, "--model", "tiny10m");
    let spec: DeviceSpec = arg(&args, "--device", "cpu").parse().expect("device");
    // f32; bf16 (weights and compute); bf16-mixed (f32 master weights, bf16 compute).
    let precision = arg(&args, "--precision", "f32");
    let (dtype, compute, policy) = match precision.as_str() {
        "bf16" => (DType::BF16, None, Precision::Bf16),
        "bf16-mixed" => (DType::F32, Some(DType::BF16), Precision::Bf16Mixed),
        _ => (DType::F32, None, Precision::F32),
    };
    let pairs: usize = arg(&args, "--pairs", "8").parse().expect("pairs");
    let seq: usize = arg(&args, "--seq", "256").parse().expect("seq");
    let steps: u64 = arg(&args, "--steps", "3").parse().expect("steps");
    // The shapes of erebor-model's `bench` example, so the two benchmarks compare.
    let config = ModelConfig::benchmark_shape(&model_name).expect("--model tiny10m|qwen2-0.5b");
    let device: Device = training_device(spec.device().expect("device compiled in"), false);
    let model = CausalLm::random(&config, 1, 0.02, &device, dtype);
    let estimate = plan_memory(&config, policy, pairs, seq, spec);

    let vocab = u32::try_from(config.vocab_size).expect("vocabulary size fits in u32");
    let total = steps + 1;
    let total_pairs = pairs * usize::try_from(total).expect("step count fits in usize");
    let examples = random_pairs(vocab, total_pairs, seq);
    let started = Instant::now();
    let refs =
        reference_logps(&model, &examples, pairs, compute, &NullProgress).expect("reference pass");
    let ref_seconds = started.elapsed().as_secs_f64();
    let units: Vec<PairUnit> = examples
        .into_iter()
        .zip(refs)
        .map(|(pair, (c, r))| PairUnit {
            pair,
            reference_chosen: c,
            reference_rejected: r,
        })
        .collect();
    let objective = PreferenceObjective {
        kind: PreferenceLossKind::Dpop,
        beta: 0.3,
        lambda: 50.0,
    };
    let mut objective = PairObjective::new(objective, Vec::new(), pairs);
    objective.compute_dtype = compute;
    let sink = MemorySink::new();
    let checkpoints = tempfile::tempdir().expect("temp dir");
    let settings = loop_settings(pairs, total, dtype, device, checkpoints.path(), &sink);
    train(model, &units, &mut objective, settings).expect("training");
    // Step 1 warms up (allocation, kernel selection); the measured steps follow.
    let rates: Vec<f64> = sink
        .series("train/tokens_per_second")
        .into_iter()
        .skip(1)
        .map(|(_, v)| v)
        .collect();
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let tokens_per_step = (2 * pairs * seq) as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "preference_step_dpop",
            "model": model_name,
            "parameters": config.num_parameters(),
            "device": spec.to_string(),
            "precision": precision,
            "pairs": pairs,
            "seq": seq,
            "measured_steps": rates.len(),
            "tokens_per_second": mean.round(),
            "ms_per_step": (1000.0 * tokens_per_step / mean).round(),
            "reference_pass_tokens_per_second": ((total_pairs * 2 * seq) as f64 / ref_seconds).round(),
            "memory_estimate_bytes": estimate.total(),
            "memory_estimate": estimate.to_string(),
        })
    );
}
