#!/usr/bin/env bash
# Configures and builds into $BUILD_DIR (default: build/). The CUDA backend is
# built when nvcc is found (sm_80, sm_90a and compute_90 PTX).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install_deps.sh"
export PATH=$PATH:/usr/local/cuda/bin
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" --parallel "${JOBS:-$(nproc)}"
