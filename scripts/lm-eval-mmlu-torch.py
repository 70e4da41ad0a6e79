#!/usr/bin/env python3
"""Scores the MMLU requests erebor wrote in its samples files with transformers, as lm-eval's
HF backend does, timed, and compares the log-likelihoods with erebor's (issue 9's GPU MMLU
benchmark; run by scripts/lm-eval-mmlu-gpu.sh).

lm-eval's HF backend semantics: `_encode_pair` (trailing context whitespace moves to the
continuation; the continuation is the tail of the encoding of the whole; no special tokens),
one forward per distinct `context + continuation[:-1]` (its one-token logits cache: one per
MMLU question), longest first, right-padded batches of --batch-size, log_softmax in float32.
Documents/s = documents / seconds of scoring after one warm-up batch (tokenisation included,
model load excluded).
"""

import argparse
import glob
import json
import os
import sys
import time

import torch
import transformers


def load_samples(folder):
    docs = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "samples_mmlu_*.jsonl"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                args = [(a["arg_0"], a["arg_1"]) for a in doc["arguments"].values()]
                lls = [float(r[0][0]) for r in doc["resps"]]
                docs.append((os.path.basename(path), doc["doc_id"], args, lls))
    return docs


def encode_pair(tok, context, continuation):
    n = len(context) - len(context.rstrip())
    if n:
        continuation = context[-n:] + continuation
        context = context[:-n]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


def score(model, tok, docs, batch_size, device):
    """{(doc index, request index): loglikelihood} and the seconds it took."""
    groups = {}
    for d, (_, _, args, _) in enumerate(docs):
        for r, (context, continuation) in enumerate(args):
            ctx, cont = encode_pair(tok, context, continuation)
            key = tuple(ctx + cont[:-1])
            groups.setdefault(key, []).append((d, r, cont))
    keys = sorted(groups, key=len, reverse=True)
    out = {}
    for start in range(0, len(keys), batch_size):
        batch = keys[start:start + batch_size]
        width = len(batch[0])
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, key in enumerate(batch):
            ids[i, :len(key)] = torch.tensor(key)
            mask[i, :len(key)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for i, key in enumerate(batch):
            for d, r, cont in groups[key]:
                first = len(key) - len(cont) + 1
                picked = logprobs[i, first - 1:first - 1 + len(cont)]
                out[(d, r)] = float(picked.gather(1, torch.tensor(cont)[:, None]).sum())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", required=True, help="erebor's output folder (samples_mmlu_*.jsonl)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    docs = load_samples(args.samples)
    if not docs:
        sys.exit(f"no samples_mmlu_*.jsonl under {args.samples}")
    tok = transformers.AutoTokenizer.from_pretrained(args.model)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.model, dtype=getattr(torch, args.dtype), attn_implementation="sdpa"
    ).to(args.device).eval()
    score(model, tok, docs[: args.batch_size], args.batch_size, args.device)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    lls = score(model, tok, docs, args.batch_size, args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    worst, same = 0.0, 0
    for d, (_, _, _, ours) in enumerate(docs):
        theirs = [lls[(d, r)] for r in range(len(ours))]
        worst = max(worst, max(abs(a - b) for a, b in zip(ours, theirs)))
        same += max(range(len(ours)), key=ours.__getitem__) == max(range(len(theirs)), key=theirs.__getitem__)
    erebor_seconds = None
    for path in glob.glob(os.path.join(args.samples, "**", "results_*.json"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tasks = json.load(f).get("erebor", {}).get("tasks", {})
        erebor_seconds = sum(t.get("seconds", 0.0) for t in tasks.values())
    summary = {
        "documents": len(docs),
        "transformers_seconds": seconds,
        "transformers_docs_per_s": len(docs) / seconds,
        "erebor_seconds": erebor_seconds,
        "erebor_docs_per_s": len(docs) / erebor_seconds if erebor_seconds else None,
        "max_abs_loglikelihood_diff": worst,
        "same_argmax_share": same / len(docs),
        "device": args.device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
