//! Time of the `AdamW` step alone, the composed update (Burn tensor ops) against the fastest one
//! the backend has (in-place torch ops on LibTorch), on a model of a benchmark shape with random
//! gradients, and how far apart the two leave the weights.
//!
//! ```sh
//! cargo run -p erebor-train --example bench_adamw -- --model tiny10m --device cpu
//! # LibTorch CPU (the environment of scripts/tch-cpu-check.sh):
//! CARGO_TARGET_DIR=target/tch cargo run -p erebor-train --features tch --example bench_adamw -- --device tch-cpu
//! ```
//! Options: `--model tiny10m|qwen2-0.5b|DIR` (a benchmark shape, or a folder with a config.json:
//! random weights of that shape), `--device cpu|tch-cpu|cuda:N`, `--precision f32|bf16`,
//! `--steps N` (measured, after one warm-up step), `--weight-decay X` (default 0.01).
//! Prints one JSON line: milliseconds per step (median and mean) of each update, and the largest
//! difference of the final weights relative to the largest weight.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Distribution, Tensor};
use erebor_model::{CausalLm, DeviceSpec, ModelConfig, training_device};
use erebor_train::optim::{AdamW, AdamWConfig, AdamWUpdate};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// Random gradients (normal, σ = 1e-3, in the parameter's dtype) for every float parameter,
/// the same for the same device seed.
struct RandomGrads<'a> {
    device: &'a Device,
    grads: GradientsParams,
}

impl ModuleVisitor for RandomGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let grad = Tensor::<D>::random(value.shape(), Distribution::Normal(0.0, 1e-3), self.device)
            .cast(value.dtype());
        self.grads.register::<D>(param.id, grad);
    }
}

/// Every float parameter's values, flattened in visiting order, as f32.
struct Flatten(Vec<f32>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data().convert::<f32>();
        self.0
            .extend(values.as_slice::<f32>().expect("converted to f32"));
    }
}

/// Reads one element of the first parameter, so that an asynchronous device has finished the
/// step before the clock stops.
struct Sync(bool);

impl ModuleVisitor for Sync {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.0 {
            let value = param.val();
            let numel = value.shape().num_elements();
            let _ = value.reshape([numel]).narrow(0, 0, 1).into_scalar::<f32>();
            self.0 = true;
        }
    }
}

/// Runs `steps + 1` optimizer steps with `update`; returns the measured seconds (warm-up
/// dropped) and the final weights.
fn run(
    config: &ModelConfig,
    spec: DeviceSpec,
    dtype: DType,
    update: AdamWUpdate,
    steps: u64,
    weight_decay: f64,
) -> (Vec<f64>, Vec<f32>) {
    let base = spec.device().expect("device compiled in");
    let device = training_device(base.clone(), false);
    let mut model = CausalLm::random(config, 1, 0.02, &device, dtype);
    let mut adamw = AdamW::new(AdamWConfig {
        weight_decay,
        ..AdamWConfig::default()
    })
    .with_update(update);
    let mut seconds = Vec::new();
    for step in 0..=steps {
        base.seed(step);
        let mut visitor = RandomGrads {
            device: &base,
            grads: GradientsParams::new(),
        };
        model.visit(&mut visitor);
        let mut grads = visitor.grads;
        model.visit(&mut Sync(false));
        let started = Instant::now();
        model = adamw.step(model, &mut grads, 1e-4);
        model.visit(&mut Sync(false));
        if step > 0 {
            seconds.push(started.elapsed().as_secs_f64());
        }
    }
    let mut flat = Flatten(Vec::new());
    model.visit(&mut flat);
    (seconds, flat.0)
}

fn median_ms(seconds: &[f64]) -> f64 {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    (1e4 * sorted[sorted.len() / 2]).round() / 10.0
}

fn mean_ms(seconds: &[f64]) -> f64 {
    (1e4 * seconds.iter().sum::<f64>() / seconds.len() as f64).round() / 10.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model_name = arg(&args, "--model", "tiny10m");
    let spec: DeviceSpec = arg(&args, "--device", "cpu").parse().expect("device");
    let precision = arg(&args, "--precision", "f32");
    let dtype = if precision == "bf16" {
        DType::BF16
    } else {
        DType::F32
    };
    let steps: u64 = arg(&args, "--steps", "10").parse().expect("steps");
    let weight_decay: f64 = arg(&args, "--weight-decay", "0.01")
        .parse()
        .expect("weight decay");
    let config = ModelConfig::benchmark_shape(&model_name).unwrap_or_else(|| {
        ModelConfig::from_dir(&model_name).expect("--model tiny10m|qwen2-0.5b|DIR with config.json")
    });
    let (composed, composed_weights) = run(
        &config,
        spec,
        dtype,
        AdamWUpdate::Composed,
        steps,
        weight_decay,
    );
    let (fastest, fastest_weights) = run(
        &config,
        spec,
        dtype,
        AdamWUpdate::Fastest,
        steps,
        weight_decay,
    );
    let scale = composed_weights.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = composed_weights
        .iter()
        .zip(&fastest_weights)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    println!(
        "{}",
        serde_json::json!({
            "bench": "adamw_step",
            "model": model_name,
            "parameters": config.num_parameters(),
            "device": spec.to_string(),
            "precision": precision,
            "weight_decay": weight_decay,
            "measured_steps": steps,
            "composed_ms_median": median_ms(&composed),
            "composed_ms_mean": mean_ms(&composed),
            "fastest_ms_median": median_ms(&fastest),
            "fastest_ms_mean": mean_ms(&fastest),
            "max_weight_difference_relative": f64::from(diff) / f64::from(scale),
        })
    );
}
