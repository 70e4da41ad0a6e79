#!/usr/bin/env bash
# MMLU 5-shot documents/s on a GPU: erebor (cuda, bf16, MMLU prefix KV reuse) against
# transformers scoring the same requests, on a randomly initialised Qwen2-0.5B-shaped model
# (issue 9). Prepared for a session that is lent a GPU machine (PyTorch 2.11 + CUDA 13 in its
# python3, no Rust toolchain), in two halves:
#
#   scripts/lm-eval-mmlu-gpu.sh pack     # here: builds `erebor` with --features tch against
#                                        # libtorch 2.11 (.libtorch/2.11, see scripts/gpu-pack.sh),
#                                        # packs it with the MMLU files and the SmolLM2 tokenizer
#                                        # into .gpu/mmlu.tar.xz (carry `.gpu`)
#   scripts/lm-eval-mmlu-gpu.sh run      # on the GPU machine, from the repository root; $OUT gets
#                                        # mmlu-gpu.log, mmlu-gpu.json and the samples files
#
# `run`, under one deadline (MMLU_GPU_BUDGET seconds, default 420):
#   1. a Qwen2-0.5B-shaped checkpoint (hidden 896, 24 layers, 14/2 heads, intermediate 4864,
#      vocab 151936, tied embeddings) with random weights (torch.manual_seed(0), std 0.02),
#      saved as bf16 safetensors with the SmolLM2 tokenizer (ids < 49152, inside the vocabulary);
#   2. `erebor eval MODEL --tasks mmlu --harness v0.4 --limit N --device cuda:0 --dtype bf16`
#      (N documents per subject, default 20: 57 x 20 = 1140 questions), timed;
#   3. scripts/lm-eval-mmlu-torch.py: the requests erebor wrote in its samples files, scored by
#      transformers (bf16, cuda, sdpa) as lm-eval's HF backend does (one forward per question,
#      its one-token logits cache; batches of MMLU_GPU_BATCH sorted by length), timed in the same
#      process after one warm-up batch; then the two sets of log-likelihoods compared
#      (largest difference, share of questions with the same argmax).
# Documents/s are documents over wall seconds of the scoring (model load excluded for both:
# erebor's from its own log, transformers' from the script's timer).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-run}
ARCHIVE=${MMLU_GPU_ARCHIVE:-$ROOT/.gpu/mmlu.tar.xz}
SHARED=${EREBOR_SHARED:-$ROOT/../shared}

if [[ $MODE == pack ]]; then
  set -e
  export LIBTORCH=${LIBTORCH:-$ROOT/.libtorch/2.11/torch}
  export LIBTORCH_BYPASS_VERSION_CHECK=1
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/tch-gpu}
  export CARGO_PROFILE_RELEASE_DEBUG=0
  export CARGO_PROFILE_RELEASE_STRIP=symbols
  export RUSTFLAGS="-C link-arg=-Wl,--no-as-needed -C link-arg=-ltorch_cuda -C link-arg=-Wl,--as-needed -C link-arg=-Wl,--allow-shlib-undefined"
  [[ -f $LIBTORCH/lib/libtorch_cuda.so ]] || { echo "no CUDA libtorch at $LIBTORCH (see scripts/gpu-pack.sh)" >&2; exit 1; }
  cargo build --release --target x86_64-unknown-linux-gnu -p erebor-cli --features tch
  STAGE=$(mktemp -d); trap 'rm -rf "$STAGE"' EXIT
  mkdir -p "$STAGE/bin" "$STAGE/data" "$STAGE/tokenizer"
  cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/erebor" "$STAGE/bin/"
  cp "$SHARED"/data/leaderboard/mmlu_{dev,test}.jsonl "$STAGE/data/"
  cp "$SHARED"/tokenizers/smollm2/tokenizer{.json,_config.json} "$STAGE/tokenizer/"
  mkdir -p "$(dirname "$ARCHIVE")"
  tar -C "$STAGE" -cJf "$ARCHIVE" .
  ls -la "$ARCHIVE"
  exit 0
fi

OUT=${OUT:-/tmp/mmlu-gpu-out}
mkdir -p "$OUT"
LOG=$OUT/mmlu-gpu.log
exec > >(tee -a "$LOG") 2>&1
PY=${MMLU_GPU_PYTHON:-python3}
WORK=${MMLU_GPU_WORK:-/tmp/erebor-mmlu-gpu}
LIMIT=${MMLU_GPU_LIMIT:-20}
BATCH=${MMLU_GPU_BATCH:-16}
DEVICE=${MMLU_GPU_DEVICE:-cuda:0}
BUDGET=${MMLU_GPU_BUDGET:-420}
DEADLINE=$((SECONDS + BUDGET))
left() { echo $((DEADLINE - SECONDS)); }
export PYTHONUNBUFFERED=1
TORCH_LIB=$($PY -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
echo "== $(date -u +%FT%TZ) device $DEVICE limit $LIMIT/subject batch $BATCH budget ${BUDGET}s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

rm -rf "$WORK" && mkdir -p "$WORK" && tar -C "$WORK" -xJf "$ARCHIVE" || { echo "no archive $ARCHIVE: run '$0 pack' first"; exit 1; }
MODEL=$WORK/qwen2-0.5b-random
timeout "$(left)" $PY - "$MODEL" "$WORK/tokenizer" <<'PYEOF' || { echo "model creation failed"; exit 1; }
import shutil, sys, torch, transformers
out, tok = sys.argv[1], sys.argv[2]
config = transformers.Qwen2Config(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, initializer_range=0.02,
    torch_dtype="bfloat16",
)
torch.manual_seed(0)
model = transformers.Qwen2ForCausalLM(config).to(torch.bfloat16)
model.save_pretrained(out, safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{tok}/{name}", f"{out}/{name}")
print("saved", out, sum(p.numel() for p in model.parameters()), "parameters")
PYEOF

echo "== erebor eval (cuda bf16)"
START=$SECONDS
timeout "$(left)" "$WORK/bin/erebor" eval "$MODEL" --tasks mmlu --harness v0.4 --limit "$LIMIT" \
  --data-dir "$WORK/data" --device "$DEVICE" --dtype bf16 --batch-size "$BATCH" --no-cache \
  --output "$OUT/erebor" 2> "$OUT/erebor-eval.stderr" | tee "$OUT/erebor-eval.stdout"
RC=${PIPESTATUS[0]}
echo "erebor eval rc=$RC wall $((SECONDS - START))s (model load included)"
tail -5 "$OUT/erebor-eval.stderr"

echo "== transformers on the same requests"
timeout "$(left)" $PY scripts/lm-eval-mmlu-torch.py --model "$MODEL" --samples "$OUT/erebor" \
  --device "${DEVICE/cuda:/cuda:}" --batch-size "$BATCH" --json "$OUT/mmlu-gpu.json"
echo "== done in $((SECONDS))s"
