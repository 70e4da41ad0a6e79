#!/usr/bin/env bash
# Builds erebor-model with Burn's LibTorch backend against the PyTorch in .venv (never
# downloading libtorch), in its own target dir so the shared default tree is not rebuilt with
# other features, then runs the parity tests on the LibTorch CPU device and the CPU benchmarks
# (flex and LibTorch side by side).
#
#   python3 -m venv .venv && .venv/bin/pip install torch==2.9.0
#   scripts/tch-cpu-check.sh            # tests
#   scripts/tch-cpu-check.sh bench      # tests, then benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export LIBTORCH_USE_PYTORCH=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/tch}
TORCH_LIB=$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
python -c 'import torch; print("torch", torch.__version__)'

EREBOR_TEST_DEVICE=tch-cpu cargo test -p erebor-model --features tch \
  --test parity_logits --test parity_scoring --test generation --test checkpoint \
  --test lora --test training_api --test gguf --test device --lib

if [[ "${1:-}" == "bench" ]]; then
  SMOL=${SMOL:-../shared/models/smollm2-135m-instruct}
  cargo build -p erebor-model --features tch --example bench
  BENCH="$CARGO_TARGET_DIR/debug/examples/bench"
  for model in tiny10m "$SMOL"; do
    for device in cpu tch-cpu; do
      "$BENCH" --model "$model" --device "$device" --batch 4 --seq 256 --iters 3
    done
  done
fi
