"""PyTorch eager DPOP step, the baseline beside erebor-train's `bench_preference` example.

A transformers model (sdpa attention, random init) of the same shape as erebor's benchmark model
(ModelConfig::benchmark_shape: `tiny10m` a Llama, `qwen2-0.5b` a Qwen2 with q/k/v bias and tied
embeddings, 494M parameters), a frozen copy as the live
reference model, chosen and rejected sequences in one forward, DPOP loss (beta 0.3, lambda 50),
backward, global-norm clipping at 1.0, AdamW (fused on CUDA). Tokens count both sequences.

    .venv/bin/python scripts/bench_dpop_torch.py tiny10m cpu f32 8 256 3
    python scripts/bench_dpop_torch.py qwen2-0.5b cuda bf16 8 512 10     # the issue's H100 setting

Arguments: model (tiny10m | qwen2-0.5b | a folder with a config.json: random weights of that
shape, as erebor-train's `bench_train_step --model DIR` makes them), device (cpu | cuda), dtype (f32 | bf16), pairs per
step, tokens per sequence (half prompt, half completion), measured steps (after one warm-up).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from transformers import (AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

name, device, dtype_name = sys.argv[1], sys.argv[2], sys.argv[3]
pairs, seq, steps = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
torch.manual_seed(1)
if name == "tiny10m":
    cfg = LlamaConfig(vocab_size=16384, hidden_size=256, intermediate_size=768, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True,
                      max_position_embeddings=4096)
    cls = LlamaForCausalLM
elif os.path.isdir(name):
    cfg = AutoConfig.from_pretrained(name)
    cls = AutoModelForCausalLM.from_config
else:  # erebor's qwen2-0.5b benchmark shape: Qwen2 (q/k/v bias), tied embeddings
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                      max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=10000.0,
                      use_sliding_window=False)
    cls = Qwen2ForCausalLM
cfg._attn_implementation = "sdpa"
policy = cls(cfg).to(device=device, dtype=dtype).train()
reference = cls(cfg).to(device=device, dtype=dtype).eval()
reference.load_state_dict(policy.state_dict())
for p in reference.parameters():
    p.requires_grad_(False)
params = sum(p.numel() for p in policy.parameters())
optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6, fused=(device == "cuda"))
prompt_len = seq // 2
g = torch.Generator().manual_seed(7)


def batch():
    chosen = torch.randint(3, cfg.vocab_size, (pairs, seq), generator=g)
    rejected = chosen.clone()
    rejected[:, prompt_len + 3] = (rejected[:, prompt_len + 3] + 1) % cfg.vocab_size
    return torch.cat([chosen, rejected]).to(device)


def logps(model, ids):
    logits = model(ids).logits[:, :-1].float()
    lp = logits.log_softmax(-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return lp[:, prompt_len - 1:].sum(-1)


def step(ids):
    with torch.no_grad():
        ref = logps(reference, ids)
    pol = logps(policy, ids)
    pc, pr, rc, rr = pol[:pairs], pol[pairs:], ref[:pairs], ref[pairs:]
    d = (pc - rc) - (pr - rr)
    loss = -F.logsigmoid(0.3 * (d - 50.0 * torch.clamp(rc - pc, min=0))).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


step(batch())
sync()
inputs = [batch() for _ in range(steps)]
t = time.time()
for ids in inputs:
    step(ids)
sync()
seconds = (time.time() - t) / steps
tokens = 2 * pairs * seq
print(json.dumps({"bench": "preference_step_dpop", "impl": "pytorch-eager", "model": name,
                  "parameters": params, "device": device, "dtype": dtype_name,
                  "threads": torch.get_num_threads(), "pairs": pairs, "seq": seq, "measured_steps": steps,
                  "ms_per_step": round(1000 * seconds, 1), "tokens_per_second": round(tokens / seconds)}))
