#!/usr/bin/env bash
# Parity of erebor's leaderboard evaluation with lm-eval 0.4.13 itself (issue 9), and lm-eval's CPU speed.
#
#   scripts/lm-eval-parity.sh [fixtures|bench|bench-easy|bench-challenge|erebor|all]      (default: fixtures)
#
#   fixtures  lm-eval 0.4.13 (HF backend, float32, CPU, offline) on the shared ARC-Easy test and HellaSwag
#             validation files, 0-shot, first $LIMIT documents, --log_samples; copies the samples (trimmed to those
#             documents) and the results JSON to crates/erebor-eval/tests/fixtures/ so `cargo test` checks parity
#             without Python.
#   bench     lm-eval's documents/s: ARC-Easy test 0-shot ($BENCH_EASY docs) and ARC-Challenge test 25-shot
#             (first $BENCH_CHALLENGE docs, examples from the train file), for BENCHMARKS.md; bench-easy and
#             bench-challenge run one of the two.
#   erebor    erebor on the same documents, then the request-by-request comparison (see the section below).
#
# Needs: .venv-eval with lm-eval, CPU torch and transformers, made once (PyPI only):
#   python3 -m venv .venv-eval && .venv-eval/bin/pip install torch==2.9.0 'lm-eval[hf]==0.4.13'
# and SmolLM2-135M-Instruct as a float32 Hugging Face folder, made by erebor's own converter (the script runs it when
# $MODEL has no config.json):
#   cargo run -q -p erebor-cli -- model convert ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smol-hf
# Nothing is downloaded: HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1, data from $DATA through task YAMLs with
# `dataset_path: json`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=${1:-fixtures}
VENV=${VENV:-$ROOT/.venv-eval}
DATA=${DATA:-$ROOT/../shared/data/leaderboard}
MODEL=${MODEL:-/tmp/smol-hf}
GGUF=${GGUF:-$ROOT/../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
WORK=${WORK:-/tmp/erebor-lm-eval-parity}
LIMIT=${LIMIT:-40}
BATCH=${BATCH:-16}
BENCH_EASY=${BENCH_EASY:-200}
# 12 docs = 48 requests of ~1,000 tokens = 3 batches of 16: about 7 minutes on the shared 2-CPU VM
BENCH_CHALLENGE=${BENCH_CHALLENGE:-12}
FIXTURES=$ROOT/crates/erebor-eval/tests/fixtures
PY=$VENV/bin/python

export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME=$WORK/hf-home TOKENIZERS_PARALLELISM=false

[ -x "$PY" ] || { echo "no $PY: python3 -m venv .venv-eval && .venv-eval/bin/pip install torch==2.9.0 'lm-eval[hf]==0.4.13'" >&2; exit 2; }
[ -d "$DATA" ] || { echo "no data folder $DATA (../shared/data/leaderboard)" >&2; exit 2; }
if [ ! -f "$MODEL/config.json" ]; then
  echo "converting $GGUF -> $MODEL with erebor model convert" >&2
  cargo run -q -p erebor-cli -- model convert "$GGUF" "$MODEL"
fi

# ---- custom lm-eval tasks reading the shared files (the same prompts as lm-eval 0.4.13's arc_easy / hellaswag) ----
TASKS=$WORK/tasks
mkdir -p "$TASKS"
cat > "$TASKS/arc_easy_local.yaml" <<EOF
# lm-eval 0.4.13 tasks/arc/arc_easy.yaml on the shared file, whose rows are {id, question, choices: [str], gold}
task: arc_easy_local
dataset_path: json
dataset_kwargs:
  data_files:
    train: $DATA/arc_easy_train.jsonl
    test: $DATA/arc_easy_test.jsonl
output_type: multiple_choice
training_split: train
test_split: test
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: "{{gold}}"
doc_to_choice: "{{choices}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
EOF
cat > "$TASKS/arc_challenge_25shot_local.yaml" <<EOF
# ARC-Challenge test, 25-shot from the shared train file (lm-eval 0.4's sampler: first-n after its own shuffle)
task: arc_challenge_25shot_local
dataset_path: json
dataset_kwargs:
  data_files:
    train: $DATA/arc_challenge_train.jsonl
    test: $DATA/arc_challenge_test.jsonl
output_type: multiple_choice
training_split: train
fewshot_split: train
test_split: test
num_fewshot: 25
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: "{{gold}}"
doc_to_choice: "{{choices}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
EOF
cat > "$TASKS/hellaswag_local.yaml" <<EOF
# lm-eval 0.4.13 tasks/hellaswag/hellaswag.yaml on the shared validation file (raw HF fields), its own process_docs
task: hellaswag_local
dataset_path: json
dataset_kwargs:
  data_files:
    validation: $DATA/hellaswag_validation.jsonl
output_type: multiple_choice
validation_split: validation
process_docs: !function hellaswag_local_utils.process_docs
doc_to_text: "{{query}}"
doc_to_target: "{{label}}"
doc_to_choice: "choices"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
EOF
cat > "$TASKS/hellaswag_local_utils.py" <<'EOF'
# lm-eval 0.4.13's own HellaSwag preprocessing, unchanged
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401
EOF

# run_lm_eval NAME TASKS LIMIT: one lm_eval call, timed; prints the wall time, writes $WORK/NAME/
run_lm_eval() {
  local name=$1 tasks=$2 limit=$3
  rm -rf "${WORK:?}/$name"
  mkdir -p "$WORK/$name"
  local cmd=(nice -n 10 "$VENV/bin/lm_eval" --model hf
    --model_args "pretrained=$MODEL,dtype=float32"
    --tasks "$tasks" --include_path "$TASKS" --limit "$limit" --device cpu --batch_size "$BATCH"
    --log_samples --output_path "$WORK/$name/out")
  echo "+ ${cmd[*]}" | tee "$WORK/$name/command.txt" >&2
  local load0 t0 t1
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  "${cmd[@]}" > "$WORK/$name/stdout.txt" 2> "$WORK/$name/stderr.txt" || { tail -30 "$WORK/$name/stderr.txt" >&2; exit 1; }
  t1=$(date +%s.%N)
  # the scoring phase alone: tqdm's elapsed time on lm-eval's "Running loglikelihood requests" bar
  local scoring
  scoring=$("$PY" - "$WORK/$name/stderr.txt" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
text = text[text.rfind("Running loglikelihood requests"):]
bars = re.findall(r"(\d+)/(\d+) \[(\d+):(\d+)(?::(\d+))?<", text)
if not bars:
    print("n/a")
else:
    done, total, a, b, c = bars[-1]
    secs = int(a) * 60 + int(b) if not c else int(a) * 3600 + int(b) * 60 + int(c)
    print(f"{secs} s for {done}/{total} requests")
EOF
)
  printf '%s: %.1f s wall (model load, data, contexts, scoring) for %s docs of %s; scoring %s; load average before %s, after %s; %s CPUs; batch size %s\n' \
    "$name" "$(echo "$t1 - $t0" | bc)" "$limit" "$tasks" "$scoring" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(nproc)" "$BATCH" | tee "$WORK/$name/timing.txt" >&2
}

newest() { ls -t $1 2>/dev/null | head -1; }

fixtures() {
  run_lm_eval fixtures arc_easy_local,hellaswag_local "$LIMIT"
  local dir
  dir=$(dirname "$(newest "$WORK/fixtures/out/*/results_*.json")")
  for t in arc_easy hellaswag; do
    # keep the first $LIMIT documents (all of them with --limit), sorted by doc_id, drop nothing else
    "$PY" - "$(newest "$dir/samples_${t}_local_*.jsonl")" "$FIXTURES/lm_eval_samples_${t}.jsonl" "$LIMIT" <<'EOF'
import json, sys
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = sorted((json.loads(l) for l in open(src, encoding="utf-8")), key=lambda r: r["doc_id"])
rows = [r for r in rows if r["doc_id"] < limit]
with open(dst, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"{dst}: {len(rows)} documents from {src}", file=sys.stderr)
EOF
  done
  "$PY" - "$(newest "$dir/results_*.json")" "$FIXTURES/lm_eval_results.json" "$MODEL" <<'EOF'
import json, sys
src, dst, model = sys.argv[1:4]
r = json.load(open(src))
# machine-specific paths and timings out; everything that defines the numbers stays
for k in ["date", "start_time", "end_time", "total_evaluation_time_seconds", "pretty_env_info", "model_source",
          "git_hash", "upper_git_hash", "chat_template", "chat_template_sha", "system_instruction",
          "system_instruction_sha", "task_hashes"]:
    r.pop(k, None)
with open(dst, "w", encoding="utf-8") as f:
    json.dump(r, f, indent=1, ensure_ascii=False, sort_keys=True)
    f.write("\n")
print(f"{dst} from {src}", file=sys.stderr)
EOF
}

bench_easy() { run_lm_eval bench_arc_easy_0shot arc_easy_local "$BENCH_EASY"; }
bench_challenge() { run_lm_eval bench_arc_challenge_25shot arc_challenge_25shot_local "$BENCH_CHALLENGE"; }
bench() {
  bench_easy
  bench_challenge
  cat "$WORK"/bench_*/timing.txt
}

# ---- erebor side ---------------------------------------------------------------------------------------------
# PLACEHOLDER until `erebor eval` exists (issue 9). Its planned form:
#   erebor eval MODEL --tasks arc_easy,hellaswag --harness v0.4 --data-dir DIR --limit N --output DIR
# It must write lm-eval 0.4.13's samples format (samples_<task>_<time>.jsonl: doc_id, arguments
# {"gen_args_i": {"arg_0": context, "arg_1": continuation}}, resps / filtered_resps [["<ll>", "<is_greedy>"], ...]),
# which scripts/lm_eval_parity_compare.py reads from both sides: |ll_erebor - ll_lmeval| <= 1e-3 per request, the
# same acc / acc_norm predictions wherever lm-eval's top two choices differ by more than 2e-3.
erebor() {
  # $EREBOR: an erebor binary, or (default) the workspace's through cargo (dev profile, dependencies optimised).
  local -a bin
  if [[ -n ${EREBOR:-} ]]; then bin=("$EREBOR"); else bin=(cargo run -q -p erebor-cli --); fi
  local out=$WORK/erebor
  rm -rf "$out"
  "${bin[@]}" eval "$MODEL" --tasks arc_easy,hellaswag --num-fewshot 0 --harness v0.4 \
    --data-dir "$DATA" --limit "$LIMIT" --output "$out" --home "$WORK/erebor-home" -q
  local status=0 file
  for t in arc_easy hellaswag; do
    echo "== $t" >&2
    # erebor writes DIR/<model name>/samples_<task>_<time>.jsonl, as lm-eval does
    file=$(find "$out" -name "samples_${t}_*.jsonl" | sort | tail -1)
    [[ -n $file ]] || { echo "no erebor samples file for $t under $out" >&2; status=1; continue; }
    "$PY" scripts/lm_eval_parity_compare.py "$FIXTURES/lm_eval_samples_${t}.jsonl" "$file" || status=1
  done
  return $status
}

case "$MODE" in
  fixtures) fixtures ;;
  bench) bench ;;
  bench-easy) bench_easy ;;
  bench-challenge) bench_challenge ;;
  erebor) erebor ;;
  all) fixtures; bench; erebor ;;
  *) echo "usage: $0 [fixtures|bench|bench-easy|bench-challenge|erebor|all]" >&2; exit 2 ;;
esac
