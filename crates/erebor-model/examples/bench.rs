//! Throughput of forward scoring and of a training step (forward + backward + `AdamW`) in tokens/s.
//!
//! ```sh
//! cargo run -p erebor-model --example bench -- --model tiny10m --device cpu
//! cargo run -p erebor-model --example bench -- --model ../shared/models/smollm2-135m-instruct --device cpu
//! ```
//! Options: `--model tiny10m|qwen2-0.5b|PATH` (a checkpoint folder or GGUF; `qwen2-0.5b` is a
//! random model of Qwen2-0.5B's shape), `--device cpu|tch-cpu|cuda:N`, `--dtype f32|bf16|f16`,
//! `--batch N`, `--seq N`, `--iters N`, `--skip-train`, `--skip-forward`,
//! `--checkpointing`, `--attention fused|composed` (on LibTorch: torch's SDPA, the default, or
//! attention composed from Burn's ops as before the fused path; no effect on other backends). Prints one JSON line per measurement, each after a line with
//! [`estimate_memory`]'s estimate for the same shape (Burn's `AdamW` keeps its two moments in the
//! weights' dtype), to hold against the device's measured peak.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use erebor_model::device::parse_dtype;
use erebor_model::model::{AttentionPath, with_attention_path};
use erebor_model::{
    CausalLm, Checkpoint, DeviceSpec, MemoryPlan, ModelConfig, Trainable, estimate_memory,
    sequence_logprobs, training_device,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A random model of a named benchmark shape, or a checkpoint folder or GGUF file.
fn load(name: &str, device: &Device, dtype: DType) -> CausalLm {
    if let Some(config) = ModelConfig::benchmark_shape(name) {
        return CausalLm::random(&config, 1, 0.02, device, dtype);
    }
    Checkpoint::load(name, device, dtype)
        .expect("checkpoint")
        .model
}

fn ids(batch: usize, seq: usize, vocab: usize, device: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = (0..batch * seq)
        .map(|i| {
            i64::try_from((i * 7919 + 13) % vocab)
                .expect("a token id below the vocabulary size fits in i64")
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [batch, seq]), device)
}

/// Prints erebor-model's memory estimate of one measurement as a JSON line.
fn print_estimate(what: &str, config: &ModelConfig, plan: &MemoryPlan) {
    let estimate = estimate_memory(config, plan);
    println!(
        "{{\"memory_estimate\": \"{what}\", \"total_bytes\": {}, \"parts\": \"{estimate}\"}}",
        estimate.total()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = match arg(&args, "--attention").as_deref() {
        None | Some("fused") => AttentionPath::Fused,
        Some("composed") => AttentionPath::Composed,
        Some(other) => panic!("--attention {other}: use fused or composed"),
    };
    with_attention_path(path, || bench(&args, path));
}

/// Runs the measurements `args` ask for, attention on `path`.
fn bench(args: &[String], path: AttentionPath) {
    let model_name = arg(args, "--model").unwrap_or_else(|| "tiny10m".into());
    let device_name = arg(args, "--device").unwrap_or_else(|| "cpu".into());
    let spec: DeviceSpec = device_name.parse().expect("--device");
    let dtype =
        arg(args, "--dtype").map_or(spec.default_dtype(), |d| parse_dtype(&d).expect("--dtype"));
    let batch: usize = arg(args, "--batch").map_or(4, |v| v.parse().unwrap());
    let seq: usize = arg(args, "--seq").map_or(256, |v| v.parse().unwrap());
    let iters: usize = arg(args, "--iters").map_or(3, |v| v.parse().unwrap());
    let checkpointing = args.iter().any(|a| a == "--checkpointing");
    let base = spec.device().expect("device");
    let dtype_bytes = dtype.size();
    let plan = |trainable: Trainable| MemoryPlan {
        weight_bytes: dtype_bytes,
        compute_bytes: dtype_bytes,
        master_bytes: dtype_bytes,
        optimizer_bytes: 2 * dtype_bytes,
        trainable,
        batch_size: batch,
        seq_len: seq,
        gradient_checkpointing: checkpointing,
    };
    let report = |what: &str, params: usize, secs: f64| {
        let tokens = (batch * seq * iters) as f64;
        println!(
            "{{\"bench\": \"{what}\", \"model\": \"{model_name}\", \"params\": {params}, \"device\": \"{device_name}\", \
             \"dtype\": \"{dtype:?}\", \"attention\": \"{path:?}\", \"batch\": {batch}, \"seq\": {seq}, \"iters\": {iters}, \
             \"seconds_per_iter\": {:.4}, \"tokens_per_s\": {:.1}}}",
            secs / iters as f64,
            tokens / secs
        );
    };

    if !args.iter().any(|a| a == "--skip-forward") {
        let model = load(&model_name, &base, dtype);
        let params = model.config().num_parameters();
        let vocab = model.config().vocab_size;
        let input = ids(batch, seq, vocab, &base);
        let mask = Tensor::<2>::ones([batch, seq], &base);
        print_estimate("forward_score", model.config(), &plan(Trainable::Nothing));
        let run = || {
            let lp = sequence_logprobs(model.forward(input.clone()), input.clone(), mask.clone());
            lp.into_data().try_into_vec_as::<f32>().expect("scores")
        };
        run();
        let t = Instant::now();
        for _ in 0..iters {
            run();
        }
        report("forward_score", params, t.elapsed().as_secs_f64());
    }

    if !args.iter().any(|a| a == "--skip-train") {
        let device = training_device(base, checkpointing);
        let mut model = load(&model_name, &device, dtype);
        let params = model.config().num_parameters();
        let vocab = model.config().vocab_size;
        let input = ids(batch, seq, vocab, &device);
        let mask = Tensor::<2>::ones([batch, seq], &device);
        print_estimate("train_step", model.config(), &plan(Trainable::Full));
        let mut optim = AdamWConfig::new().init();
        let mut step = |model: CausalLm| {
            let loss = sequence_logprobs(model.forward(input.clone()), input.clone(), mask.clone())
                .mean()
                .neg();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optim.step(1e-4, model, grads);
            model.embed_tokens.val().narrow(0, 0, 1).into_data();
            model
        };
        model = step(model);
        let t = Instant::now();
        for _ in 0..iters {
            model = step(model);
        }
        let label = if checkpointing {
            "train_step_checkpointed"
        } else {
            "train_step"
        };
        report(label, params, t.elapsed().as_secs_f64());
    }
}
