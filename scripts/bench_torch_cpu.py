"""PyTorch eager, the reference beside erebor's `bench` example: forward scoring and a training
step (forward + backward + AdamW) in tokens/s, same shapes and inputs. On the CPU by default; the
optional arguments run it on CUDA in bf16 for the GPU comparison (scripts/gpu-check.sh).

    .venv/bin/python scripts/bench_torch_cpu.py tiny10m
    .venv/bin/python scripts/bench_torch_cpu.py /tmp/smol-hf     # an HF folder
    python scripts/bench_torch_cpu.py qwen2-0.5b cuda bf16 8 512 10

Arguments: model (tiny10m | qwen2-0.5b | an HF folder), then optionally device (cpu | cuda),
dtype (f32 | bf16), batch, tokens per sequence, timed iterations (after one warm-up); defaults
cpu f32 4 256 3. `qwen2-0.5b` is erebor's benchmark shape (ModelConfig::benchmark_shape): Qwen2
with q/k/v bias, tied embeddings, random weights. AdamW is fused on CUDA. On CUDA the timing
synchronises the device and each line also gives torch's peak allocated and reserved memory.
"""
import json, sys, time
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

name = sys.argv[1]
device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
dtype_name = sys.argv[3] if len(sys.argv) > 3 else "f32"
batch, seq, iters = (int(a) for a in (sys.argv[4:7] if len(sys.argv) > 6 else (4, 256, 3)))
dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
torch.manual_seed(1)
if name == "tiny10m":
    cfg = LlamaConfig(vocab_size=16384, hidden_size=256, intermediate_size=768, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True,
                      max_position_embeddings=4096)
    model = LlamaForCausalLM(cfg)
elif name == "qwen2-0.5b":
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                      max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=10000.0,
                      use_sliding_window=False)
    cfg._attn_implementation = "sdpa"
    model = Qwen2ForCausalLM(cfg)
else:
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
model = model.to(device=device, dtype=dtype)
vocab = model.config.vocab_size
ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(b * seq, (b + 1) * seq)] for b in range(batch)],
                   device=device)
params = sum(p.numel() for p in model.parameters())


def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seq_logps(m):
    logits = m(ids).logits[:, :-1].float()
    return logits.log_softmax(-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1).sum(-1)


def report(what, secs):
    line = {"bench": what, "model": name, "params": params,
            "device": "torch-cpu-eager" if device == "cpu" else f"torch-{device}-eager",
            "dtype": dtype_name, "threads": torch.get_num_threads(), "batch": batch, "seq": seq,
            "iters": iters, "seconds_per_iter": round(secs / iters, 4),
            "tokens_per_s": round(batch * seq * iters / secs, 1)}
    if device.startswith("cuda"):
        line["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
        line["max_memory_reserved_bytes"] = torch.cuda.max_memory_reserved()
        torch.cuda.reset_peak_memory_stats()
    print(json.dumps(line))


model.eval()
with torch.no_grad():
    seq_logps(model)
    sync()
    t = time.time()
    for _ in range(iters):
        seq_logps(model)
    sync()
    report("forward_score", time.time() - t)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.startswith("cuda"))
def step():
    loss = -seq_logps(model).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
step()
sync()
t = time.time()
for _ in range(iters):
    step()
sync()
report("train_step", time.time() - t)
