#!/usr/bin/env python3
"""lm-eval 0.4.13's own MMLU 5-shot request list and the forward tokens its HF backend runs for
it, written as the fixture crates/erebor-eval/tests/fixtures/lm_eval_mmlu_tokens.json (issue 9:
MMLU few-shot prefix KV reuse is measured against this).

- Requests: lm-eval's `mmlu_<subject>` tasks (lm_eval/tasks/mmlu/default, `first_n` few-shot
  from dev, 5 shots), built by the tasks' own `build_all_requests`, on the shared MMLU files
  (`datasets.load_dataset("cais/mmlu", subject)` is answered from mmlu_{test,dev}.jsonl, rows
  of that subject in file order; nothing is fetched).
- Tokens: the requests go through a real `HFLM` (transformers tokenizer from the SmolLM2
  tokenizer.json, a tiny random Llama of that vocabulary; no BOS, as lm-eval's default) and its
  own `_encode_pair`; its `_loglikelihood_tokens` batching is then replayed with lm-eval's own
  `Collator` (sort by -len, one-token logits cache: one forward per context+cont[:-1]) to count
  `len((context + continuation)[-(max_length+1):][:-1])` per forward (and the padded batch
  size × longest). `--check N` first runs the real `_loglikelihood_tokens` on N documents of two
  subjects with `_model_call` recording its input shapes, and fails unless the replay gives the
  same batches.

Usage: .venv-eval/bin/python scripts/lm-eval-mmlu-tokens.py [--shared ../shared] [--out FILE]
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import lm_eval  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.models.utils import Collator  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def patch_datasets(leaderboard: Path):
    """`load_dataset("cais/mmlu", subject)` from the shared files, splits in file order."""
    splits = {s: read_jsonl(leaderboard / f"mmlu_{s}.jsonl") for s in ("test", "dev", "validation")}
    original = datasets.load_dataset

    def load_dataset(path=None, name=None, **kwargs):
        if path != "cais/mmlu":
            return original(path=path, name=name, **kwargs)
        return datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list([r for r in rows if r["subject"] == name])
                for split, rows in splits.items()
            }
        )

    datasets.load_dataset = load_dataset
    lm_eval.api.task.datasets.load_dataset = load_dataset


def build_lm(tokenizer_dir: Path, max_length: int, batch_size: int) -> HFLM:
    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_length,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    return HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, max_length=max_length,
                device="cpu")


def task_requests(subjects, limit=None):
    """{subject: [Instance]} in doc order, built by lm-eval's own tasks."""
    manager = TaskManager()
    tasks = manager.load_task_or_group([f"mmlu_{s}" for s in subjects])
    out = {}
    for name, task in tasks.items():
        task.set_config(key="num_fewshot", value=5)
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        out[name.removeprefix("mmlu_")] = sorted(task.instances, key=lambda i: (i.doc_id, i.idx))
    return out


def encoded(lm: HFLM, instances):
    """lm-eval's (request, context_enc, continuation_enc) triples, from its own loglikelihood."""
    captured = []

    def capture(requests, disable_tqdm=False, override_bs=None):
        captured.extend(requests)
        return [(0.0, False)] * len(requests)

    original = lm._loglikelihood_tokens
    lm._loglikelihood_tokens = capture
    try:
        lm.loglikelihood(instances, disable_tqdm=True)
    finally:
        lm._loglikelihood_tokens = original
    return captured


def replay(lm: HFLM, requests, batch_size: int):
    """The batches `_loglikelihood_tokens` forms: [(rows, longest input)]."""
    re_ord = Collator(
        requests,
        sort_fn=lambda r: (-len(r[1] + r[2]), tuple(r[1] + r[2])),
        group_by="contexts",
        group_fn=lambda r: r[-2] + r[-1][:-1],
    )
    batches = []
    for chunk in re_ord.get_batched(n=batch_size, batch_fn=None):
        lens = [len((c + k)[-(lm.max_length + 1):][:-1]) for _, c, k in chunk]
        batches.append(lens)
    return batches


def check_replay(lm: HFLM, batch_size: int, n_docs: int):
    """The real `_loglikelihood_tokens` on a few documents runs the batches `replay` says."""
    shapes = []
    original = lm._model_call

    def record(inps, attn_mask=None, labels=None):
        shapes.append(tuple(inps.shape))
        return original(inps, attn_mask=attn_mask, labels=labels)

    lm._model_call = record
    for subject, instances in task_requests(["abstract_algebra", "anatomy"], n_docs).items():
        requests = encoded(lm, instances)
        shapes.clear()
        lm._loglikelihood_tokens(requests, disable_tqdm=True)
        expected = [(len(b), max(b)) for b in replay(lm, requests, batch_size)]
        if shapes != expected:
            sys.exit(f"replay differs from lm-eval's batches for {subject}: {shapes} vs {expected}")
    lm._model_call = original
    print(f"replay check: lm-eval's own batches equal the replay ({n_docs} docs x 2 subjects)",
          file=sys.stderr)


def request_digest(instances) -> str:
    """sha256 over `doc_id \\x1f context \\x1f continuation \\x1e` of every request in order."""
    h = hashlib.sha256()
    for inst in instances:
        context, continuation = inst.arguments
        h.update(f"{inst.doc_id}\x1f{context}\x1f{continuation}\x1e".encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", default=str(ROOT / "crates/erebor-eval/tests/fixtures/lm_eval_mmlu_tokens.json"))
    ap.add_argument("--max-length", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--check", type=int, default=6, help="documents per subject for the replay check")
    args = ap.parse_args()
    shared = Path(args.shared)
    patch_datasets(shared / "data/leaderboard")
    lm = build_lm(shared / "tokenizers/smollm2", args.max_length, args.batch_size)
    check_replay(lm, args.batch_size, args.check)
    subjects = sorted({r["subject"] for r in read_jsonl(shared / "data/leaderboard/mmlu_test.jsonl")})
    per_subject = {}
    for subject, instances in task_requests(subjects).items():
        requests = encoded(lm, instances)
        batches = replay(lm, requests, args.batch_size)
        per_subject[subject] = {
            "docs": len({i.doc_id for i in instances}),
            "requests": len(instances),
            "forwards": sum(len(b) for b in batches),
            "forward_tokens": sum(sum(b) for b in batches),
            "padded_tokens": sum(len(b) * max(b) for b in batches),
            "longest_input": max(max(b) for b in batches),
            "requests_sha256": request_digest(instances),
            "first_context": instances[0].arguments[0],
        }
        print(subject, per_subject[subject]["forward_tokens"], file=sys.stderr)
    totals = {k: sum(s[k] for s in per_subject.values())
              for k in ("docs", "requests", "forwards", "forward_tokens", "padded_tokens")}
    out = {
        "made_by": "scripts/lm-eval-mmlu-tokens.py",
        "lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13",
        "transformers": transformers.__version__,
        "tokenizer": "../shared/tokenizers/smollm2/tokenizer.json",
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "num_fewshot": 5,
        "totals": totals,
        "subjects": per_subject,
    }
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(totals), file=sys.stderr)


if __name__ == "__main__":
    main()
