"""lm-eval 0.4.13's GSM8K filters and exact_match on hand-made generations.

Reads the `filter_list` and `metric_list` of lm-eval's own `tasks/gsm8k/gsm8k.yaml`, builds the
filter pipelines with `lm_eval.filters.build_filter_ensemble`, applies them to `Instance`s as
`ConfigurableTask.apply_filters` does, and scores each filtered response with
`exact_match_hf_evaluate` and the yaml's metric settings, as `ConfigurableTask.process_results`
does for `generate_until`. The output is the fixture erebor-eval's tests compare against:

    .venv-eval/bin/python scripts/gsm8k_v04_filters.py \
        > crates/erebor-eval/tests/fixtures/lm_eval_gsm8k_filters.json
"""

import json
import os
import sys

import yaml

import lm_eval
from lm_eval.api.instance import Instance
from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.filters import build_filter_ensemble

# (generation, reference answer). The references are GSM8K-style worked answers ending in
# "#### N"; the generations exercise both patterns: the first vs the last match, `$` and `,`
# inside numbers, trailing periods, negative and decimal numbers, runs of punctuation that the
# flexible pattern takes for a number, full-width digits (not [0-9]), nothing to extract.
CASES = [
    ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", "16 - 3 - 4 = 9 eggs, 9 * 2 = 18\n#### 18"),
    ("The answer is $1,200.", "1200 dollars.\n#### 1200"),
    ("She has 5 apples and gives 2 away, leaving 3", "5 - 2 = 3\n#### 3"),
    ("#### -7.50", "#### -7.5"),
    ("x = -12\n#### -12", "so -12\n#### -12"),
    ("It costs 3.5 dollars. Then 10 more", "#### 3.5"),
    ("", "#### 0"),
    ("Answer: 42.\n\n", "6 * 7 = 42\n#### 42"),
    ("#### 1,234\nso 99", "#### 1234"),
    ("wait... 5", "#### 5"),
    ("a,,b", "#### 0"),
    ("costs \uff15 dollars, or 7", "#### 7"),
    ("The total is 8.\n", "4 + 4 = 8\n#### 8"),
    ("#### $60", "#### 60"),
    ("He pays 2,5 and then #### 25 so 30 total", "#### 25"),
    ("-- 9", "#### 9"),
    ("From 1.5.5 down", "#### 155"),
    ("#### 12 apples", "#### 12"),
]


def gsm8k_yaml():
    path = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "gsm8k", "gsm8k.yaml")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def main():
    config = gsm8k_yaml()
    [metric] = config["metric_list"]
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    ensembles = [
        build_filter_ensemble(
            spec["name"],
            [(step["function"], {k: v for k, v in step.items() if k != "function"}) for step in spec["filter"]],
        )
        for spec in config["filter_list"]
    ]
    instances = [
        Instance(
            request_type="generate_until",
            doc={"question": f"q{i}", "answer": answer},
            arguments=("", {}),
            idx=0,
            metadata=("gsm8k", i, 1),
            resps=[generation],
        )
        for i, (generation, answer) in enumerate(CASES)
    ]
    for ensemble in ensembles:
        ensemble.apply(instances)
    cases = []
    for inst, (generation, answer) in zip(instances, CASES):
        filtered = {e.name: inst.filtered_resps[e.name] for e in ensembles}
        scores = {
            name: exact_match_hf_evaluate(predictions=[value], references=[answer], **kwargs)["exact_match"]
            for name, value in filtered.items()
        }
        cases.append({"generation": generation, "target": answer, "filtered": filtered, "exact_match": scores})
    out = {
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "unknown",
        "filters": [e.name for e in ensembles],
        "metric": metric,
        "cases": cases,
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
