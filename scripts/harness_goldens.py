#!/usr/bin/env python3
"""Golden prompts: the exact requests lm-evaluation-harness b281b09 (Open LLM Leaderboard v1) builds.

This runs the harness's own code at commit b281b0921b636bc36ad05c0b0b0763bd6dd43463: `lm_eval.evaluator.evaluate`
(document shuffle with `random.Random()` seeded 42, `limit` after the shuffle, per-document `fewshot_context`,
`construct_requests`), `lm_eval.base` (Task, MultipleChoiceTask, fewshot_context, rf) and the task classes in
`lm_eval/tasks/{arc,hellaswag,hendrycks_test,truthfulqa,winogrande,gsm8k}.py`, with a stub LM that records
requests and answers them with placeholder numbers. Only the dataset download is replaced: every task reads the
local JSONL files of ../shared/data/leaderboard, mapped to the Hugging Face schemas the harness expects (below).

Getting the harness source (it is never committed here):

    git clone https://github.com/EleutherAI/lm-evaluation-harness && cd lm-evaluation-harness
    mkdir -p /tmp/harness-b281b09
    git archive b281b0921b636bc36ad05c0b0b0763bd6dd43463 -- . ':(exclude)lm_eval/datasets/bigbench_resources' \
        | tar -x -C /tmp/harness-b281b09

Run (in .venv-eval, which has numpy, torch, datasets, accelerate, sqlitedict, sacrebleu, scikit-learn, rouge_score,
tqdm from lm-eval 0.4's requirements; any of them that is missing is replaced by an empty stub module, because base.py,
metrics.py, utils.py and truthfulqa.py import them at module level but prompt building never calls them):

    HARNESS_B281B09=/tmp/harness-b281b09 .venv-eval/bin/python scripts/harness_goldens.py \
        [--data-dir ../shared/data/leaderboard] [--out crates/erebor-eval/tests/fixtures/harness_b281b09_prompts.jsonl]

Field mappings (shared file -> what the harness reads from the HF dataset):
  * arc_{easy,challenge}_{train,test}.jsonl {id, question, choices: [str], gold: int}
      -> ai2_arc {id, question, choices: {text: choices, label: ["A","B",...][:len]}, answerKey: "ABCDE"[gold]}.
      The harness then maps answerKey back to gold = "ABCDE".index(answerKey) == gold.
      arc_*_validation.jsonl already has the HF schema (unused here: the harness scores test).
  * hellaswag_validation.jsonl: already the HF `hellaswag` schema (activity_label, ctx_a, ctx_b, endings, label).
  * hellaswag_train.jsonl is already preprocessed ({query, choices, gold}); the raw ctx_a/ctx_b/endings are not
      available, so `training_docs()` returns these rows as the processed docs {query, choices, gold} directly
      instead of running HellaSwag._process_doc on raw rows. The rows look like the harness's own preprocess output:
      42,230 choices start with a space (preprocess strips *before* it deletes "[substeps]"-style brackets, so a
      space can remain in front) and 21 strings keep a double space (one pass of "  " -> " " leaves one of "   ").
      preprocess is not idempotent, so running it again on these rows would change them.
  * mmlu_{dev,test}.jsonl {question, subject, choices, answer}: the `cais/mmlu` schema; each subject's split is the
      file's rows with that subject, in file order (dev -> dataset["dev"], test -> dataset["test"]).
  * winogrande_xl_{train,validation}.jsonl: already the HF `winogrande` schema (sentence, option1, option2, answer).
  * truthfulqa_mc1.jsonl {task_id, question, choices, labels, answer}: answer is always "A" (first choice), so
      mc1_targets = {choices: choices, labels: [1, 0, 0, ...]}. The file has no MC2 label sets, so
      mc2_targets = {choices: [], labels: []}: the harness then builds only the mc1 requests (its construct_requests
      concatenates mc1 requests then mc2 requests). `labels` in the file is ignored (in some rows it is shorter
      than `choices`). For requests with both sets see --truthfulqa-small.
  * gsm8k_test.jsonl {id, question, answer, short_answer}: no train split is shared. As the issue prescribes, the
      first five test rows (file lines 0-4) are the exemplar pool: dataset["train"] = rows[0:5] in file order and
      dataset["test"] = rows[5:] (1314 rows), so the scored documents exclude the exemplars and the shuffle runs
      over those 1314. With k = 5 and a pool of 5, `rnd.sample(pool, 5)` is a random permutation of the five,
      drawn from the same generator as every other task's few-shot draws (it consumes randomness).

Output: one JSON object per request, in the order the harness constructs them:
  task, harness_task (the harness's name), num_fewshot, split, data_file, doc_index (0-based line in data_file),
  doc_id (position after the shuffle, i.e. lm-eval's doc_id), request_index (i within the document),
  request_type (loglikelihood | greedy_until), context, continuation (loglikelihood) or generation_args
  (greedy_until's dict, e.g. {"until": [...]}), description (the value Task.fewshot_context received: "" from
  evaluate(), MMLU's subject line without the "\n\n" that fewshot_context appends), fewshot_indices (the line
  numbers in fewshot_file of the examples used, in prompt order), fewshot_file.
"""

import argparse
import importlib
import json
import os
import sys
import types

HARNESS_COMMIT = "b281b0921b636bc36ad05c0b0b0763bd6dd43463"

# module-level imports of base.py / metrics.py / utils.py / truthfulqa.py that prompt building never calls
OPTIONAL_MODULES = [
    "torch", "torch.nn", "torch.nn.functional", "accelerate", "sqlitedict", "datasets", "sacrebleu", "sklearn",
    "sklearn.metrics", "rouge_score", "omegaconf", "tqdm",
]
STUBBED = []
LAST_DESCRIPTION = {}


def ensure_importable(name):
    try:
        importlib.import_module(name)
        return
    except Exception:
        pass
    mod = types.ModuleType(name)
    mod.__path__ = []
    # the attributes the harness imports by name at module level
    stubs = {
        "accelerate": {"find_executable_batch_size": lambda *a, **k: (lambda f: f)},
        "sqlitedict": {"SqliteDict": object},
        "rouge_score": {"rouge_scorer": types.ModuleType("rouge_scorer"), "scoring": types.ModuleType("scoring")},
        "omegaconf": {"OmegaConf": object},
        "tqdm": {"tqdm": lambda x=None, *a, **k: x},
    }
    for k, v in stubs.get(name, {}).items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, mod)
    STUBBED.append(name)


def load_harness(harness_dir):
    if not os.path.isfile(os.path.join(harness_dir, "lm_eval", "evaluator.py")):
        sys.exit(f"{harness_dir} has no lm_eval/evaluator.py: see the docstring for how to get b281b09")
    sys.path.insert(0, harness_dir)
    for name in OPTIONAL_MODULES:
        ensure_importable(name)
    import lm_eval  # noqa: F401  (the b281b09 package: sys.path[0])

    if not lm_eval.__file__.startswith(os.path.abspath(harness_dir)):
        sys.exit(f"imported lm_eval from {lm_eval.__file__}, not from {harness_dir}")
    # lm_eval/tasks/__init__.py and lm_eval/models/__init__.py import every task and model (and their packages);
    # evaluate() needs neither registry when it is handed Task objects and an LM object, so both packages are
    # registered without running their __init__, and the six task modules are imported one by one.
    for pkg in ["lm_eval.tasks", "lm_eval.models"]:
        mod = types.ModuleType(pkg)
        mod.__path__ = [os.path.join(harness_dir, *pkg.split("."))]
        sys.modules[pkg] = mod
    tasks = {m: importlib.import_module(f"lm_eval.tasks.{m}")
             for m in ["arc", "hellaswag", "hendrycks_test", "truthfulqa", "winogrande", "gsm8k"]}
    for m, mod in tasks.items():
        setattr(sys.modules["lm_eval.tasks"], m, mod)
    base = importlib.import_module("lm_eval.base")
    evaluator = importlib.import_module("lm_eval.evaluator")
    # observe (not change) the description that reaches Task.fewshot_context: evaluate() passes "" (no
    # description_dict), GeneralHendrycksTest.fewshot_context replaces it with its subject line.
    orig_fc = base.Task.fewshot_context

    def fewshot_context(self, doc, num_fewshot, provide_description=None, rnd=None, description=None):
        LAST_DESCRIPTION["value"] = description
        return orig_fc(self, doc=doc, num_fewshot=num_fewshot, provide_description=provide_description, rnd=rnd,
                       description=description)

    base.Task.fewshot_context = fewshot_context
    return base, evaluator, tasks


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class IndexedDoc(dict):
    """A document that remembers its line in the split file; compares and prints exactly like the plain dict."""

    __slots__ = ("line",)


def indexed(rows):
    out = []
    for i, row in enumerate(rows):
        d = IndexedDoc(row)
        d.line = i
        out.append(d)
    return out


def arc_to_hf(row):
    letters = ["A", "B", "C", "D", "E"]
    return {
        "id": row["id"], "question": row["question"],
        "choices": {"text": list(row["choices"]), "label": letters[: len(row["choices"])]},
        "answerKey": letters[row["gold"]],
    }


def truthfulqa_to_hf(row):
    assert row["answer"] == "A", row["task_id"]
    n = len(row["choices"])
    return {
        "question": row["question"],
        "mc1_targets": {"choices": list(row["choices"]), "labels": [1] + [0] * (n - 1)},
        "mc2_targets": {"choices": [], "labels": []},
    }


class StubLM:
    """Answers requests with placeholders; the prompts are the point. Keeps the args it was asked."""

    def __init__(self):
        self.seen = []

    def loglikelihood(self, requests):
        self.seen.extend(("loglikelihood", r) for r in requests)
        return [(-float(len(cont)), False) for _, cont in requests]

    def greedy_until(self, requests):
        self.seen.extend(("greedy_until", r) for r in requests)
        return ["" for _ in requests]

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def run_task(evaluator, task, spec, limit, records):
    """Runs evaluator.evaluate on one task, recording each document's requests as construct_requests makes them."""
    orig_construct = task.construct_requests
    orig_fewshot = task.fewshot_examples
    last_fewshot = {}
    docs_seen = []

    def fewshot_examples(k, rnd):
        ex = orig_fewshot(k=k, rnd=rnd)
        last_fewshot["lines"] = [spec["fewshot_line"](task, e) for e in ex]
        return ex

    def construct_requests(doc, ctx):
        reqs = orig_construct(doc, ctx)
        doc_id = len(docs_seen)  # evaluator.py: enumerate(islice(shuffled docs, 0, limit))
        docs_seen.append(doc.line)
        fewshot_lines = last_fewshot.pop("lines", []) if spec["num_fewshot"] > 0 else []
        for i, req in enumerate(reqs if isinstance(reqs, (list, tuple)) else [reqs]):
            rec = {
                "task": spec["task"], "harness_task": spec["harness_task"], "num_fewshot": spec["num_fewshot"],
                "split": spec["split"], "data_file": spec["data_file"], "doc_index": doc.line, "doc_id": doc_id,
                "request_index": i, "request_type": req.request_type, "context": req.args[0],
            }
            if req.request_type == "loglikelihood":
                rec["continuation"] = req.args[1]
            else:
                rec["generation_args"] = req.args[1]
            rec["description"] = LAST_DESCRIPTION.get("value")
            rec["fewshot_file"] = spec.get("fewshot_file")
            rec["fewshot_indices"] = fewshot_lines
            records.append(rec)
        return reqs

    task.construct_requests = construct_requests
    task.fewshot_examples = fewshot_examples
    lm = StubLM()
    n_before = len(records)
    evaluator.evaluate(
        lm=lm, task_dict={spec["harness_task"]: task}, num_fewshot=spec["num_fewshot"], limit=limit,
        bootstrap_iters=10, description_dict=None,
    )
    mine = records[n_before:]
    got = [(kind, tuple(args)) for kind, args in lm.seen]
    want = [(r["request_type"], (r["context"], r.get("continuation", r.get("generation_args")))) for r in mine]
    # the LM sees requests grouped by type in construction order; every task here has one request type
    assert sorted(map(repr, got)) == sorted(map(repr, want)), "stub LM saw different requests than recorded"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", default=os.environ.get("HARNESS_B281B09"),
                    help="folder with the b281b09 source tree (or env HARNESS_B281B09)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data-dir", default=os.path.join(here, "..", "..", "shared", "data", "leaderboard"))
    ap.add_argument("--out", default=os.path.join(
        here, "..", "crates", "erebor-eval", "tests", "fixtures", "harness_b281b09_prompts.jsonl"))
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--mmlu-subjects", default="abstract_algebra,college_medicine,high_school_government_and_politics")
    ap.add_argument("--truthfulqa-small", default=None,
                    help="a truthful_qa multiple_choice JSONL (mc1_targets + mc2_targets); writes its requests to "
                         "--truthfulqa-small-out (all documents, file order is not kept: harness order)")
    ap.add_argument("--truthfulqa-small-out", default=None)
    args = ap.parse_args()
    if not args.harness:
        sys.exit("give --harness DIR or HARNESS_B281B09=DIR (see the docstring)")
    base, evaluator, T = load_harness(args.harness)
    data = args.data_dir
    files = {}

    def rows(name):
        if name not in files:
            files[name] = read_jsonl(os.path.join(data, name))
        return files[name]

    def make(cls, dataset, *args_):
        orig = base.Task.download
        base.Task.download = lambda self, *a, **k: setattr(self, "dataset", dataset)
        try:
            return cls(*args_)
        finally:
            base.Task.download = orig

    def wrap_split(task, method, cached=False):
        """Make task.<method>() return IndexedDocs (line numbers survive the harness's own shuffle)."""
        orig = getattr(task, method)

        def docs():
            return indexed(list(orig()))

        if cached:  # training docs: built once, as the harness caches them in _training_docs
            built = docs()
            setattr(task, method, lambda: built)
            # ARC's training_docs() caches its own (unindexed) list in _training_docs, which
            # Task.fewshot_examples then prefers: point the cache at the indexed list (same dicts, same order)
            task._training_docs = built
        else:
            setattr(task, method, docs)

    def line_in(task, ex):
        return ex.line

    records = []
    specs = []

    # ARC: test split scored, few-shot from train
    for name, cls in [("arc_easy", T["arc"].ARCEasy), ("arc_challenge", T["arc"].ARCChallenge)]:
        for shots in ([0, 25] if name == "arc_easy" else [25]):
            ds = {"train": [arc_to_hf(r) for r in rows(f"{name}_train.jsonl")],
                  "test": [arc_to_hf(r) for r in rows(f"{name}_test.jsonl")]}
            task = make(cls, ds)
            wrap_split(task, "test_docs")
            wrap_split(task, "training_docs", cached=True)
            specs.append((task, {"task": name, "harness_task": name, "num_fewshot": shots, "split": "test",
                                 "data_file": f"{name}_test.jsonl", "fewshot_file": f"{name}_train.jsonl",
                                 "fewshot_line": line_in}))

    # HellaSwag: validation scored, few-shot from the (already processed) train file
    ds = {"validation": rows("hellaswag_validation.jsonl"), "train": []}
    task = make(T["hellaswag"].HellaSwag, ds)
    hs_train = indexed([{"query": r["query"], "choices": r["choices"], "gold": r["gold"]}
                        for r in rows("hellaswag_train.jsonl")])
    task.training_docs = lambda: hs_train
    task._training_docs = None  # Task.fewshot_examples fills it from training_docs()
    wrap_split(task, "validation_docs")
    specs.append((task, {"task": "hellaswag", "harness_task": "hellaswag", "num_fewshot": 10, "split": "validation",
                         "data_file": "hellaswag_validation.jsonl", "fewshot_file": "hellaswag_train.jsonl",
                         "fewshot_line": line_in}))

    # MMLU: per subject, test scored, the first k dev rows of the subject (file order)
    for subject in args.mmlu_subjects.split(","):
        dev_lines = [i for i, r in enumerate(rows("mmlu_dev.jsonl")) if r["subject"] == subject]
        test_lines = [i for i, r in enumerate(rows("mmlu_test.jsonl")) if r["subject"] == subject]
        ds = {"dev": [rows("mmlu_dev.jsonl")[i] for i in dev_lines],
              "test": [rows("mmlu_test.jsonl")[i] for i in test_lines],
              "validation": []}
        task = make(T["hendrycks_test"].create_task(subject), ds)
        orig_test = task.test_docs

        def test_docs(orig_test=orig_test, test_lines=test_lines):
            out = indexed(list(orig_test()))
            for d, line in zip(out, test_lines):
                d.line = line  # line in mmlu_test.jsonl, not within the subject
            return out

        task.test_docs = test_docs
        processed_dev = [task._process_doc(dict(r)) for r in ds["dev"]]

        def dev_line(task, ex, processed_dev=processed_dev, dev_lines=dev_lines):
            return dev_lines[processed_dev.index(ex)]

        specs.append((task, {"task": f"mmlu_{subject}", "harness_task": f"hendrycksTest-{subject}",
                             "num_fewshot": 5, "split": "test", "data_file": "mmlu_test.jsonl",
                             "fewshot_file": "mmlu_dev.jsonl", "fewshot_line": dev_line}))

    # TruthfulQA MC (validation, 0-shot): mc1 only, see the docstring
    ds = {"validation": [truthfulqa_to_hf(r) for r in rows("truthfulqa_mc1.jsonl")]}
    task = make(T["truthfulqa"].TruthfulQAMultipleChoice, ds)
    wrap_split(task, "validation_docs")
    # scoring (after the requests are built) would fail on the empty mc2 set: mc1 only, with the stub's numbers
    task.process_results = lambda doc, results: {"mc1": float(results.index(max(results)) == 0), "mc2": 0.0}
    specs.append((task, {"task": "truthfulqa_mc", "harness_task": "truthfulqa_mc", "num_fewshot": 0,
                         "split": "validation", "data_file": "truthfulqa_mc1.jsonl", "fewshot_line": line_in}))

    # WinoGrande XL: validation scored, few-shot from train
    ds = {"train": rows("winogrande_xl_train.jsonl"), "validation": rows("winogrande_xl_validation.jsonl")}
    task = make(T["winogrande"].Winogrande, ds)
    wrap_split(task, "validation_docs")
    wrap_split(task, "training_docs", cached=True)
    specs.append((task, {"task": "winogrande", "harness_task": "winogrande", "num_fewshot": 5,
                         "split": "validation", "data_file": "winogrande_xl_validation.jsonl",
                         "fewshot_file": "winogrande_xl_train.jsonl", "fewshot_line": line_in}))

    # GSM8K: test[5:] scored, test[0:5] are the exemplar pool (see the docstring)
    g = [{"question": r["question"], "answer": r["answer"]} for r in rows("gsm8k_test.jsonl")]
    ds = {"train": g[:5], "test": g[5:]}
    task = make(T["gsm8k"].GradeSchoolMath8K, ds)
    orig_gsm_test = task.test_docs

    def gsm_test_docs():
        out = indexed(list(orig_gsm_test()))
        for d in out:
            d.line += 5  # line in gsm8k_test.jsonl
        return out

    task.test_docs = gsm_test_docs
    wrap_split(task, "training_docs", cached=True)  # lines 0..4 of gsm8k_test.jsonl
    specs.append((task, {"task": "gsm8k", "harness_task": "gsm8k", "num_fewshot": 5, "split": "test",
                         "data_file": "gsm8k_test.jsonl", "fewshot_file": "gsm8k_test.jsonl",
                         "fewshot_line": line_in}))

    for task, spec in specs:
        run_task(evaluator, task, spec, args.limit, records)

    with open(args.out, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} requests to {args.out}; stubbed modules: {STUBBED or 'none'}", file=sys.stderr)

    if args.truthfulqa_small:
        small = read_jsonl(args.truthfulqa_small)
        task = make(T["truthfulqa"].TruthfulQAMultipleChoice, {"validation": small})
        wrap_split(task, "validation_docs")
        recs = []
        run_task(evaluator, task, {"task": "truthfulqa_mc", "harness_task": "truthfulqa_mc", "num_fewshot": 0,
                                   "split": "validation", "data_file": os.path.basename(args.truthfulqa_small),
                                   "fewshot_line": line_in}, None, recs)
        n_mc1 = {}
        for r in recs:
            doc = small[r["doc_index"]]
            k1 = len(doc["mc1_targets"]["choices"])
            r["target_set"] = "mc1" if r["request_index"] < k1 else "mc2"
            n_mc1[r["doc_index"]] = k1
        out = args.truthfulqa_small_out or os.path.splitext(args.truthfulqa_small)[0] + "_requests.jsonl"
        with open(out, "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"wrote {len(recs)} truthfulqa requests to {out}", file=sys.stderr)
        # the harness's own mc1/mc2 (TruthfulQAMultipleChoice.process_results) on synthetic log-likelihoods
        # ll = -((len(continuation) * 7919) % 97) / 10, for the requests of one document in request order
        # (mc1 set, then mc2 set)
        metrics = []
        for line, doc in enumerate(small):
            lls = [-((len(r["continuation"]) * 7919) % 97) / 10.0 for r in recs if r["doc_index"] == line]
            m = task.process_results(doc, lls)
            metrics.append({"doc_index": line, "loglikelihoods": lls, "n_mc1": len(doc["mc1_targets"]["choices"]),
                            "mc1": float(m["mc1"]), "mc2": float(m["mc2"])})
        mout = os.path.splitext(out)[0] + "_metrics.json"
        with open(mout, "w", encoding="utf-8") as f:
            json.dump({"loglikelihoods": "-((len(continuation) * 7919) % 97) / 10, synthetic", "docs": metrics},
                      f, indent=1)
            f.write("\n")
        print(f"wrote the harness's mc1/mc2 on synthetic log-likelihoods to {mout}", file=sys.stderr)


if __name__ == "__main__":
    main()
