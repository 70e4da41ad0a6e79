#!/usr/bin/env python3
"""Compares two lm-eval 0.4 samples files request by request (stdlib only).

    python3 scripts/lm_eval_parity_compare.py LMEVAL_SAMPLES.jsonl EREBOR_SAMPLES.jsonl [--tol 1e-3] [--margin 2e-3]

Both files are in the format lm-eval 0.4.13 writes with --log_samples (`samples_<task>_<time>.jsonl`): one object per
document with doc_id, arguments {"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}, resps and
filtered_resps (per request ["<loglikelihood>", "<is_greedy>"] as strings; lm-eval nests resps one level deeper,
[[["-12.3", "False"]], ...], and filtered_resps one level less, [["-12.3", "False"], ...]: both shapes are read).

Checks, for every document present in the lm-eval file:
  * the same requests: identical context and continuation strings, in the same order;
  * |ll_erebor - ll_lmeval| <= tol (default 1e-3) for every request;
  * the same acc and acc_norm predictions wherever the decision is clear: the best and second-best choice under
    lm-eval's scores differ by more than margin (default 2e-3); acc_norm divides by the character length of the
    choice, as lm-eval 0.4 does (the continuation without the one leading space of the target delimiter).
Exits 1 on any failure and prints each one; prints a summary (max |diff|, documents, requests) either way.
"""

import argparse
import json
import sys


def read(path):
    docs = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                d = json.loads(line)
                if d["doc_id"] in docs:
                    sys.exit(f"{path}:{n}: doc_id {d['doc_id']} appears twice")
                docs[d["doc_id"]] = d
    return docs


def loglikelihoods(sample, path):
    out = []
    for r in sample.get("filtered_resps") or sample["resps"]:
        while isinstance(r, list) and len(r) == 1 and isinstance(r[0], list):
            r = r[0]
        if not (isinstance(r, list) and len(r) == 2):
            sys.exit(f"{path}: doc {sample['doc_id']}: response {r!r} is not [loglikelihood, is_greedy]")
        out.append(float(r[0]))
    return out


def requests(sample):
    args = sample["arguments"]
    keys = sorted(args, key=lambda k: int(k.rsplit("_", 1)[1]))
    return [(args[k]["arg_0"], args[k]["arg_1"]) for k in keys]


def argmax(xs):
    return max(range(len(xs)), key=lambda i: xs[i])  # first index wins ties, like numpy.argmax


def clear(xs, margin):
    if len(xs) < 2:
        return True
    top = sorted(xs, reverse=True)
    return top[0] - top[1] > margin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lmeval")
    ap.add_argument("erebor")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--margin", type=float, default=2e-3)
    a = ap.parse_args()
    ref, got = read(a.lmeval), read(a.erebor)
    failures, max_diff, n_req, n_pred = [], 0.0, 0, 0
    for doc_id, r in sorted(ref.items()):
        g = got.get(doc_id)
        if g is None:
            failures.append(f"doc {doc_id}: missing from {a.erebor}")
            continue
        rq, gq = requests(r), requests(g)
        if rq != gq:
            failures.append(f"doc {doc_id}: requests differ:\n  lm-eval {rq!r}\n  erebor  {gq!r}")
            continue
        rl, gl = loglikelihoods(r, a.lmeval), loglikelihoods(g, a.erebor)
        if len(rl) != len(gl) or len(rl) != len(rq):
            failures.append(f"doc {doc_id}: {len(rl)} lm-eval and {len(gl)} erebor responses for {len(rq)} requests")
            continue
        for i, (x, y) in enumerate(zip(rl, gl)):
            n_req += 1
            max_diff = max(max_diff, abs(x - y))
            if abs(x - y) > a.tol:
                failures.append(f"doc {doc_id} request {i}: lm-eval {x:.6f} erebor {y:.6f} (|diff| {abs(x - y):.2e})")
        # lm-eval 0.4: len(choice) in characters; the continuation is target_delimiter (" ") + choice
        lens = [float(len(cont[1:])) if cont.startswith(" ") else float(len(cont)) for _, cont in rq]
        for name, rs, gs in [("acc", rl, gl),
                             ("acc_norm", [x / n for x, n in zip(rl, lens)], [y / n for y, n in zip(gl, lens)])]:
            if clear(rs, a.margin):
                n_pred += 1
                if argmax(rs) != argmax(gs):
                    failures.append(f"doc {doc_id}: {name} prediction lm-eval {argmax(rs)} erebor {argmax(gs)}")
    print(f"{len(ref)} documents, {n_req} requests, max |ll diff| {max_diff:.3e} (tol {a.tol}), "
          f"{n_pred} clear predictions compared (margin {a.margin}), {len(failures)} failures")
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
