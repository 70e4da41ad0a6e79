"""Serving benchmark for `erebor model serve` (issue 12): 1, 4 and 8 concurrent streaming
clients on 127.0.0.1, each sending a bounded number of chat requests; aggregate tokens/s, time
to first token, per-token latency p50/p99. In the same run: transformers' `generate` on the
same chat prompt (one sequence, greedy, same max_new_tokens) for the one-client comparison.

Usage (from the repository root, the evaluation venv):
  .venv-eval/bin/python scripts/serve_bench.py --erebor target/debug/erebor \
      --gguf ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time


PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    i = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[i]


def one_request(host, port, model, max_tokens):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}],
                       "temperature": 0, "max_tokens": max_tokens, "stream": True,
                       "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(host, port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    first, last, gaps, tokens = None, None, [], 0
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            if first is None:
                first = now - start
            else:
                gaps.append(now - last)
            last = now
    conn.close()
    return first, gaps, tokens


def level(base, model, clients, requests_each, max_tokens):
    host, port = base.removeprefix("http://").split(":")
    results = [[] for _ in range(clients)]

    def worker(i):
        for _ in range(requests_each):
            results[i].append(one_request(host, int(port), model, max_tokens))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    flat = [r for rs in results for r in rs]
    tokens = sum(r[2] for r in flat)
    ttft = [r[0] for r in flat]
    gaps = [g for r in flat for g in r[1]]
    return {"clients": clients, "requests": len(flat), "tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 2),
            "ttft_p50_s": round(pct(ttft, 50), 3), "ttft_p99_s": round(pct(ttft, 99), 3),
            "token_latency_p50_ms": round(1000 * pct(gaps, 50), 1),
            "token_latency_p99_ms": round(1000 * pct(gaps, 99), 1)}


def transformers_generate(erebor, gguf, max_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder = tempfile.mkdtemp()
    folder = os.path.join(folder, "hf")
    subprocess.run([erebor, "model", "convert", gguf, folder], check=True,
                   stdout=subprocess.DEVNULL)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False)
        wall = time.perf_counter() - start
    new = out.shape[1] - ids.shape[1]
    return {"tokens": int(new), "wall_s": round(wall, 2), "tokens_per_s": round(new / wall, 2),
            "torch_threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--erebor", default="target/debug/erebor")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--levels", default="1,4,8")
    ap.add_argument("--requests-each", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()
    server = subprocess.Popen([args.erebor, "model", "serve", args.gguf, "--port", "0",
                               "--max-batch", "8", "--model-name", "bench"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = json.loads(server.stdout.readline())["listening"]
        level(base, "bench", 1, 1, 4)  # warm-up
        rows = [level(base, "bench", n, args.requests_each, args.max_tokens)
                for n in map(int, args.levels.split(","))]
    finally:
        server.terminate()
        server.wait()
    hf = transformers_generate(args.erebor, args.gguf, args.max_tokens)
    print(json.dumps({"load_avg": os.getloadavg(), "levels": rows, "transformers_generate": hf,
                      "speedup_8_vs_1": round(rows[-1]["tokens_per_s"] / rows[0]["tokens_per_s"], 2)},
                     indent=1))


if __name__ == "__main__":
    sys.exit(main())
