#!/usr/bin/env python3
"""Goldens for erebor-eval's port of CPython's `random.Random` (Mersenne Twister MT19937).

lm-evaluation-harness (commit b281b09, the Open LLM Leaderboard v1 harness) draws few-shot examples with
`random.Random()` seeded 42: it shuffles a task's documents with it, then calls `rnd.sample(train_docs, k)` once per
document in shuffled order. erebor ports the generator, `shuffle` and `sample`; this script writes what CPython
itself produces so the Rust port can be tested against it without Python.

Usage (stdlib only, any CPython >= 3.9; the file records the version that wrote it):

    python3 scripts/pyrandom_goldens.py [crates/erebor-eval/tests/fixtures/pyrandom.json]

Big integers (getrandbits with k > 32, seeds >= 2**32) are written as decimal strings as well, so a JSON reader
that goes through f64 loses nothing. Floats are written three ways: JSON number, `repr` and `float.hex`, plus the
exact 53-bit integer `x * 2**53` that `random()` builds from two 32-bit outputs (a >> 5, b >> 6).
"""

import json
import math
import platform
import random
import sys

SEEDS = [42, 0, 1234, 2**40 + 7]
GETRANDBITS_K = [1, 5, 32, 33, 64, 100]
RANDBELOW_N = [1, 2, 3, 7, 10, 100, 1000, 1119, 2251, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1]
SHUFFLE_N = [1, 2, 10, 1000]
# (n, k): pool branch (n <= setsize), set branch (n > setsize), k == n, k near n, boundaries of setsize.
SAMPLE_NK = [
    (1, 1), (5, 0), (5, 5), (10, 3), (10, 9), (10, 10), (30, 29), (100, 5), (100, 25), (276, 25), (277, 25),
    (278, 25), (1000, 100), (1000, 999), (1119, 25), (2251, 5), (2251, 25), (100000, 100), (1045, 100),
    (1046, 100),
]


def setsize(k):
    """CPython's threshold in `Random.sample`: n <= setsize uses the pool algorithm, else the set algorithm."""
    size = 21
    if k > 5:
        size += 4 ** math.ceil(math.log(k * 3, 4))
    return size


def float_record(x):
    return {"value": x, "repr": repr(x), "hex": x.hex(), "int53": str(int(x * 2**53))}


def per_seed(seed):
    out = {"seed": seed, "seed_str": str(seed)}

    r = random.Random(seed)
    out["random"] = [float_record(r.random()) for _ in range(20)]

    gb = {}
    for k in GETRANDBITS_K:
        r = random.Random(seed)
        gb[str(k)] = [str(r.getrandbits(k)) for _ in range(8)]
    out["getrandbits_fresh"] = gb
    if seed == 42:
        # raw MT19937 outputs across two state regenerations (624 words each), for debugging a port.
        r = random.Random(seed)
        out["uint32_first_1300"] = [r.getrandbits(32) for _ in range(1300)]
    r = random.Random(seed)
    out["getrandbits_mixed"] = [
        {"k": k, "value": str(r.getrandbits(k))} for k in [1, 5, 32, 33, 64, 100, 7, 31, 65, 128]
    ]

    rb = {}
    for n in RANDBELOW_N:
        r = random.Random(seed)
        rb[str(n)] = [str(r._randbelow(n)) for _ in range(10)]
    out["randbelow_fresh"] = rb

    r = random.Random(seed)
    calls = [
        ("randrange", [10]), ("randrange", [1, 7]), ("randrange", [0, 100, 5]), ("randrange", [-50, 50]),
        ("randrange", [1000]), ("randrange", [10, 0, -3]), ("randrange", [2**40]),
    ]
    out["randrange_sequence"] = [{"args": a, "value": str(getattr(r, f)(*a))} for f, a in calls]

    sh = {}
    for n in SHUFFLE_N:
        r = random.Random(seed)
        xs = list(range(n))
        r.shuffle(xs)
        sh[str(n)] = xs
    out["shuffle_fresh"] = sh

    samples = []
    for n, k in SAMPLE_NK:
        r = random.Random(seed)
        got = r.sample(range(n), k)
        samples.append(
            {"n": n, "k": k, "setsize": setsize(k), "branch": "pool" if n <= setsize(k) else "set", "result": got,
             "next_random_after": repr(r.random())}
        )
    out["sample_fresh"] = samples

    # sample over a list of dicts: the result is the dicts at the drawn indices (same draw as over range(n)).
    r = random.Random(seed)
    docs = [{"doc": i, "text": f"item {i}"} for i in range(40)]
    picked = r.sample(docs, 6)
    out["sample_dicts"] = {"n": 40, "k": 6, "picked_doc_fields": [d["doc"] for d in picked]}
    return out


def harness_draw(n_docs, n_train, k, seed=42, keep_docs=None):
    """lm-eval b281b09 evaluator.py + base.py: rnd = random.Random(); rnd.seed(42); rnd.shuffle(task_docs);
    then, for each doc in shuffled order, fewshot_examples -> rnd.sample(self._training_docs, k)."""
    rnd = random.Random()
    rnd.seed(seed)
    docs = list(range(n_docs))
    rnd.shuffle(docs)
    train = [{"train_index": i} for i in range(n_train)]
    keep = n_docs if keep_docs is None else keep_docs
    draws = []
    for doc in docs[:keep]:
        draws.append({"doc": doc, "fewshot_train_indices": [t["train_index"] for t in rnd.sample(train, k)]})
    return {
        "seed": seed, "n_docs": n_docs, "n_train": n_train, "k": k, "shuffled_docs": docs,
        "draws_for_first_docs": keep, "draws": draws,
    }


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "crates/erebor-eval/tests/fixtures/pyrandom.json"
    data = {
        "generator": "scripts/pyrandom_goldens.py",
        "python_version": sys.version,
        "python_implementation": platform.python_implementation(),
        "notes": [
            "random.Random(seed) with an int seed: init_by_array(abs(seed) as little-endian 32-bit words; [0] for 0).",
            "random(): a = genrand_uint32() >> 5, b = genrand_uint32() >> 6, (a * 67108864 + b) / 2**53.",
            "getrandbits(k): 32-bit words least significant first; the last word is shifted right by 32 - k % 32.",
            "_randbelow(n): k = n.bit_length(); r = getrandbits(k); while r >= n: r = getrandbits(k).",
            "shuffle(x): for i in reversed(range(1, len(x))): j = _randbelow(i + 1); x[i], x[j] = x[j], x[i].",
            "sample(pop, k): setsize = 21 (+ 4 ** ceil(log(3k, 4)) if k > 5); n <= setsize: pool swap-remove with "
            "_randbelow(n - i); else rejection with _randbelow(n) against a set of picked indices.",
            "randrange(start, stop, step) = start + step * _randbelow(ceil-div width); see the sequence records.",
        ],
        "setsize_by_k": {str(k): setsize(k) for k in range(0, 201)},
        "seeds": [per_seed(s) for s in SEEDS],
        "harness_draws": [
            harness_draw(50, 1119, 25),
            harness_draw(30, 2251, 5),
            # real shapes: ARC-Challenge test (1172 docs) with its train split (1119), 25-shot; first 10 draws.
            harness_draw(1172, 1119, 25, keep_docs=10),
            # HellaSwag validation (10042 docs) with train (39905), 10-shot; shuffled order not stored in full.
            None,
        ],
    }
    hs = harness_draw(10042, 39905, 10, keep_docs=10)
    hs["shuffled_docs_first_100"] = hs.pop("shuffled_docs")[:100]
    data["harness_draws"][-1] = hs
    with open(path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
