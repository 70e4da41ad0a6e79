#!/usr/bin/env bash
# Builds erebor-model with Burn's LibTorch backend against the PyTorch in .venv (never
# downloading libtorch), in its own target dir so the shared default tree is not rebuilt with
# other features, then runs the parity tests on the LibTorch CPU device and the CPU benchmarks
# (Burn flex, Burn LibTorch CPU and PyTorch eager side by side; needs transformers in the venv).
#
#   python3 -m venv .venv && .venv/bin/pip install torch==2.9.0 transformers
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
  --test lora --test training_api --test gguf --test device --test parity_hf_extra \
  --test parity_bf16 --test gguf_kquant --test fused_attention --lib

if [[ "${1:-}" == "bench" ]]; then
  # SmolLM2-135M-Instruct, the shared GGUF dequantised to an f32 HF folder, so that erebor and
  # PyTorch run the same weights; made with the default (flex) build of `erebor model convert`.
  SMOL_GGUF=${SMOL_GGUF:-../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
  SMOL_HF=${SMOL_HF:-/tmp/smol-hf}
  if [[ ! -f "$SMOL_HF/model.safetensors" ]]; then
    env -u CARGO_TARGET_DIR cargo run -q -p erebor-cli -- model convert "$SMOL_GGUF" "$SMOL_HF"
  fi
  OPT=(--config 'profile.dev.package.erebor-model.opt-level=3')
  cargo build -p erebor-model --features tch --example bench "${OPT[@]}"
  BENCH="$CARGO_TARGET_DIR/debug/examples/bench"
  # Two rounds; in each, every implementation runs the same shapes back to back.
  for round in 1 2; do
    for model in tiny10m "$SMOL_HF"; do
      for device in cpu tch-cpu; do
        "$BENCH" --model "$model" --device "$device" --batch 4 --seq 256 --iters 3
      done
      python scripts/bench_torch_cpu.py "$model"
    done
  done
fi
