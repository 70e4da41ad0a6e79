"""Tiny transformers checkpoints with reference numbers for what the shared hf-tiny fixtures do not
cover: sliding-window attention (Mistral, and Qwen2's per-layer windows), Llama-3 RoPE scaling,
Llama's attention_bias, and preference pairs of unequal lengths in one padded batch.

Writes into OUT (default crates/erebor-model/tests/fixtures/hf-extra), one folder per case with
config.json + model.safetensors as transformers saves them and reference.json:

  mistral-sliding/   MistralForCausalLM, sliding_window 4 (< the 12- and 17-token prompts)
  qwen2-sliding/     Qwen2ForCausalLM, 3 layers, use_sliding_window, max_window_layers 1, window 4:
                     layer 0 full attention, layers 1-2 windowed
  llama3-rope/       LlamaForCausalLM, rope_type llama3 (factor 8, low 1, high 4, original 128):
                     its 4 frequencies (wavelengths 2pi*10000^(i/4): 6.3, 63, 628, 6283) fall in
                     all three bands (< 32 kept, 32..128 smoothed, > 128 divided by 8)
  llama3-rope.gguf   the llama3-rope model as llama.cpp's convert_hf_to_gguf.py writes it: llama.*
                     metadata, blk.N names, q/k rows permuted, and the scaling as a
                     `rope_freqs.weight` tensor of per-frequency divisors (its
                     LlamaModel.generate_extra_tensors), not as parameters
  llama-bias/        LlamaForCausalLM, attention_bias true (q/k/v/o biases, random, not zero)
  preference/        policy/ (the mistral-sliding model moved by noise) and, against mistral-sliding
                     as the reference model, three pairs whose prompts, chosen and rejected answers
                     all differ in length: per-sequence log-probs, DPO / DPOP / IPO / SLiC losses
                     and parameter gradients of each

Every model is float32 on CPU with eager attention (the reference implementation; sdpa is checked
to agree). Weights are drawn wider than transformers' default init (std 0.1, random biases, norm
weights around 1) so masking, RoPE or bias mistakes move the logits visibly.

Reference numbers in each reference.json:
  prompts[i].ids, prompts[i].logits (row-major [len, vocab]), prompts[i].greedy (8 greedy tokens
  from model.generate, with its KV cache).

Losses (beta 0.3, lambda 50), with d = (pc - rc) - (pr - rr), log-probs summed over completion tokens:
  dpo  = mean(-logsigmoid(beta*d))
  dpop = mean(-logsigmoid(beta*(d - lambda*relu(rc - pc))))     relu, as erebor (losses.rs)
  ipo  = mean((dn - 1/(2*beta))**2), dn the same difference of log-probs each divided by its
         completion length (TRL's DPOTrainer, loss_type="ipo")
  slic = mean(relu(1 - beta*d))

    .venv-eval/bin/python scripts/hf_extra_fixtures.py [OUT]
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/erebor-model/tests/fixtures/hf-extra"
VOCAB = 128
COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
              intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=256, rms_norm_eps=1e-6,
              tie_word_embeddings=False, initializer_range=0.1, bos_token_id=1, eos_token_id=2)
BETA, LAMBDA = 0.3, 50.0


def randomise(model, seed):
    """Wider weights than the default init, random biases, norm weights around 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def build(cls, cfg, seed):
    torch.manual_seed(seed)
    model = cls(cfg).float()
    return randomise(model, seed).eval()


def prompt_record(model, ids):
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x).logits[0].float()
        model.config._attn_implementation = "sdpa"
        sdpa = model(x).logits[0].float()
        model.config._attn_implementation = "eager"
        assert (sdpa - logits).abs().max() < 1e-4, "sdpa and eager disagree"
        greedy = model.generate(x, max_new_tokens=8, do_sample=False, pad_token_id=0,
                                eos_token_id=None)[0, len(ids):].tolist()
    return {"ids": ids, "logits": [round(v, 7) for v in logits.flatten().tolist()], "greedy": greedy,
            "argmax": logits.argmax(-1).tolist()}


def save_case(name, model, prompts, note):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    for extra in ["generation_config.json"]:
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    ref = {"case": name, "note": note, "dtype": "float32", "attention": "eager",
           "prompts": [prompt_record(model, p) for p in prompts],
           "transformers": transformers.__version__, "torch": torch.__version__}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "ok", [r["greedy"] for r in ref["prompts"]])
    return d


def ids(g, n):
    return torch.randint(3, VOCAB, (n,), generator=g).tolist()


def seq_logp(model, prompt, completion):
    x = torch.tensor([prompt + completion])
    logits = model(x).logits[0, :-1].float()
    lp = logits.log_softmax(-1).gather(1, x[0, 1:].unsqueeze(-1)).squeeze(-1)
    return lp[len(prompt) - 1:].sum()


def losses(pc, pr, rc, rr, nc, nr):
    d = (pc - rc) - (pr - rr)
    dn = (pc / nc - pr / nr) - (rc / nc - rr / nr)
    return {
        "dpo": -F.logsigmoid(BETA * d).mean(),
        "dpop": -F.logsigmoid(BETA * (d - LAMBDA * torch.relu(rc - pc))).mean(),
        "ipo": ((dn - 1 / (2 * BETA)) ** 2).mean(),
        "slic": torch.relu(1 - BETA * d).mean(),
    }


GRAD_PARAMS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
               "model.layers.1.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight",
               "model.norm.weight", "lm_head.weight"]


def preference_case(reference_dir, g):
    ref = MistralForCausalLM.from_pretrained(reference_dir, dtype=torch.float32).eval()
    # (prompt, chosen, rejected) lengths; pair 2's answers share their first two tokens
    shapes = [(5, 6, 9), (8, 4, 3), (3, 10, 7)]
    pairs = []
    for p, c, r in shapes:
        prompt, chosen, rejected = ids(g, p), ids(g, c), ids(g, r)
        pairs.append((prompt, chosen, rejected))
    pairs[2] = (pairs[2][0], pairs[2][1], pairs[2][1][:2] + pairs[2][2][2:])
    for seed in range(100):
        policy = MistralForCausalLM.from_pretrained(reference_dir, dtype=torch.float32).eval()
        noise = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            for p in policy.parameters():
                p.add_(0.03 * torch.randn(p.shape, generator=noise))
        with torch.no_grad():
            rc = torch.stack([seq_logp(ref, p, c) for p, c, _ in pairs])
            rr = torch.stack([seq_logp(ref, p, r) for p, _, r in pairs])
            pc0 = torch.stack([seq_logp(policy, p, c) for p, c, _ in pairs])
        active = (rc > pc0).tolist()
        if any(active) and not all(active):
            break
    else:
        raise SystemExit("no policy with a DPOP penalty active on some pairs only")
    d = os.path.join(OUT, "preference")
    os.makedirs(d, exist_ok=True)
    policy.save_pretrained(os.path.join(d, "policy"), safe_serialization=True)
    gen = os.path.join(d, "policy", "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    nc = torch.tensor([float(len(c)) for _, c, _ in pairs])
    nr = torch.tensor([float(len(r)) for _, _, r in pairs])
    pc = torch.stack([seq_logp(policy, p, c) for p, c, _ in pairs])
    pr = torch.stack([seq_logp(policy, p, r) for p, _, r in pairs])
    L = losses(pc, pr, rc, rr, nc, nr)
    params = dict(policy.named_parameters())
    grads = {}
    for name, loss in L.items():
        policy.zero_grad()
        loss.backward(retain_graph=True)
        emb = params["model.embed_tokens.weight"].grad
        grads[name] = {
            "norms": {p: params[p].grad.norm().item() for p in GRAD_PARAMS},
            "embed_row_sums": {str(t): emb[t].sum().item() for t in pairs[0][0][:3] + pairs[2][1][:2]},
            "q_proj_0_first_row": params["model.layers.0.self_attn.q_proj.weight"].grad[0, :8].tolist(),
        }
    ref_json = {
        "case": "preference", "reference_model": "../mistral-sliding", "policy_model": "policy",
        "pairs": [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs],
        "beta": BETA, "lambda": LAMBDA,
        "ref_chosen_logps": rc.tolist(), "ref_rejected_logps": rr.tolist(),
        "policy_chosen_logps": pc.tolist(), "policy_rejected_logps": pr.tolist(),
        "dpop_penalty_active": active,
        "losses": {k: v.item() for k, v in L.items()}, "grads": grads,
        "formulas": {"d": "(pc-rc)-(pr-rr)", "dpo": "mean(-logsigmoid(beta*d))",
                     "dpop": "mean(-logsigmoid(beta*(d - lambda*relu(rc-pc))))",
                     "ipo": "mean((dn - 1/(2*beta))**2), dn = (pc/nc - pr/nr) - (rc/nc - rr/nr), n = completion tokens",
                     "slic": "mean(relu(1 - beta*d))"},
        "note": "log-probs sum over completion tokens, each sequence computed alone (no padding); "
                "grads are of the mean loss over the three pairs",
        "transformers": transformers.__version__, "torch": torch.__version__,
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref_json, f, indent=1)
    print("preference ok", {k: round(v.item(), 5) for k, v in L.items()}, "penalty active", active)


def llama_cpp_permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(cfg):
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for rope_type llama3 (the
    original context length taken from the rope parameters, where this config keeps it)."""
    rope = cfg.rope_parameters
    base, dim = rope["rope_theta"], cfg.head_dim
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low_freq_factor, high_freq_factor = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context_len = rope["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    rope_factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            rope_factors.append(1)
        elif wavelen > low_freq_wavelen:
            rope_factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            rope_factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(rope_factors, dtype=torch.float32)


def write_llama_gguf(model, path):
    """A Llama as convert_hf_to_gguf.py writes it, all tensors F32."""
    import gguf
    cfg = model.config
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "model.layers.": "blk."}
    w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg).numpy())
    for name, t in model.state_dict().items():
        data = t.detach().float()
        if name.endswith("q_proj.weight"):
            data = llama_cpp_permute(data, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            data = llama_cpp_permute(data, cfg.num_key_value_heads)
        for hf, gg in names.items():
            name = name.replace(hf, gg)
        w.add_tensor(name, data.numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    g = torch.Generator().manual_seed(14)
    short, long_ = ids(g, 12), ids(g, 17)

    cfg = MistralConfig(**COMMON, sliding_window=4, attn_implementation="eager")
    mistral_dir = save_case("mistral-sliding", build(MistralForCausalLM, cfg, 1), [short, long_],
                            "sliding_window 4 on every layer, prompts of 12 and 17 tokens")

    cfg = Qwen2Config(**{**COMMON, "num_hidden_layers": 3}, use_sliding_window=True, max_window_layers=1,
                      sliding_window=4, attn_implementation="eager")
    assert cfg.layer_types == ["full_attention", "sliding_attention", "sliding_attention"], cfg.layer_types
    save_case("qwen2-sliding", build(Qwen2ForCausalLM, cfg, 2), [short, long_],
              "layer 0 full attention, layers 1 and 2 a window of 4")

    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 128}
    cfg = LlamaConfig(**COMMON, rope_parameters=rope, attn_implementation="eager")
    assert cfg.rope_parameters["rope_type"] == "llama3", cfg.rope_parameters
    wavelengths = [2 * math.pi * 10000.0 ** (2 * i / cfg.head_dim) for i in range(cfg.head_dim // 2)]
    bands = ["kept" if w < 128 / 4 else "scaled" if w > 128 / 1 else "smoothed" for w in wavelengths]
    assert bands == ["kept", "smoothed", "scaled", "scaled"], bands
    model = build(LlamaForCausalLM, cfg, 3)
    save_case("llama3-rope", model, [short, ids(g, 40)],
              "llama3 rope scaling; wavelengths 2pi*10000^(i/4): i=0 kept, i=1 smoothed, i>=2 divided by 8")
    write_llama_gguf(model, os.path.join(OUT, "llama3-rope.gguf"))

    cfg = LlamaConfig(**COMMON, attention_bias=True, attn_implementation="eager")
    model = build(LlamaForCausalLM, cfg, 4)
    assert model.model.layers[0].self_attn.o_proj.bias.abs().sum() > 0
    save_case("llama-bias", model, [short, long_], "attention_bias: q/k/v/o biases, random")

    preference_case(mistral_dir, g)


main()
