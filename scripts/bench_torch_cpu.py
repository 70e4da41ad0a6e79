"""PyTorch eager on the CPU, the reference beside erebor's `bench` example: forward scoring and
a training step (forward + backward + AdamW) in tokens/s, same shapes and inputs.

    .venv/bin/python scripts/bench_torch_cpu.py tiny10m
    .venv/bin/python scripts/bench_torch_cpu.py /tmp/smol-hf     # an HF folder
"""
import json, sys, time
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

name = sys.argv[1]
batch, seq, iters = 4, 256, 3
torch.manual_seed(1)
if name == "tiny10m":
    cfg = LlamaConfig(vocab_size=16384, hidden_size=256, intermediate_size=768, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True,
                      max_position_embeddings=4096)
    model = LlamaForCausalLM(cfg).float()
else:
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
vocab = model.config.vocab_size
ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(b * seq, (b + 1) * seq)] for b in range(batch)])
params = sum(p.numel() for p in model.parameters())

def seq_logps(m):
    logits = m(ids).logits[:, :-1].float()
    return logits.log_softmax(-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1).sum(-1)

def report(what, secs):
    print(json.dumps({"bench": what, "model": name, "params": params, "device": "torch-cpu-eager",
                      "threads": torch.get_num_threads(), "batch": batch, "seq": seq, "iters": iters,
                      "seconds_per_iter": round(secs / iters, 4), "tokens_per_s": round(batch * seq * iters / secs, 1)}))

model.eval()
with torch.no_grad():
    seq_logps(model)
    t = time.time()
    for _ in range(iters):
        seq_logps(model)
    report("forward_score", time.time() - t)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
def step():
    loss = -seq_logps(model).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
step()
t = time.time()
for _ in range(iters):
    step()
report("train_step", time.time() - t)
