#!/bin/bash
# Build the GPU tests (standalone configuration of tests/gpu), run them, run
# compute-sanitizer memcheck + racecheck on them, and time the kernels.
# Logs go to $OUT (the device tool's output folder) or ./gpu-out.
#   tests/gpu/run_on_device.sh [all|tests|sanitize|timing]...
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-/tmp/build-gpu}
STEPS=${*:-all}
has() { [[ " $STEPS " == *" all "* || " $STEPS " == *" $1 "* ]]; }

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -1
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo none)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# The full project first (adds the trainer-vs-CPU tests); if its dependencies
# (BLAS, OpenMP, GoogleTest) are missing there, the standalone GPU tests.
GT=""
[ -d "$ROOT/.gtest-src" ] && GT="-DFK_GTEST_SOURCE_DIR=$ROOT/.gtest-src"
PREFIX=""
if [ -d "$ROOT/.gtest-src" ] && ! ls /usr/lib/x86_64-linux-gnu/cmake/GTest /usr/local/lib/cmake/GTest >/dev/null 2>&1; then
  { cmake -S "$ROOT/.gtest-src" -B /tmp/gtest-build -G Ninja -DCMAKE_INSTALL_PREFIX=/tmp/gtest-install -DBUILD_GMOCK=OFF &&
    ninja -C /tmp/gtest-build install; } > "$OUT/build.log" 2>&1 && PREFIX="-DCMAKE_PREFIX_PATH=/tmp/gtest-install"
fi
MODE=full
if ! { cmake -S "$ROOT" -B "$BUILD" -G Ninja -DFLASHKMEANS_CUDA=ON -DFLASHKMEANS_BUILD_FAISS=OFF \
         -DFLASHKMEANS_BUILD_BENCH=OFF -DFLASHKMEANS_CUDA_ARCHS=90a-real $PREFIX &&
       ninja -C "$BUILD" -j"$(nproc)" flashkmeans_gpu_tests; } >> "$OUT/build.log" 2>&1; then
  MODE=standalone
  BUILD=$BUILD-standalone
  if ! { cmake -S "$ROOT/tests/gpu" -B "$BUILD" -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real $GT &&
         ninja -C "$BUILD" -j"$(nproc)"; } >> "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"; exit 1
  fi
else
  BUILD=$BUILD/tests/gpu
  # the timing aid is built by the standalone configuration only
  if has timing; then
    { cmake -S "$ROOT/tests/gpu" -B /tmp/build-timing -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real $GT &&
      ninja -C /tmp/build-timing -j"$(nproc)" assign_timing && cp /tmp/build-timing/assign_timing "$BUILD/"; } >> "$OUT/build.log" 2>&1
  fi
fi
echo "build ok ($MODE)" | tee -a "$OUT/env.txt"
BIN=$BUILD/flashkmeans_gpu_tests
rc=0
if has tests; then
  "$BIN" > "$OUT/tests.log" 2>&1 || rc=1
  grep -E "measured|Failure|FAILED|Expected|Which is|actual|seed" "$OUT/tests.log" | head -60
  tail -4 "$OUT/tests.log"
fi
if has sanitize; then
  compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN" > "$OUT/memcheck.log" 2>&1
  echo "memcheck exit $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED)' "$OUT/memcheck.log" | tr '\n' ' ')"
  F='Cases/AssignTest.*B1_n300_k300_d96*:Cases/AssignTest.*B3_n333*:Cases/AssignTest.*d1000_t1*:Cases/AssignTest.*t0_p3*:CudaSearch.*:CudaBackend.UpdateWeighted*'
  compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 "$BIN" --gtest_filter="$F" > "$OUT/racecheck.log" 2>&1
  echo "racecheck exit $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED)' "$OUT/racecheck.log" | tr '\n' ' ')"
  compute-sanitizer --tool synccheck --error-exitcode 9 "$BIN" --gtest_filter="$F" > "$OUT/synccheck.log" 2>&1
  echo "synccheck exit $?: $(grep -E 'ERROR SUMMARY' "$OUT/synccheck.log" | tail -1)"
fi
if has timing; then
  "$BUILD/assign_timing" 2>&1 | tee "$OUT/timing.log"
fi
exit $rc
