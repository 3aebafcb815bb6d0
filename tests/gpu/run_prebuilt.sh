#!/bin/bash
# Run GPU tests + timing from binaries built on the workstation (saves device
# build time): tests/gpu/run_prebuilt.sh DIR [sanitize]. DIR holds
# flashkmeans_gpu_tests, assign_timing and the shared libraries they need.
set -u
DIR=$(cd "$1" && pwd); shift
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
"$DIR/flashkmeans_gpu_tests" > "$OUT/tests.log" 2>&1; trc=$?
echo "tests rc $trc"; grep -E "Failure|FAILED|Expected|Which is|actual" "$OUT/tests.log" | head -20; tail -3 "$OUT/tests.log"
if [ $trc -ne 0 ]; then
  echo "--- retry assign tests with FK_WGMMA_SWAP=1"
  FK_WGMMA_SWAP=1 "$DIR/flashkmeans_gpu_tests" --gtest_filter='Cases/AssignTest*' 2>&1 | tail -3
fi
if [ -n "${FK_TEST_ENV:-}" ]; then  # the assign tests again under another setting
  echo "--- assign tests with $FK_TEST_ENV"
  env $FK_TEST_ENV "$DIR/flashkmeans_gpu_tests" --gtest_filter='Cases/AssignTest*:CudaBackend*:*Trainer*' 2>&1 | grep -E "Failure|FAILED|PASSED" | head -8
fi
"$DIR/assign_timing" 2>&1 | tee "$OUT/timing.log"
if [ "${1:-}" = sanitize ] && [ $trc -eq 0 ]; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "$DIR/flashkmeans_gpu_tests" > "$OUT/memcheck.log" 2>&1
  echo "memcheck exit $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED)' "$OUT/memcheck.log" | tr '\n' ' ')"
  F='Cases/AssignTest.*B1_n300_k300_d96*:Cases/AssignTest.*B3_n333*:Cases/AssignTest.*d128*:Cases/AssignTest.*t0_p3*:CudaSearch.*:CudaBackend.UpdateWeighted*'
  timeout 120 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 "$DIR/flashkmeans_gpu_tests" --gtest_filter="$F" > "$OUT/racecheck.log" 2>&1
  echo "racecheck exit $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED)' "$OUT/racecheck.log" | tr '\n' ' ')"
  timeout 60 compute-sanitizer --tool synccheck --error-exitcode 9 "$DIR/flashkmeans_gpu_tests" --gtest_filter="$F" > "$OUT/synccheck.log" 2>&1
  echo "synccheck exit $?: $(grep -E 'ERROR SUMMARY' "$OUT/synccheck.log" | tail -1)"
fi
exit $trc
