"""Baseline for BENCHMARKS.md (data conversion): the same 400k MetaMathQA-format rows as
`cargo run -p erebor-data --example bench_convert`, converted the way a Python glue script does
it, and tokenised with Hugging Face `tokenizers` (the Rust library under transformers).

    python scripts/bench_convert_py.py [ROWS] [TOKENISE_ROWS]

Phase 1: json.loads every row, build a low-edit pair (one intermediate number of the solution
changed, seeded), drop duplicate queries, split off 1,000 eval rows (seeded shuffle), write
train/eval JSONL. No statistics (erebor's phase 1 includes them). Phase 2: render prompt, prompt +
chosen and prompt + rejected with ChatML and `encode_batch` them with the SmolLM2 tokenizer.
Needs ../shared (GSM8K test solutions and the SmolLM2 tokenizer) and `pip install tokenizers`.
"""

import json
import os
import random
import re
import sys
import tempfile
import time

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
ANNOTATION = re.compile(r"<<[^<>]*>>")


def solutions():
    out = []
    with open(os.path.join(SHARED, "data/leaderboard/gsm8k_test.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            body, last = ANNOTATION.sub("", row["answer"]).rsplit("\n#### ", 1)
            out.append((row["question"], f"{body}\nThe answer is: {last}"))
    return out


def write_rows(path, rows, sols):
    with open(path, "w") as f:
        for index in range(rows):
            query, response = sols[index % len(sols)]
            row = {"id": index, "type": "GSM_Rephrased", "query": f"{query} (variant {index})",
                   "response": response}
            f.write(json.dumps(row) + "\n")


def low_edit(response, rng):
    body, sep, last = response.rpartition("\nThe answer is: ")
    spans = [m.span() for m in NUMBER.finditer(body)]
    if not spans:
        return None
    start, end = spans[rng.randrange(len(spans))]
    old = body[start:end].replace(",", "")
    value = float(old) if "." in old else int(old)
    new = value + rng.choice([-3, -2, -1, 1, 2, 3])
    if new < 0:
        new = value + 1
    return body[:start] + str(new) + body[end:] + sep + last


def convert(path, out_dir):
    rng = random.Random(1)
    seen, pairs = set(), []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row["query"] in seen:
                continue
            seen.add(row["query"])
            rejected = low_edit(row["response"], rng)
            if rejected is not None:
                pairs.append({"id": str(row["id"]), "prompt": row["query"],
                              "chosen": row["response"], "rejected": rejected})
    random.Random(0).shuffle(pairs)
    for name, part in (("eval", pairs[:1000]), ("train", pairs[1000:])):
        with open(os.path.join(out_dir, f"{name}.jsonl"), "w") as f:
            for pair in part:
                f.write(json.dumps(pair) + "\n")
    return pairs


def chatml(messages, generation_prompt):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    tokenise_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "metamath.jsonl")
        write_rows(path, rows, solutions())
        clock = time.perf_counter()
        pairs = convert(path, tmp)
        seconds = time.perf_counter() - clock
        print(f"read + build + dedupe + split + write: {seconds:.2f} s, {rows / seconds:.0f} rows/s"
              f" ({len(pairs)} pairs)")

        tokenizer = Tokenizer.from_file(os.path.join(SHARED, "tokenizers/smollm2/tokenizer.json"))
        subset = pairs[:tokenise_rows]
        clock = time.perf_counter()
        system = {"role": "system", "content": "You are a helpful AI assistant named SmolLM, "
                  "trained by Hugging Face"}
        texts = []
        for pair in subset:
            prompt = [system, {"role": "user", "content": pair["prompt"]}]
            texts.append(chatml(prompt, True))
            for answer in (pair["chosen"], pair["rejected"]):
                texts.append(chatml(prompt + [{"role": "assistant", "content": answer}], False))
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        seconds = time.perf_counter() - clock
        tokens = sum(len(e.ids) for e in encodings)
        print(f"tokenise {len(subset)} pairs (encode_batch, {len(texts)} texts, {tokens} tokens): "
              f"{seconds:.2f} s, {len(subset) / seconds:.0f} pairs/s")


if __name__ == "__main__":
    main()
