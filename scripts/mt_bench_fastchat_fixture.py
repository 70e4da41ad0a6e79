#!/usr/bin/env python3
"""FastChat's own MT-Bench judging on fixed answers, recorded as a fixture for erebor-eval.

Runs FastChat's `fastchat/llm_judge` code (gen_judgment.py's `make_judge_*` / `make_match*` and
common.py's `play_a_match_single` / `play_a_match_pair`) over a selection of the real MT-Bench
questions, the real judge prompts and GPT-4 reference answers, and two synthetic models' answers.
The judge is not called: `openai.ChatCompletion.create` is replaced by a recorder that keeps the
exact keyword arguments FastChat sends (model, messages, n, temperature, max_tokens) and answers
with a canned judgment. What FastChat writes to its judgment JSONL is kept line for line.

erebor's test (crates/erebor-eval/tests/mt_bench_fastchat.rs) builds the same requests and
judgment lines and compares them: request bodies as JSON, judgment lines byte for byte apart
from `tstamp`.

Only the modules the grading path imports but does not use are stubbed: `anthropic`, `numpy`,
`tqdm`, and `fastchat.model.model_adapter`, whose `get_conversation_template` is replaced by what
its ChatGPTAdapter returns for `gpt-4` (`get_conv_template("chatgpt")` from FastChat's real
conversation.py) - importing the real adapter would pull torch and transformers.

Usage (stdlib only):
    git clone https://github.com/lm-sys/FastChat /tmp/FastChat   # any checkout; the commit is recorded
    python3 scripts/mt_bench_fastchat_fixture.py --fastchat /tmp/FastChat \
        --data ../shared/data/mt_bench \
        --out crates/erebor-eval/tests/fixtures/fastchat_mt_bench_judging.json
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

# One question per category: writing, roleplay, reasoning, math, coding, extraction, stem, humanities.
QUESTION_IDS = [81, 91, 101, 111, 121, 131, 141, 151]
JUDGE_MODEL = "gpt-4"
MODELS = ["model-a", "model-b"]


def synthetic_answers(question_ids):
    """Two models' answers with text that exercises JSON escaping: quotes, backslashes, braces,
    tabs, newlines and non-ASCII (accents, a dash, CJK, an emoji outside the BMP)."""
    answers = {}
    for model in MODELS:
        answers[model] = {}
        for qid in question_ids:
            turns = [
                f'{model} on {qid}, turn 1: "quoted" {{braces}} back\\slash\ttab\nCafé – naïve 漢字 😀',
                f"{model} on {qid}, turn 2: 2 + 2 = {4 if model == 'model-a' else 5}.",
            ]
            answers[model][qid] = {
                "question_id": qid,
                "answer_id": f"{model}-{qid}",
                "model_id": model,
                "choices": [{"index": 0, "turns": turns}],
                "tstamp": 0.0,
            }
    return answers


def canned_judgment(messages):
    """A judgment chosen from the request, covering FastChat's parsing branches: `[[x]]`, the
    `[x]` backup, a decimal rating, no rating; `[[A]]`, `[[B]]`, `[[C]]` and no verdict."""
    user = messages[-1]["content"]
    key = hashlib.sha256(user.encode()).digest()[0] % 5
    if "[[A]]" in messages[0]["content"]:  # a pairwise prompt
        return ["Verdict: [[A]]", "Verdict: [[B]]", "It is a tie: [[C]]", "No verdict.", "[[B]]"][key]
    return ["Rating: [[7]]", "Rating: [8]", "Rating: [[6.5]]", "No rating given.", "[[10]]"][key]


def install_stubs(recorded):
    class OpenAIError(Exception):
        pass

    def create(**kwargs):
        recorded.append(kwargs)
        return {"choices": [{"message": {"content": canned_judgment(kwargs["messages"])}}]}

    openai = types.ModuleType("openai")
    openai.ChatCompletion = types.SimpleNamespace(create=create)
    openai.error = types.SimpleNamespace(OpenAIError=OpenAIError)
    sys.modules["openai"] = openai
    for name in ["anthropic", "numpy", "tqdm"]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules["tqdm"].tqdm = lambda it, **_: it

    from fastchat.conversation import get_conv_template

    adapter = types.ModuleType("fastchat.model.model_adapter")
    adapter.OPENAI_MODEL_LIST = (JUDGE_MODEL,)
    adapter.ANTHROPIC_MODEL_LIST = ()
    adapter.get_conversation_template = lambda model: get_conv_template("chatgpt")
    package = types.ModuleType("fastchat.model")
    package.model_adapter = adapter
    sys.modules["fastchat.model"] = package
    sys.modules["fastchat.model.model_adapter"] = adapter


def all_matches(gen, questions, answers, refs, judges, make):
    """gen_judgment.py's main: default and math questions, turn 1 then turn 2."""
    math = [q for q in questions if q["category"] in gen.NEED_REF_CATS]
    default = [q for q in questions if q["category"] not in gen.NEED_REF_CATS]
    baseline = MODELS[1] if make is gen.make_match else None
    models = MODELS if baseline is None else MODELS[:1]
    return (
        make(default, models, answers, judges["default"], baseline)
        + make(math, models, answers, judges["math"], baseline, refs)
        + make(default, models, answers, judges["default-mt"], baseline, multi_turn=True)
        + make(math, models, answers, judges["math-mt"], baseline, refs, multi_turn=True)
    )


def play(common, matches, play_fn, recorded, out_file):
    """Plays the matches in order; returns FastChat's lines and the requests of each."""
    cases = []
    for match in matches:
        start = len(recorded)
        play_fn(match, output_file=str(out_file))
        cases.append({"requests": recorded[start:]})
    lines = out_file.read_text().splitlines()
    assert len(lines) == len(cases)
    for case, line in zip(cases, lines):
        case["line"] = line
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fastchat", required=True, type=Path, help="a FastChat checkout")
    parser.add_argument("--data", required=True, type=Path, help="../shared/data/mt_bench")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--commit", help="the FastChat commit, when --fastchat is not a git checkout")
    args = parser.parse_args()
    sys.path.insert(0, str(args.fastchat))
    recorded = []
    install_stubs(recorded)
    from fastchat.llm_judge import common
    from fastchat.llm_judge import gen_judgment as gen

    questions = [
        q for q in common.load_questions(str(args.data / "question.jsonl"), None, None)
        if q["question_id"] in QUESTION_IDS
    ]
    refs = common.load_model_answers(str(args.data / "reference_answer"))
    prompts = common.load_judge_prompts(str(args.data / "judge_prompts.jsonl"))
    answers = synthetic_answers(QUESTION_IDS)
    out = {"fastchat_version": __import__("fastchat").__version__}
    out["fastchat_commit"] = args.commit
    try:
        out["fastchat_commit"] = out["fastchat_commit"] or subprocess.run(
            ["git", "-C", str(args.fastchat), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        pass
    out.update(judge_model=JUDGE_MODEL, question_ids=QUESTION_IDS, models=MODELS)
    out["answers"] = {m: {str(q): a["choices"][0]["turns"] for q, a in by_q.items()}
                      for m, by_q in answers.items()}
    with tempfile.TemporaryDirectory() as tmp:
        single = gen.make_judge_single(JUDGE_MODEL, prompts)
        matches = all_matches(gen, questions, answers, refs, single, gen.make_match_single)
        out["single"] = play(common, matches, common.play_a_match_single, recorded,
                             Path(tmp) / "single.jsonl")
        pair = gen.make_judge_pairwise(JUDGE_MODEL, prompts)
        matches = all_matches(gen, questions, answers, refs, pair, gen.make_match)
        out["pairwise"] = play(common, matches, common.play_a_match_pair, recorded,
                               Path(tmp) / "pair.jsonl")
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(out['single'])} single and {len(out['pairwise'])} pairwise judgments -> {args.out}")


if __name__ == "__main__":
    main()
