//! `Scorer::forward_tokens` and `Scorer::unshared_forward_tokens`: the token counts the
//! evaluator reports, checked against hand-computed totals on a small random model, and the
//! shared and unshared paths giving the same scores.

use burn::tensor::DType;
use erebor_model::{
    Architecture, CausalLm, DecoderDims, LoglikelihoodRequest, ModelConfig, Scorer, ScorerOptions,
};

fn model() -> CausalLm {
    let dims = DecoderDims {
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
    };
    let mut config = ModelConfig::synthetic(Architecture::Llama, dims, true);
    config.max_position_embeddings = 16;
    let device = erebor_model::DeviceSpec::Cpu.device().unwrap();
    CausalLm::random(&config, 7, 0.02, &device, DType::F32)
}

fn request(context: &[u32], continuation: &[u32]) -> LoglikelihoodRequest {
    LoglikelihoodRequest {
        context: context.to_vec(),
        continuation: continuation.to_vec(),
    }
}

#[test]
fn forward_tokens_count_a_shared_context_once() {
    let model = model();
    let context = [5, 6, 7, 8, 9, 10];
    let requests = vec![
        request(&context, &[11]),
        request(&context, &[12, 13]),
        request(&context, &[14, 15, 16]),
        // Alone: 2 + 2 - 1 = 3 tokens either way.
        request(&[20, 21], &[22, 23]),
        // 14 + 4 = 18 > 16 + 1: truncated to 17 inputs, 16 forwarded, never shared.
        request(&[1; 14], &[2, 3, 4, 5]),
    ];
    let shared = Scorer::new(&model, ScorerOptions::for_model(&model));
    let unshared = Scorer::new(
        &model,
        ScorerOptions {
            share_contexts: false,
            ..ScorerOptions::for_model(&model)
        },
    );
    // Unshared: (6+1-1) + (6+2-1) + (6+3-1) + 3 + 16 = 6 + 7 + 8 + 3 + 16.
    assert_eq!(shared.unshared_forward_tokens(&requests), 40);
    let a = shared.loglikelihood(&requests).unwrap();
    let b = unshared.loglikelihood(&requests).unwrap();
    assert_eq!(unshared.forward_tokens(), 40);
    // Shared: the context minus its last token once (5), then rows of 1 + (len - 1) tokens
    // (1, 2, 3), then the two plain requests (3 + 16).
    assert_eq!(shared.forward_tokens(), 5 + 1 + 2 + 3 + 3 + 16);
    for (x, y) in a.iter().zip(&b) {
        assert!((x.logprob - y.logprob).abs() < 1e-5, "{x:?} vs {y:?}");
        assert_eq!(x.is_greedy, y.is_greedy);
    }
    assert!(a[4].truncated && !a[0].truncated);
}
