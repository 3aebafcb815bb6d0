#!/bin/bash
# On the GPU machine, in one call: build everything (CUDA for sm_90a, the
# Faiss plugin against the carried Debian libfaiss-dev in .deps/, GoogleTest
# from the carried .gtest-src/, the Python module), run every C++ test and the
# Python suite, then the benchmarks: our engine (bench_gpu) and flash-kmeans
# 0.3.1 from its carried wheel, on the same card. Logs and JSON go to $OUT.
# Optional steps: fastkmeans (fastkmeans 0.5.0 from its carried wheel:
# bench/peers/run_fastkmeans.py), faissgpu (Faiss GPU peer, from
# .whl/faissgpu, and the same-data objective comparison), cuvs (cuVS 26.10
# KMeans from .whl/cuvs: bench/peers/run_cuvs.py), plugin (bench_faiss_plugin:
# IVF4096,PQ32 train + add and batched PQ training).
#   carry: [".deps", ".gtest-src", ".whl"] (over 64 MiB with every peer: name
#   the .whl entries the steps need, e.g. ".whl/cuvs")
#   bench/run_on_device.sh [tests] [bench] [peers] [fastkmeans] [faissgpu] [cuvs] [plugin] [case ...]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Logs and JSON are written to a scratch folder and packed into one archive
# in the real $OUT at the end (the device tool returns at most 8 files).
FINAL_OUT=${OUT:-$ROOT/gpu-out}
OUT=/tmp/fk-out-$$  # a fresh name: a re-lent machine has kept earlier calls' files
# A machine handed out again can keep /tmp from an earlier call: start empty.
rm -rf "$OUT"
mkdir -p "$OUT" "$FINAL_OUT"
trap 'tar czf "$FINAL_OUT/results.tgz" -C "$OUT" . ; cp "$OUT"/*.json "$FINAL_OUT"/ 2>/dev/null' EXIT
STEPS=" ${*:-tests bench peers} "
CASES=$(printf '%s\n' "$@" | grep -v -E '^(tests|bench|peers|fastkmeans|faissgpu|cuvs|plugin)$' | tr '\n' ' ')
B=/tmp/fk-build
J=$(nproc)
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -1
  echo "commit: ${FK_COMMIT:-unknown} (as sent by the caller)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [ -d "$ROOT/.whl" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$ROOT"/.whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
# NCCL for the data-parallel tests: the library torch's pip packages ship.
# NVLink multicast (NVLS) stays off in tests and benchmarks.
export NCCL_NVLS_ENABLE=0
if [ -z "${FLASHKMEANS_NCCL_LIBRARY:-}" ]; then
  FLASHKMEANS_NCCL_LIBRARY=$(find /opt /usr -name 'libnccl.so.2' 2>/dev/null | head -1)
  [ -n "$FLASHKMEANS_NCCL_LIBRARY" ] && export FLASHKMEANS_NCCL_LIBRARY
fi
echo "NCCL: ${FLASHKMEANS_NCCL_LIBRARY:-none found}"
t0=$SECONDS
[[ $STEPS == *" tests "* || $STEPS == *" plugin "* || $STEPS == *" faissgpu "* ]] && { cmake -S "$ROOT/.gtest-src" -B /tmp/gtest-build -G Ninja -DCMAKE_INSTALL_PREFIX=/tmp/gtest -DBUILD_GMOCK=OFF \
  && ninja -C /tmp/gtest-build install; } > /tmp/fk-build.log 2>&1
# Benchmarks alone need neither Faiss nor the test suites: build just bench_gpu.
if [[ $STEPS == *" tests "* || $STEPS == *" plugin "* || $STEPS == *" faissgpu "* ]]; then
  # Explicit ON: a bench-only configure earlier in the same build folder
  # (a warm machine) leaves tests and Faiss OFF in the cache.
  CFG=(-DFLASHKMEANS_BUILD_PYTHON=ON -DFLASHKMEANS_BUILD_TESTS=ON -DFLASHKMEANS_BUILD_FAISS=ON
       -DPython_EXECUTABLE="$(command -v python3)"
       -DCMAKE_PREFIX_PATH="$ROOT/.deps/faiss/usr;/tmp/gtest")
  TARGETS=()
else
  CFG=(-DFLASHKMEANS_BUILD_FAISS=OFF -DFLASHKMEANS_BUILD_TESTS=OFF)
  TARGETS=(bench_gpu)
fi
if ! { cmake -S "$ROOT" -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHKMEANS_CUDA=ON \
         -DFLASHKMEANS_CUDA_ARCHS=90a-real "${CFG[@]}" && ninja -C $B -j"$J" "${TARGETS[@]}"; } >> /tmp/fk-build.log 2>&1; then
  echo "BUILD FAILED"; cp /tmp/fk-build.log "$OUT/"; grep -E "error|Error" /tmp/fk-build.log | head -30; exit 1
fi
echo "build ok in $((SECONDS - t0)) s"
rc=0
if [[ $STEPS == *" tests "* ]]; then
  t0=$SECONDS
  (cd $B && ctest --output-on-failure --timeout 300 -j 8) > "$OUT/ctest.log" 2>&1 || rc=1
  # Streaming and the update sum in a run-dependent order: repeat them.
  [ "${FK_REPEAT:-1}" = 0 ] || $B/tests/gpu/flashkmeans_gpu_tests --gtest_filter='Streaming.*:GpuTrainer*:CudaBackend*:DataParallel*' \
    --gtest_repeat=3 > "$OUT/repeat3.log" 2>&1 || rc=1
  [ "${FK_REPEAT:-1}" = 0 ] || echo "repeat x3 (Streaming, GpuTrainer, CudaBackend, DataParallel): $(grep -c '^\[  PASSED  \]' "$OUT/repeat3.log") passed blocks, $(grep -c '^\[  FAILED  \] [A-Z]' "$OUT/repeat3.log") failures"
  grep -E "tests passed|tests failed|Failed|\*\*\*" "$OUT/ctest.log" | head -20
  grep -E "gpu +=|cpu +=" "$OUT/ctest.log"
  PYTHONPATH=$B/python${PYTHONPATH:+:$PYTHONPATH} python3 -m pytest "$ROOT/python/tests" -q -ra \
    -p no:cacheprovider > "$OUT/pytest.log" 2>&1 || rc=1
  tail -3 "$OUT/pytest.log"
  # NCCL probes kernels of other architectures inside ncclCommInitRank and
  # handles the "no kernel image" API errors itself: its test stays out of memcheck.
  # FK_MEMCHECK=0 leaves memcheck out (a quick correctness pass before a benchmark).
  # FK_MEMCHECK_FILTER narrows it (a gtest filter), FK_MEMCHECK_TIMEOUT bounds it (seconds).
  [ "${FK_MEMCHECK:-1}" = 0 ] || timeout "${FK_MEMCHECK_TIMEOUT:-1800}" compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/gpu/flashkmeans_gpu_tests --gtest_filter="${FK_MEMCHECK_FILTER:--DataParallelGpu.OneRankNcclCommunicator}" \
    > "$OUT/memcheck.log" 2>&1 || rc=1
  echo "memcheck (${FK_MEMCHECK_FILTER:-all GPU tests}): $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED)' "$OUT/memcheck.log" | tr '\n' ' ')"
  echo "tests took $((SECONDS - t0)) s"
fi
if [[ $STEPS == *" bench "* ]]; then
  $B/bench/bench_gpu "$OUT/bench_flashkmeans.json" $CASES 2>&1 | tee "$OUT/bench_flashkmeans.log"
fi
if [[ $STEPS == *" peers "* ]]; then
  PYTHONUNBUFFERED=1 python3 "$ROOT/bench/peers/run_flash_kmeans.py" "$OUT/bench_flash_kmeans.json" $CASES \
    2>&1 | grep -v Warning | tee "$OUT/bench_flash_kmeans.log"
fi
# fastkmeans 0.5.0 from its carried wheel (.whl/fastkmeans-0.5.0-py3-none-any.whl).
if [[ $STEPS == *" fastkmeans "* ]]; then
  PYTHONUNBUFFERED=1 python3 "$ROOT/bench/peers/run_fastkmeans.py" "$OUT/bench_fastkmeans.json" $CASES \
    2>&1 | grep -v Warning | tee "$OUT/bench_fastkmeans.log"
fi
if [[ $STEPS == *" faissgpu "* ]]; then
  (
    . "$ROOT/bench/peers/faiss_gpu_env.sh" && export PYTHONUNBUFFERED=1 &&
    PYTHONPATH=$B/python:$PYTHONPATH python3 "$ROOT/bench/peers/objective_vs_faiss_gpu.py" \
      "$OUT/objective_vs_faiss_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/objective_vs_faiss_gpu.log"
    python3 "$ROOT/bench/peers/run_faiss_gpu.py" "$OUT/bench_faiss_gpu.json" \
      ${FAISSGPU_CASES:-n1M-k1024 ivf-n1M-k16384 largeD seed-batched pq-train ivf-pq} 2>&1 \
      | tee "$OUT/bench_faiss_gpu.log"
  ) || rc=1
fi
# cuVS KMeans (float32, device-resident data) from .whl/cuvs; the biggest case
# (~1.8 s an iteration in fp32) only when named.
if [[ $STEPS == *" cuvs "* ]]; then
  (
    . "$ROOT/bench/peers/cuvs_env.sh" &&
    PYTHONUNBUFFERED=1 python3 "$ROOT/bench/peers/run_cuvs.py" "$OUT/bench_cuvs.json" \
      ${CUVS_CASES:-${CASES:-seed-batched seed-k100 n1M-k1024 n8M-k1024 ivf-n1M-k16384 largeD pq-train}} 2>&1 \
      | tee "$OUT/bench_cuvs.log"
  ) || rc=1
fi
if [[ $STEPS == *" plugin "* ]]; then
  OMP_WAIT_POLICY=PASSIVE $B/bench/bench_faiss_plugin --skip-stock --json "$OUT/faiss_plugin_h100.json" \
    2>&1 | tee "$OUT/bench_faiss_plugin.log" || rc=1
fi
exit $rc
