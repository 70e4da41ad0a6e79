//! Peak memory of one forward + backward of the target log-probs at a large vocabulary: the
//! composed path (full logits, f32 log-softmax, gather) against the chunked one
//! (`logps::model_token_logps`). Run each under `/usr/bin/time -v` and read "Maximum resident
//! set size" (BENCHMARKS.md, "Target log-probs without full-vocabulary logits").
//!
//! ```sh
//! cargo run --release -p erebor-train --example logps_memory -- --path chunked
//! /usr/bin/time -v target/release/examples/logps_memory --path composed --rows 8 --seq 512
//! ```
//! Options: `--path composed|chunked`, `--rows N`, `--seq N`, `--vocab N` (151936, Qwen2's),
//! `--hidden N` (64), `--layers N` (1), `--device cpu|tch-cpu`. The model is a random Qwen2
//! shape with tied embeddings, small apart from its vocabulary, so the logits dominate.
//! Prints one JSON line with the loss and the seconds taken.

use burn::tensor::DType;
use erebor_model::{Architecture, CausalLm, DecoderDims, DeviceSpec, ModelConfig};
use erebor_train::batch::TokenBatch;
use erebor_train::logps::{BatchTensors, forward_logits, model_token_logps, token_logps};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn number(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name, &default.to_string())
        .parse()
        .unwrap_or_else(|_| panic!("{name} takes a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = arg(&args, "--path", "chunked");
    let (rows, seq) = (number(&args, "--rows", 8), number(&args, "--seq", 512));
    let vocab = number(&args, "--vocab", 151_936);
    let hidden = number(&args, "--hidden", 64);
    let spec: DeviceSpec = arg(&args, "--device", "cpu").parse().expect("device");
    let device = spec.device().expect("device").autodiff();
    let dims = DecoderDims {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: hidden * 3,
        num_layers: number(&args, "--layers", 1),
        num_heads: 4,
        num_kv_heads: 2,
    };
    let config = ModelConfig::synthetic(Architecture::Qwen2, dims, true);
    let model = CausalLm::random(&config, 1, 0.02, &device, DType::F32);
    let vocab_u32 = u32::try_from(vocab).expect("--vocab fits in u32");
    let ids: Vec<u32> = (0..rows * seq)
        .map(|i| u32::try_from((i * 7_919 + 13) % vocab).expect("below the vocabulary size"))
        .collect();
    let batch = TokenBatch {
        rows,
        seq_len: seq,
        targets: ids.iter().map(|id| (id + 1) % vocab_u32).collect(),
        loss_mask: vec![1.0; rows * seq],
        input_ids: ids,
        position_ids: None,
        segment_ids: None,
        real_tokens: rows * seq,
    };
    let tensors = BatchTensors::new(&batch, &device);
    let start = Instant::now();
    let logps = match path.as_str() {
        "composed" => token_logps(
            forward_logits(&model, &batch, &tensors).expect("forward"),
            tensors.targets.clone(),
        ),
        "chunked" => model_token_logps(&model, &batch, &tensors).expect("forward"),
        other => panic!("--path composed|chunked, not {other}"),
    };
    let loss = (logps * tensors.mask.clone())
        .sum()
        .neg()
        .div_scalar((rows * seq) as f64);
    let value = loss.clone().into_scalar::<f32>();
    let grads = loss.backward();
    let embed = model
        .embed_tokens
        .val()
        .grad(&grads)
        .expect("embedding gradient");
    let norm = embed.square().sum().sqrt().into_scalar::<f32>();
    println!(
        "{{\"path\":\"{path}\",\"rows\":{rows},\"seq\":{seq},\"vocab\":{vocab},\"loss\":{value},\"embed_grad_norm\":{norm},\"seconds\":{:.2}}}",
        start.elapsed().as_secs_f64()
    );
}
