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

On a machine shared with other work, `--interleave` runs the engines category by category
(erebor then transformers batched; afterwards transformers one question at a time on `--hf-one`'s
categories), each segment timed with the load average before and after it, and sums the totals;
the result is rewritten after each segment (`--keep`), so a run cut short still reports. All 80:
  .venv-eval/bin/python scripts/mt_bench_bench.py --erebor target/debug/erebor \
      --gguf ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
      --per-category 10 --max-new-tokens 256 --interleave --hf-batch 8 --hf-one greedy
Answers that differ from erebor's are located (`first_differences`: first differing token and
transformers' logit gap there).
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


def subset_questions(data_dir, categories, per_category, ids=None):
    picked, seen = [], {}
    with open(os.path.join(data_dir, "question.jsonl")) as f:
        for line in f:
            q = json.loads(line)
            c = q["category"]
            if ids is not None and q["question_id"] not in ids:
                continue
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
        from tokenizers import Tokenizer
        from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
        self.torch = torch
        # transformers 5 rebuilds GPT-2-style tokenizers (GPT2Tokenizer, SmolLM2's class) from
        # the vocabulary and merges with a pre-tokenizer of its own, without tokenizer.json's
        # Digits split: "\n\n2" becomes "\n", "\n", "2" where tokenizer.json gives "\n\n", "2".
        # erebor, the `tokenizers` library, vLLM and transformers 4 encode with tokenizer.json
        # as written; so does this benchmark, or the two engines would not see the same tokens.
        auto = AutoTokenizer.from_pretrained(folder)
        self.tok = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_file(os.path.join(folder, "tokenizer.json")),
            **auto.special_tokens_map)
        self.tok.chat_template = auto.chat_template
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


def first_differences(hf, questions, e_answers, h_answers):
    """Where each answer that differs from erebor's first departs from it: both texts
    re-tokenized, the first differing token, and transformers' logits for the next token after
    the prompt and the common prefix (one unpadded forward). `gap` is the logit of
    transformers' token minus that of erebor's: near 0 is an f32 argmax tie, a large gap a real
    divergence. A text that ended there is scored as its best stop token."""
    rows = []
    for q in questions:
        qid = q["question_id"]
        for turn in range(2):
            a, b = e_answers[qid][turn], h_answers[qid][turn]
            if a == b:
                continue
            ta = hf.tok(a, add_special_tokens=False).input_ids
            tb = hf.tok(b, add_special_tokens=False).input_ids
            i = next((k for k, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
            prompt = hf.tok(hf.prompt(conversation(q, turn, e_answers[qid])),
                            add_special_tokens=False).input_ids
            with hf.torch.no_grad():
                logits = hf.model(hf.torch.tensor([prompt + ta[:i]])).logits[0, -1]
            stop = max(hf.stop_ids, key=lambda t: logits[t].item())
            ea = ta[i] if i < len(ta) else stop
            tr = tb[i] if i < len(tb) else stop
            rows.append({"question_id": qid, "category": q["category"], "turn": turn + 1,
                         "token_index": i, "erebor_token": hf.tok.decode([ea]),
                         "transformers_token": hf.tok.decode([tr]),
                         "top1_token": hf.tok.decode([int(logits.argmax())]),
                         "gap": round(logits[tr].item() - logits[ea].item(), 6)})
    return rows


def timed(run):
    """`run()` with the load average (1, 5, 15 min) before and after it in its result."""
    before = os.getloadavg()
    result, answers = run()
    result["load_avg_before"] = before
    result["load_avg_after"] = os.getloadavg()
    return result, answers


def summed(segments, engine):
    """One engine's totals over the interleaved segments that ran it."""
    rows = [(s["category"], s[engine]) for s in segments if engine in s]
    if not rows:
        return None
    tokens = sum(r["tokens"] for _, r in rows)
    seconds = sum(r["generate_s"] for _, r in rows)
    total = {"categories": [c for c, _ in rows], "tokens": tokens,
             "generate_s": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2)}
    if engine == "erebor":
        total["process_wall_s"] = round(sum(r["process_wall_s"] for _, r in rows), 2)
    else:
        total["identical_to_erebor"] = {
            k: sum(r["identical_to_erebor"][k] for _, r in rows)
            for k in ("turn1", "turn2", "of_each")}
    return total


def interleaved(args, hf, hf_dir, questions, work, keep):
    """Per category: erebor, then transformers batched (`--hf-batch`), each timed on its own
    with the load average around it, so that load from other processes falls on both engines
    alike; then, category by category again, transformers one question at a time on `--hf-one`'s
    categories (the slowest run, last so that a run cut short still has every category of the
    first two). The result is rewritten after each segment; totals are the sums."""
    one_cats = set() if args.hf_one == "none" else set(categories_of(args.hf_one))
    order = [c for c in categories_of(args.categories) if any(q["category"] == c for q in questions)]
    segments, answers = [], {"erebor": {}, "transformers_batched": {}, "transformers_batch1": {}}

    def hf_segment(seg, name, batch, qs):
        e_ans = {q["question_id"]: answers["erebor"][q["question_id"]] for q in qs}
        seg[name], h_ans = timed(lambda: run_hf(hf, qs, e_ans, args.max_new_tokens, batch,
                                                args.turn2_context))
        seg[name]["identical_to_erebor"] = identical(e_ans, h_ans, qs)
        seg[name]["first_differences"] = first_differences(hf, qs, e_ans, h_ans)
        answers[name].update(h_ans)

    def progress(seg, complete=False):
        print(json.dumps({k: v for k, v in seg.items() if k != "questions"}), file=sys.stderr,
              flush=True)
        totals = {e: summed(segments, e) for e in answers}
        result = {"segments": segments, "totals": {e: t for e, t in totals.items() if t},
                  "complete": complete}
        keep(result, answers)
        return result

    for cat in order:
        qs = [q for q in questions if q["category"] == cat]
        cat_work = os.path.join(work, cat)
        write_data_dir(args.data_dir, qs, os.path.join(cat_work, "data"))
        seg = {"category": cat, "questions": [q["question_id"] for q in qs]}
        seg["erebor"], e_ans = timed(lambda: run_erebor(
            args.erebor, hf_dir, os.path.join(cat_work, "data"), cat_work, args.max_new_tokens,
            args.batch_size))
        answers["erebor"].update(e_ans)
        if args.hf_batch > 1:
            hf_segment(seg, "transformers_batched", args.hf_batch, qs)
        segments.append(seg)
        result = progress(seg)
    for seg in segments:
        if seg["category"] in one_cats:
            hf_segment(seg, "transformers_batch1", 1,
                       [q for q in questions if q["category"] == seg["category"]])
            result = progress(seg)
    result["complete"] = True
    return result, answers


def sequential(args, hf, hf_dir, questions, work):
    """erebor on every question, then transformers one question at a time, then batched."""
    data_dir = os.path.join(work, "data")
    write_data_dir(args.data_dir, questions, data_dir)
    load_before = os.getloadavg()
    erebor, e_answers = run_erebor(args.erebor, hf_dir, data_dir, work, args.max_new_tokens,
                                   args.batch_size)
    result = {"load_avg_before": load_before, "load_avg_after_erebor": os.getloadavg(),
              "erebor": erebor}
    answers = {"erebor": e_answers}
    one, answers["transformers_batch1"] = run_hf(hf, questions, e_answers, args.max_new_tokens,
                                                 1, args.turn2_context)
    one["identical_to_erebor"] = identical(e_answers, answers["transformers_batch1"], questions)
    result["transformers_batch1"] = one
    if args.hf_batch > 1:
        many, answers["transformers_batched"] = run_hf(hf, questions, e_answers,
                                                       args.max_new_tokens, args.hf_batch,
                                                       args.turn2_context)
        many["identical_to_erebor"] = identical(e_answers, answers["transformers_batched"],
                                                questions)
        result["transformers_batched"] = many
    result["load_avg_after"] = os.getloadavg()
    result["erebor_speedup_vs_batch1"] = round(erebor["tokens_per_s"] / one["tokens_per_s"], 2)
    return result, answers


def arguments():
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
    ap.add_argument("--question-ids", help="only these questions (comma-separated ids), e.g. "
                                           "to re-check the answers an earlier run found different")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8, help="erebor's --batch-size")
    ap.add_argument("--hf-batch", type=int, default=0, help="also run transformers batched")
    ap.add_argument("--interleave", action="store_true",
                    help="per category (in --categories' order): erebor, then transformers "
                         "batched, each timed with the load average around it; then "
                         "transformers one at a time on --hf-one's categories; totals summed")
    ap.add_argument("--hf-one", default="all",
                    help="with --interleave: the categories transformers also answers one "
                         "question at a time (all, greedy, none or a list)")
    ap.add_argument("--turn2-context", choices=["erebor", "own"], default="erebor")
    ap.add_argument("--keep", help="copy the answers and results into this folder (with "
                                   "--interleave, rewritten after each category)")
    return ap.parse_args()


def keeper(folder):
    """A function that writes (result, answers) into `folder`, or does nothing without one."""
    def keep(result, answers):
        if not folder:
            return
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "answers.json"), "w") as f:
            json.dump(answers, f, indent=1)
        with open(os.path.join(folder, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return keep


def main():
    args = arguments()
    work = tempfile.mkdtemp(prefix="mt_bench_bench_")
    hf_dir = os.path.join(work, "hf")
    subprocess.run([args.erebor, "model", "convert", args.gguf, hf_dir], check=True,
                   stdout=subprocess.DEVNULL)
    ids = {int(i) for i in args.question_ids.split(",")} if args.question_ids else None
    questions = subset_questions(args.data_dir, categories_of(args.categories),
                                 args.per_category, ids)
    hf = Hf(hf_dir)
    hf.generate([hf.prompt([{"role": "user", "content": questions[0]["turns"][0]}])], 16,
                0.0)  # warm-up
    keep = keeper(args.keep)
    if args.interleave:
        runs, answers = interleaved(args, hf, hf_dir, questions, work, keep)
    else:
        runs, answers = sequential(args, hf, hf_dir, questions, work)
    result = {"questions": [q["question_id"] for q in questions],
              "categories": args.categories, "temperature": 0.0,
              "max_new_tokens": args.max_new_tokens, "erebor_batch_size": args.batch_size,
              "hf_batch": args.hf_batch, "turn2_context": args.turn2_context,
              "torch_threads": hf.torch.get_num_threads(), **runs}
    if not args.interleave:  # interleaved segments locate their own differences
        result["first_differences"] = {
            name: first_differences(hf, questions, answers["erebor"], got)
            for name, got in answers.items() if name != "erebor"}
    print(json.dumps(result, indent=1))
    keep(result, answers)


if __name__ == "__main__":
    sys.exit(main())
