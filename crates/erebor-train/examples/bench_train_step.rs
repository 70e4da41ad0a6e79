//! Throughput and peak memory of erebor's training steps, as the trainer runs them (erebor's
//! `train` loop: chunked target log-probs, global-norm clipping at 1.0, erebor's `AdamW`), beside
//! the estimate `erebor plan` gives the same shape
//! ([`erebor_train::memory_plan::step_plan`] with the device's attention path). Memory is the
//! process's peak resident set (Linux `VmHWM`) minus its resident set before the model is made.
//!
//! ```sh
//! cargo run -p erebor-train --example bench_train_step -- --step dpop --model tiny10m --device cpu
//! # LibTorch CPU (the environment of scripts/tch-cpu-check.sh):
//! CARGO_TARGET_DIR=target/tch cargo run -p erebor-train --features tch --example bench_train_step -- \
//!   --step lm --model /tmp/smol-hf --device tch-cpu --rows 4 --seq 256 --steps 4
//! ```
//! Options: `--step lm|dpop` (an SFT step over every token of unpadded rows, or a DPOP step with
//! its reference pre-pass), `--model tiny10m|qwen2-0.5b|DIR` (a benchmark shape, or a folder with
//! a config.json: random weights of that shape), `--device cpu|tch-cpu|cuda:N`,
//! `--precision f32|bf16|bf16-mixed`, `--rows N` (sequences per step: LM rows, or 2 × pairs),
//! `--seq N`, `--steps N` (optimizer steps, default 2: the second runs with the moments the first
//! made; throughput is the mean over every step after the first), `--checkpointing`,
//! `--attention fused|composed` and `--update fastest|composed` (on LibTorch: torch's SDPA and the
//! in-place `AdamW`, the defaults, or the composed Burn ops they replace). Prints one JSON line.
//! For DPOP, `ms_per_step_with_reference` adds the reference pre-pass's time per step (the
//! pre-pass scores every pair once per epoch; here the pairs are one epoch of `steps` steps).
//! On CUDA the resident set is the host's; read the device's peak with NVML beside it.

use burn::tensor::{DType, Device};
use erebor_core::{CancelToken, MemorySink, NullProgress};
use erebor_model::memory::{TrainingAttention, estimate_memory_with};
use erebor_model::model::{AttentionPath, with_attention_path};
use erebor_model::{CausalLm, DeviceSpec, ModelConfig, Trainable};
use erebor_train::TrainError;
use erebor_train::batch::{PairExample, SftExample, sft_batch};
use erebor_train::logps::{BatchTensors, compute_view, model_token_logps};
use erebor_train::losses::{PreferenceLossKind, PreferenceObjective};
use erebor_train::memory_plan::step_plan;
use erebor_train::optim::{AdamW, AdamWConfig, AdamWUpdate};
use erebor_train::precision::Precision;
use erebor_train::preference::{PairObjective, PairUnit, reference_logps};
use erebor_train::schedule::{LrDecay, LrSchedule};
use erebor_train::trainer::{LoopSettings, MicroBatch, Objective, train};
use rand::{RngExt, SeedableRng};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// A `kB` field of /proc/self/status in bytes (`VmRSS`: now; `VmHWM`: the peak so far).
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Token cross-entropy over every position of every row: erebor's SFT objective (chunked target
/// log-probs) on unpadded rows.
struct LmObjective {
    compute_dtype: Option<DType>,
}

impl Objective for LmObjective {
    type Unit = SftExample;

    fn weight(&self, unit: &SftExample) -> f64 {
        (unit.input_ids.len() - 1) as f64
    }

    fn micro_batch(
        &mut self,
        model: &CausalLm,
        units: &[&SftExample],
        denominator: f64,
    ) -> Result<MicroBatch, TrainError> {
        let batch = sft_batch(units, 8);
        let tensors = BatchTensors::new(&batch, &model.device());
        let cast = compute_view(model, self.compute_dtype);
        let logps = model_token_logps(cast.as_ref().unwrap_or(model), &batch, &tensors)?;
        let loss = (logps * tensors.mask).sum().neg().div_scalar(denominator);
        Ok(MicroBatch {
            loss,
            tokens: batch.real_tokens,
        })
    }

    fn take_step_metrics(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    fn evaluate(&mut self, _model: &CausalLm) -> Result<Vec<(String, f64)>, TrainError> {
        Ok(Vec::new())
    }
}

/// The loop's settings: `total` steps of `batch` units at a constant learning rate.
fn loop_settings<'a>(
    batch: usize,
    total: u64,
    run: &Run,
    checkpoint_dir: &std::path::Path,
    sink: &'a MemorySink,
) -> LoopSettings<'a> {
    LoopSettings {
        batch_size: batch,
        grad_accum: 1,
        total_steps: total,
        schedule: LrSchedule {
            peak: 1e-6,
            warmup_steps: 0,
            total_steps: total,
            decay: LrDecay::Constant,
        },
        optimizer: AdamW::new(AdamWConfig::default()).with_update(run.update),
        max_grad_norm: 1.0,
        seed: 0,
        // No checkpoint before the end: a save reads every tensor back to the host.
        checkpoint_every: None,
        keep_checkpoints: 1,
        eval_every: None,
        checkpoint_dir: checkpoint_dir.to_owned(),
        fingerprint: "bench-train-step".into(),
        precision: "measured".into(),
        device: run.device.clone(),
        metrics: sink,
        progress: &NullProgress,
        cancel: CancelToken::new(),
    }
}

/// `count` random token sequences of `len`, ids in `3..vocab`.
fn draw(rng: &mut rand_chacha::ChaCha8Rng, vocab: u32, len: usize) -> Vec<u32> {
    (0..len).map(|_| rng.random_range(3..vocab)).collect()
}

/// Runs `steps` LM steps of `rows` rows of `seq` tokens.
fn run_lm(model: CausalLm, vocab: u32, rows: usize, seq: usize, steps: u64, run: &Run) -> Timing {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let total = rows * usize::try_from(steps).expect("steps fit in usize");
    let units: Vec<SftExample> = (0..total)
        .map(|_| SftExample {
            input_ids: draw(&mut rng, vocab, seq),
            is_target: vec![true; seq],
        })
        .collect();
    let mut objective = LmObjective {
        compute_dtype: run.compute,
    };
    let sink = MemorySink::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = loop_settings(rows, steps, run, dir.path(), &sink);
    train(model, &units, &mut objective, settings).expect("training");
    Timing::from_sink(&sink, 0.0)
}

/// Runs the reference pre-pass and `steps` DPOP steps of `rows / 2` pairs of `seq` tokens.
fn run_dpop(model: CausalLm, vocab: u32, rows: usize, seq: usize, steps: u64, run: &Run) -> Timing {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let pairs = rows / 2;
    let total = pairs * usize::try_from(steps).expect("steps fit in usize");
    let examples: Vec<PairExample> = (0..total)
        .map(|_| {
            let prompt_ids = draw(&mut rng, vocab, seq / 2);
            let chosen = draw(&mut rng, vocab, seq - seq / 2);
            let mut rejected = chosen.clone();
            rejected[3] = (rejected[3] + 1) % vocab;
            PairExample {
                prompt_ids,
                chosen_ids: chosen,
                rejected_ids: rejected,
            }
        })
        .collect();
    let started = Instant::now();
    let refs = reference_logps(&model, &examples, pairs, run.compute, &NullProgress)
        .expect("reference pass");
    let reference_seconds = started.elapsed().as_secs_f64();
    let reference_peak = status_bytes("VmHWM").expect("/proc/self/status (Linux)");
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
    objective.compute_dtype = run.compute;
    let sink = MemorySink::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = loop_settings(pairs, steps, run, dir.path(), &sink);
    train(model, &units, &mut objective, settings).expect("training");
    Timing {
        reference_peak_bytes: Some(reference_peak.saturating_sub(run.rss_before)),
        ..Timing::from_sink(&sink, reference_seconds)
    }
}

/// What a run's steps took.
struct Timing {
    /// Tokens per second of each step after the first (which warms up allocation and kernels).
    rates: Vec<f64>,
    /// The reference pre-pass over every pair (0 for LM steps).
    reference_seconds: f64,
    /// The peak resident set when the pre-pass ended, less the baseline (DPOP only).
    reference_peak_bytes: Option<u64>,
}

impl Timing {
    fn from_sink(sink: &MemorySink, reference_seconds: f64) -> Self {
        let rates = sink
            .series("train/tokens_per_second")
            .into_iter()
            .skip(1)
            .map(|(_, v)| v)
            .collect();
        Self {
            rates,
            reference_seconds,
            reference_peak_bytes: None,
        }
    }

    /// The mean of the measured steps' rates (0 with a single step).
    fn tokens_per_second(&self) -> f64 {
        self.rates.iter().sum::<f64>() / self.rates.len().max(1) as f64
    }
}

/// The device, compute dtype and optimizer implementation of a run, and the resident set
/// before the model was made.
struct Run {
    rss_before: u64,
    device: Device,
    compute: Option<DType>,
    update: AdamWUpdate,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let step = arg(&args, "--step", "dpop");
    let model_name = arg(&args, "--model", "tiny10m");
    let spec: DeviceSpec = arg(&args, "--device", "cpu").parse().expect("device");
    let precision = arg(&args, "--precision", "f32");
    let (dtype, compute, policy) = match precision.as_str() {
        "bf16" => (DType::BF16, None, Precision::Bf16),
        "bf16-mixed" => (DType::F32, Some(DType::BF16), Precision::Bf16Mixed),
        _ => (DType::F32, None, Precision::F32),
    };
    let rows: usize = arg(&args, "--rows", "16").parse().expect("rows");
    let seq: usize = arg(&args, "--seq", "256").parse().expect("seq");
    let steps: u64 = arg(&args, "--steps", "2").parse().expect("steps");
    let checkpointing = args.iter().any(|a| a == "--checkpointing");
    let config = ModelConfig::benchmark_shape(&model_name).unwrap_or_else(|| {
        ModelConfig::from_dir(&model_name).expect("--model tiny10m|qwen2-0.5b|DIR with config.json")
    });
    let plan = step_plan(policy, Trainable::Full, rows, seq, checkpointing);
    let estimate = estimate_memory_with(&config, &plan, TrainingAttention::on_device(spec));

    let base = spec.device().expect("device compiled in");
    let device = if checkpointing {
        base.autodiff().gradient_checkpointing()
    } else {
        base.autodiff()
    };
    // The backend's own start-up (LibTorch's thread pools) before the baseline.
    let _warm = burn::tensor::Tensor::<1>::zeros([1], &device);
    let before = status_bytes("VmRSS").expect("/proc/self/status (Linux)");
    let model = CausalLm::random(&config, 1, 0.02, &device, dtype);
    let vocab = u32::try_from(config.vocab_size).expect("vocabulary size fits in u32");
    let update = match arg(&args, "--update", "fastest").as_str() {
        "composed" => AdamWUpdate::Composed,
        _ => AdamWUpdate::Fastest,
    };
    let attention = match arg(&args, "--attention", "fused").as_str() {
        "composed" => AttentionPath::Composed,
        _ => AttentionPath::Fused,
    };
    let run = Run {
        rss_before: before,
        device,
        compute,
        update,
    };
    let timing = with_attention_path(attention, || match step.as_str() {
        "lm" => run_lm(model, vocab, rows, seq, steps, &run),
        _ => run_dpop(model, vocab, rows, seq, steps, &run),
    });
    let tokens_per_step = (rows * seq) as f64;
    let peak = status_bytes("VmHWM").expect("/proc/self/status (Linux)");
    let measured = peak.saturating_sub(before);
    println!(
        "{}",
        serde_json::json!({
            "bench": "train_step",
            "step": step,
            "model": model_name,
            "parameters": config.num_parameters(),
            "device": spec.to_string(),
            "precision": precision,
            "rows": rows,
            "seq": seq,
            "steps": steps,
            "gradient_checkpointing": checkpointing,
            "attention": arg(&args, "--attention", "fused"),
            "update": arg(&args, "--update", "fastest"),
            "measured_steps": timing.rates.len(),
            "tokens_per_second": timing.tokens_per_second().round(),
            "ms_per_step": (1000.0 * tokens_per_step / timing.tokens_per_second()).round(),
            "reference_pass_peak_bytes": timing.reference_peak_bytes,
            "reference_pass_seconds": (timing.reference_seconds * 1000.0).round() / 1000.0,
            "ms_per_step_with_reference": (1000.0 * tokens_per_step / timing.tokens_per_second()
                + 1000.0 * timing.reference_seconds / steps as f64).round(),
            "rss_before_bytes": before,
            "peak_rss_bytes": peak,
            "measured_bytes": measured,
            "estimate_bytes": estimate.total(),
            "estimate": estimate.to_string(),
            "estimate_over_measured": (estimate.total() as f64 / measured as f64 * 1000.0).round() / 1000.0,
        })
    );
}
