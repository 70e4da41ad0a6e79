#!/usr/bin/env bash
# Every GPU check of erebor in one run, for a lent GPU machine (PyTorch 2.11 + CUDA 13 in its
# python3, no Rust toolchain): run from the repository root after scripts/gpu-pack.sh has put
# the prebuilt binaries and fixtures in .gpu/erebor-gpu.tar.xz (carry `.gpu`).
#
#   scripts/gpu-check.sh                  # on the GPU machine; writes $OUT/gpu-check.log
#   GPU_CHECK_DEVICE=tch-cpu GPU_CHECK_PYTHON=.venv-gpu/bin/python scripts/gpu-check.sh
#                                         # rehearsal on a CPU machine: same archive, tiny shapes
#
# Stages, each under `timeout` and within one overall deadline (GPU_CHECK_BUDGET seconds), a
# failure recorded without stopping the rest:
#   smoke       erebor's forward on the device, one tiny model (a hang here skips erebor's stages)
#   (a) parity  erebor-model and erebor-train parity tests against the hf-tiny PyTorch references,
#               with EREBOR_TEST_DEVICE set to the device
#   (b) LM step erebor `bench` (forward scoring + train step), then PyTorch eager, same shape
#   (c) DPOP    erebor `bench_preference`, then scripts/bench_dpop_torch.py, same shape
#   (d) memory  each stage's peak GPU memory (nvidia-smi every 100 ms, minus the idle reading
#               before the stage) against erebor-model's estimate for the same shape
# then a summary table (also $OUT/gpu-check-summary.txt and $OUT/gpu-check.json).
#
# Settings (environment): GPU_CHECK_DEVICE (cuda:0 | tch-cpu), GPU_CHECK_PYTHON (python3),
# GPU_CHECK_TORCH (2.11.0: the run stops at once on another version), GPU_CHECK_ARCHIVE,
# GPU_CHECK_WORK (unpacked to; /tmp/erebor-gpu), GPU_CHECK_BUDGET (400), GPU_CHECK_MODEL,
# GPU_CHECK_DTYPE, GPU_CHECK_BATCH, GPU_CHECK_SEQ, GPU_CHECK_ITERS, GPU_CHECK_PAIRS,
# GPU_CHECK_STEPS (defaults: qwen2-0.5b bf16 8 512 10 8 10 on CUDA; tiny10m bf16 2 64 2 2 2
# for the rehearsal).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

DEVICE=${GPU_CHECK_DEVICE:-cuda:0}
PY=${GPU_CHECK_PYTHON:-python3}
WANT_TORCH=${GPU_CHECK_TORCH:-2.11.0}
ARCHIVE=${GPU_CHECK_ARCHIVE:-$ROOT/.gpu/erebor-gpu.tar.xz}
WORK=${GPU_CHECK_WORK:-/tmp/erebor-gpu}
BUDGET=${GPU_CHECK_BUDGET:-400}
if [[ $DEVICE == cuda* ]]; then
  TORCH_DEVICE=cuda
  D_MODEL=qwen2-0.5b D_BATCH=8 D_SEQ=512 D_ITERS=10 D_PAIRS=8 D_STEPS=10
else
  TORCH_DEVICE=cpu
  D_MODEL=tiny10m D_BATCH=2 D_SEQ=64 D_ITERS=2 D_PAIRS=2 D_STEPS=2
fi
MODEL=${GPU_CHECK_MODEL:-$D_MODEL}
DTYPE=${GPU_CHECK_DTYPE:-bf16}
BATCH=${GPU_CHECK_BATCH:-$D_BATCH}
SEQ=${GPU_CHECK_SEQ:-$D_SEQ}
ITERS=${GPU_CHECK_ITERS:-$D_ITERS}
PAIRS=${GPU_CHECK_PAIRS:-$D_PAIRS}
STEPS=${GPU_CHECK_STEPS:-$D_STEPS}
DEADLINE=$(($(date +%s) + BUDGET))
BIN=$WORK/bin
LOGS=$WORK/logs
STAGES=$WORK/stages.tsv

have() { command -v "$1" > /dev/null 2>&1; }

gpu_memory_used() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2> /dev/null | head -1
}

# stage NAME TIMEOUT COMMAND...: runs COMMAND under `timeout` (cut to what the deadline leaves),
# its output into the log and $LOGS/NAME.log, samples GPU memory meanwhile, and appends
# name, status, rc, milliseconds, idle MiB, peak MiB to $STAGES.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$((DEADLINE - $(date +%s) - 5))
  if ((left < 15)); then
    echo "=== $name: SKIPPED, the overall budget of ${BUDGET}s is spent"
    printf '%s\tskipped\t-\t0\t-\t-\n' "$name" >> "$STAGES"
    return
  fi
  ((limit > left)) && limit=$left
  echo
  echo "=== $name ($(date -u +%T), timeout ${limit}s): $*"
  local idle=- peak=- sampler=
  if have nvidia-smi; then
    idle=$(gpu_memory_used)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 \
      > "$LOGS/$name.mem" 2> /dev/null &
    sampler=$!
  fi
  local t0 ms rc status
  t0=$(date +%s%N)
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [[ -n $sampler ]]; then
    kill "$sampler" 2> /dev/null
    wait "$sampler" 2> /dev/null
    peak=$(sort -n "$LOGS/$name.mem" | tail -1)
    peak=${peak:--}
  fi
  case $rc in
    0) status=ok ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAILED ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$ms" "$idle" "$peak" >> "$STAGES"
  echo "=== $name: $status (rc $rc)"
}

main() {
  echo "=== erebor gpu-check $(date -u +%FT%TZ) on $(uname -n) ($(uname -m)), device $DEVICE"
  echo "shape: model $MODEL dtype $DTYPE batch $BATCH seq $SEQ iters $ITERS pairs $PAIRS steps $STEPS; budget ${BUDGET}s"
  if have nvidia-smi; then
    nvidia-smi
  else
    echo "no nvidia-smi here: GPU memory is not sampled"
  fi
  local torch_version
  torch_version=$("$PY" -c 'import sys, torch
print(torch.__version__)
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| cuda available", torch.cuda.is_available(), file=sys.stderr)') || {
    echo "ABORT: $PY cannot import torch"
    return 2
  }
  if [[ $torch_version != "$WANT_TORCH"* ]]; then
    echo "ABORT: $PY has torch $torch_version; the binaries were built against $WANT_TORCH"
    return 2
  fi
  # The device's libtorch, and the CUDA libraries of its nvidia-* packages beside it.
  local torch_lib site
  torch_lib=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  site=$(dirname "$(dirname "$torch_lib")")
  local nvidia_libs
  nvidia_libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2> /dev/null | sort | tr '\n' ':')
  export LD_LIBRARY_PATH="$torch_lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

  rm -rf "$WORK"
  mkdir -p "$WORK" "$LOGS"
  : > "$STAGES"
  echo "=== unpacking $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) to $WORK"
  if have xz; then
    tar -xJf "$ARCHIVE" -C "$WORK" || { echo "ABORT: cannot unpack"; return 2; }
  else
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
      "$ARCHIVE" "$WORK" || { echo "ABORT: cannot unpack"; return 2; }
  fi
  cat "$WORK/BUILD-INFO"
  export EREBOR_SHARED=$WORK/shared
  # Test binaries find tracked fixtures (tests/fixtures/lora-llama) through the checkout path
  # they were built in; point it at this copy when nothing is there.
  local built_root=/work/main
  if [[ ! -e $built_root ]]; then
    mkdir -p "$(dirname "$built_root")" && ln -s "$ROOT" "$built_root" &&
      echo "linked $built_root -> $ROOT"
  elif [[ $(realpath "$built_root") != "$(realpath "$ROOT")" ]]; then
    echo "note: $built_root exists and is not this checkout; tests read tracked fixtures there"
  fi
  if have ldd; then
    echo "=== LibTorch as bench loads it, and any library not found:"
    ldd "$BIN/bench" | grep -E 'not found|^\s*lib(torch_cuda|torch_cpu|c10_cuda|cudart)[^ ]* =>' || true
  fi

  # smoke: a hang here means LibTorch cannot use the device; erebor's other stages are skipped.
  stage smoke 60 "$BIN/bench" --model tiny10m --device "$DEVICE" --dtype "$DTYPE" \
    --batch 1 --seq 16 --iters 1 --skip-train
  local erebor=1
  [[ $(tail -1 "$STAGES" | cut -f2) == TIMEOUT ]] && erebor=0

  # (a) parity against the PyTorch references, on the device.
  if ((erebor)); then
    export EREBOR_TEST_DEVICE=$DEVICE
    local test
    for test in parity_logits parity_scoring generation training_api checkpoint lora \
      grad_parity loss_parity; do
      stage "test-$test" 60 "$BIN/$test" --nocapture
    done
    unset EREBOR_TEST_DEVICE
  fi

  # (b) LM forward scoring and train step, erebor then PyTorch eager.
  if ((erebor)); then
    stage bench-erebor 150 "$BIN/bench" --model "$MODEL" --device "$DEVICE" --dtype "$DTYPE" \
      --batch "$BATCH" --seq "$SEQ" --iters "$ITERS"
  fi
  stage bench-torch 150 "$PY" scripts/bench_torch_cpu.py "$MODEL" "$TORCH_DEVICE" "$DTYPE" \
    "$BATCH" "$SEQ" "$ITERS"

  # (c) DPOP step, erebor then PyTorch eager.
  if ((erebor)); then
    stage dpop-erebor 180 "$BIN/bench_preference" --model "$MODEL" --device "$DEVICE" \
      --precision "$DTYPE" --pairs "$PAIRS" --seq "$SEQ" --steps "$STEPS"
  fi
  stage dpop-torch 150 "$PY" scripts/bench_dpop_torch.py "$MODEL" "$TORCH_DEVICE" "$DTYPE" \
    "$PAIRS" "$SEQ" "$STEPS"

  # (d) and the summary.
  echo
  "$PY" "$ROOT/scripts/gpu_check_summary.py" "$STAGES" "$LOGS" "$OUT"
}

main 2>&1 | tee "$OUT/gpu-check.log"
