"""MT-Bench answer-generation benchmark (issue 11): `erebor mt-bench` (answers only, no judge)
against transformers' `generate` on the same rendered prompts, in the same run, on the CPU.

Both engines load the same Hugging Face folder, written by `erebor model convert` from the GGUF
(so the weights, tokenizer, chat template and stop tokens are the same files). The questions are
a subset of ../shared/data/mt_bench: the first N of each category (`--categories all`, the
default), of the categories FastChat itself answers greedily (`--categories greedy`: reasoning,
math, coding, extraction), or of a comma-separated list. erebor is run with `--temperature 0`,
which overrides FastChat's per-category table (writing/roleplay 0.7, stem/humanities 0.1), and
transformers decodes greedily too, so every category is compared token for token (two samplers
could not be).

transformers is run as FastChat's gen_model_answer runs it: one question at a time, greedy,
`max_new_tokens` per turn, turn 2 asked with turn 1's question and answer in the conversation.
Turn 2's conversation carries erebor's turn-1 answer (default `--turn2-context erebor`), so both
engines get exactly the same rendered prompts for both turns; `--turn2-context own` uses
transformers' own turn-1 answer (FastChat's behaviour). With `--hf-batch N` it also runs
transformers batched (left padding, N prompts per `generate`, longest first, as erebor batches).

Tokens are counted as erebor counts them (`mt_bench/answer_tokens`): generated tokens including
the stop token, excluding padding. Answers are compared after decoding without special tokens and
stripping whitespace (as erebor and FastChat strip them).

Usage (from the repository root, the evaluation venv):
  .venv-eval/bin/python scripts/mt_bench_bench.py --erebor target/debug/erebor \
      --gguf ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
      --per-category 2 --max-new-tokens 256
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# MT-Bench's categories; GREEDY are those FastChat's temperature_config answers at 0.
ALL = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
GREEDY = ["reasoning", "math", "coding", "extraction"]


def categories_of(spec):
    """`all`, `greedy` or a comma-separated list of categories."""
    if spec == "all":
        return ALL
    if spec == "greedy":
        return GREEDY
    names = [c for c in spec.split(",") if c]
    unknown = sorted(set(names) - set(ALL))
    if unknown or not names:
        raise SystemExit(f"--categories {spec}: use all, greedy or a list of {','.join(ALL)}")
    return names


def subset_questions(data_dir, categories, per_category):
    picked, seen = [], {}
    with open(os.path.join(data_dir, "question.jsonl")) as f:
        for line in f:
            q = json.loads(line)
            c = q["category"]
            if c in categories and seen.get(c, 0) < per_category:
                seen[c] = seen.get(c, 0) + 1
                picked.append(q)
    return picked


def write_data_dir(src, questions, dst):
    """A FastChat data folder holding only `questions` (judge prompts and references as is)."""
    os.makedirs(dst)
    with open(os.path.join(dst, "question.jsonl"), "w") as f:
        for q in questions:
            f.write(json.dumps(q) + "\n")
    shutil.copy(os.path.join(src, "judge_prompts.jsonl"), dst)
    shutil.copytree(os.path.join(src, "reference_answer"), os.path.join(dst, "reference_answer"))


def run_erebor(erebor, model, data_dir, work, max_new_tokens, batch_size):
    out = os.path.join(work, "erebor_out")
    cmd = [erebor, "mt-bench", model, "--data-dir", data_dir, "--max-new-tokens",
           str(max_new_tokens), "--batch-size", str(batch_size), "--temperature", "0",
           "--model-id", "erebor",
           "--output", out, "--home", os.path.join(work, "home"),
           "--db", "sqlite://" + os.path.join(work, "erebor.db"), "-q"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    metrics = dict(re.findall(r"^(mt_bench/\S+)\s+(\S+)\s*$", proc.stdout, re.M))
    if float(metrics.get("mt_bench/temperature_override", "nan")) != 0.0:
        raise SystemExit("erebor did not record --temperature 0 (mt_bench/temperature_override)")
    tokens = int(float(metrics["mt_bench/answer_tokens"]))
    per_s = float(metrics["mt_bench/answer_tokens_per_s"])
    answers = {}
    for root, _, files in os.walk(out):
        for name in files:
            if name.endswith(".jsonl") and "model_answer" in root:
                with open(os.path.join(root, name)) as f:
                    for line in f:
                        a = json.loads(line)
                        answers[a["question_id"]] = a["choices"][0]["turns"]
    return {"command": " ".join(cmd), "process_wall_s": round(wall, 2), "tokens": tokens,
            "generate_s": round(tokens / per_s, 2), "tokens_per_s": round(per_s, 2),
            "truncated_prompts": metrics.get("mt_bench/truncated_prompts")}, answers


def count_new(row, stop_ids, pad_id):
    """Generated tokens as erebor counts them: up to and including the first stop token."""
    n = 0
    for t in row:
        n += 1
        if t in stop_ids:
            return n
    if pad_id is not None:  # a row that hit max_new_tokens has no stop and no padding
        while n and row[n - 1] == pad_id and pad_id not in stop_ids:
            n -= 1
    return n


class Hf:
    def __init__(self, folder):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        eos = self.model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"

    def prompt(self, messages):
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, texts, max_new_tokens, temperature):
        """One `generate` over `texts` (left-padded); (answers, new token counts)."""
        enc = self.tok(texts, return_tensors="pt", add_special_tokens=False, padding=True)
        sampling = ({"do_sample": True, "temperature": temperature} if temperature > 0
                    else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max_new_tokens,
                                      eos_token_id=sorted(self.stop_ids),
                                      pad_token_id=self.tok.pad_token_id, **sampling)
        new = out[:, enc.input_ids.shape[1]:].tolist()
        counts = [count_new(r, self.stop_ids, self.tok.pad_token_id) for r in new]
        texts = [self.tok.decode(r[:n], skip_special_tokens=True).strip()
                 for r, n in zip(new, counts)]
        return texts, counts


def conversation(q, turn, earlier):
    messages = []
    for t in range(turn + 1):
        messages.append({"role": "user", "content": q["turns"][t]})
        if t < turn:
            messages.append({"role": "assistant", "content": earlier[t]})
    return messages


def run_hf(hf, questions, erebor_answers, max_new_tokens, batch, turn2_context):
    """Both turns of every question, greedy, `batch` prompts per generate (1 = FastChat's
    loop)."""
    answers = {q["question_id"]: [] for q in questions}
    tokens = 0
    hf.torch.manual_seed(0)
    start = time.perf_counter()
    for turn in range(2):
        items = []
        for q in questions:
            qid = q["question_id"]
            earlier = erebor_answers[qid] if turn2_context == "erebor" else answers[qid]
            text = hf.prompt(conversation(q, turn, earlier))
            items.append((len(hf.tok(text).input_ids), qid, text))
        items.sort(key=lambda it: -it[0])
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            texts, counts = hf.generate([it[2] for it in chunk], max_new_tokens, 0.0)
            tokens += sum(counts)
            for it, text in zip(chunk, texts):
                answers[it[1]].append(text)
    wall = time.perf_counter() - start
    return {"batch": batch, "tokens": tokens, "generate_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 2)}, answers


def identical(a, b, questions):
    same = [0, 0]
    for q in questions:
        for t in range(2):
            same[t] += a[q["question_id"]][t] == b[q["question_id"]][t]
    return {"turn1": same[0], "turn2": same[1], "of_each": len(questions)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--erebor", default="target/debug/erebor")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--data-dir", default="../shared/data/mt_bench")
    ap.add_argument("--categories", default="all",
                    help="all (default: the eight categories), greedy (those FastChat answers at "
                         "temperature 0: " + ",".join(GREEDY) + ") or a comma-separated list; "
                         "every category is answered greedily (erebor --temperature 0)")
    ap.add_argument("--per-category", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8, help="erebor's --batch-size")
    ap.add_argument("--hf-batch", type=int, default=0, help="also run transformers batched")
    ap.add_argument("--turn2-context", choices=["erebor", "own"], default="erebor")
    ap.add_argument("--keep", help="copy the answers and results into this folder")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mt_bench_bench_")
    hf_dir = os.path.join(work, "hf")
    subprocess.run([args.erebor, "model", "convert", args.gguf, hf_dir], check=True,
                   stdout=subprocess.DEVNULL)
    questions = subset_questions(args.data_dir, categories_of(args.categories),
                                 args.per_category)
    data_dir = os.path.join(work, "data")
    write_data_dir(args.data_dir, questions, data_dir)
    load_before = os.getloadavg()
    erebor, e_answers = run_erebor(args.erebor, hf_dir, data_dir, work, args.max_new_tokens,
                                   args.batch_size)
    load_after_erebor = os.getloadavg()
    hf = Hf(hf_dir)
    hf.generate([hf.prompt([{"role": "user", "content": questions[0]["turns"][0]}])], 16,
                0.0)  # warm-up
    result = {"questions": [q["question_id"] for q in questions],
              "categories": args.categories, "temperature": 0.0,
              "max_new_tokens": args.max_new_tokens, "turn2_context": args.turn2_context,
              "torch_threads": hf.torch.get_num_threads(), "load_avg_before": load_before,
              "load_avg_after_erebor": load_after_erebor,
              "erebor": erebor}
    one, h_answers = run_hf(hf, questions, e_answers, args.max_new_tokens, 1,
                            args.turn2_context)
    one["identical_to_erebor"] = identical(e_answers, h_answers, questions)
    result["transformers_batch1"] = one
    if args.hf_batch > 1:
        many, b_answers = run_hf(hf, questions, e_answers, args.max_new_tokens, args.hf_batch,
                                 args.turn2_context)
        many["identical_to_erebor"] = identical(e_answers, b_answers, questions)
        result["transformers_batched"] = many
    result["load_avg_after"] = os.getloadavg()
    result["erebor_speedup_vs_batch1"] = round(erebor["tokens_per_s"] / one["tokens_per_s"], 2)
    print(json.dumps(result, indent=1))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        with open(os.path.join(args.keep, "answers.json"), "w") as f:
            json.dump({"erebor": e_answers, "transformers_batch1": h_answers}, f, indent=1)
        with open(os.path.join(args.keep, "result.json"), "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
