#!/usr/bin/env bash
# Builds everything scripts/gpu-check.sh runs on a lent GPU machine (which has PyTorch 2.11 with
# CUDA 13 but no Rust toolchain) and packs it into one archive that travels with the working tree:
# the erebor-model parity tests and `bench`, the erebor-train parity tests and
# `bench_preference`, built with `--features tch` against libtorch 2.11, and a copy of the
# hf-tiny fixtures from ../shared (which does not travel).
#
#   pip download torch==2.11.0 --no-deps -d /tmp/torchwhl      # 2.11.0+cu130, as on the device
#   mkdir -p .libtorch/2.11 && unzip -q /tmp/torchwhl/torch-2.11.0-*.whl 'torch/lib/*' \
#       'torch/include/*' 'torch/share/*' -d .libtorch/2.11
#   echo /.gpu/ >> .git/info/exclude
#   scripts/gpu-pack.sh                     # → .gpu/erebor-gpu.tar.xz
#
# Release profile (optimised, as a benchmark needs) without debug info and stripped, in its own
# target folder so neither the shared debug tree nor target/tch is rebuilt. RUSTFLAGS apply to
# the target only (`--target`), not to build scripts: they keep libtorch_cuda.so as a needed
# library (rustc links with --as-needed, and nothing references libtorch_cuda directly, yet it
# must be loaded for LibTorch to register its CUDA backend) and allow libtorch's own CUDA
# dependencies (libcudart, cuBLAS, ...) to be absent at link time: they come from the device's
# PyTorch at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export LIBTORCH=${LIBTORCH:-$ROOT/.libtorch/2.11/torch}
export LIBTORCH_BYPASS_VERSION_CHECK=1   # tch 0.22 expects torch 2.9; its wrapper builds on 2.11
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/tch-gpu}
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export RUSTFLAGS="-C link-arg=-Wl,--no-as-needed -C link-arg=-ltorch_cuda -C link-arg=-Wl,--as-needed -C link-arg=-Wl,--allow-shlib-undefined"
TARGET=x86_64-unknown-linux-gnu
SHARED=${EREBOR_SHARED:-$ROOT/../shared}
ARCHIVE=${ARCHIVE:-$ROOT/.gpu/erebor-gpu.tar.xz}
[[ -f $LIBTORCH/lib/libtorch_cuda.so ]] || { echo "no CUDA libtorch at $LIBTORCH (see the header)" >&2; exit 1; }
[[ -d $SHARED/fixtures/hf-tiny ]] || { echo "no fixtures at $SHARED/fixtures/hf-tiny" >&2; exit 1; }
grep -o "__version__ = '[^']*'" "$LIBTORCH/version.py" 2>/dev/null || true

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/shared/fixtures"

# Builds one package's targets and copies each executable to the stage under its target name.
build() {
  local package=$1; shift
  cargo build --release --target "$TARGET" -p "$package" --features tch "$@" \
    --message-format=json-render-diagnostics |
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        shutil.copy2(msg["executable"], sys.argv[1] + "/" + msg["target"]["name"])
        print("built", msg["target"]["name"], file=sys.stderr)
' "$STAGE/bin"
}
build erebor-model --test parity_logits --test parity_scoring --test generation \
  --test training_api --test checkpoint --test lora --example bench
build erebor-train --test grad_parity --test loss_parity --example bench_preference
strip --strip-all "$STAGE"/bin/*

cp -r "$SHARED/fixtures/hf-tiny" "$STAGE/shared/fixtures/"
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- crates || echo ' (crates/ modified)')"
  echo "built $(date -u +%FT%TZ) on $(uname -m) against $LIBTORCH"
  grep -o "__version__ = '[^']*'" "$LIBTORCH/version.py" || true
} > "$STAGE/BUILD-INFO"
mkdir -p "$(dirname "$ARCHIVE")"
# One xz stream with a dictionary larger than all binaries together: they share most of their
# code, and the archive comes out at less than half the size of a default `xz -6`.
tar -C "$STAGE" -cf - . | xz -T1 --lzma2=preset=6,dict=192MiB > "$ARCHIVE.tmp"
mv "$ARCHIVE.tmp" "$ARCHIVE"
ls -l "$STAGE/bin"
du -h "$ARCHIVE"
