#!/bin/bash
# A quick kernel experiment on the GPU machine, in one call (the full build,
# tests and benchmarks are run_on_device.sh): build the engine's bench_gpu
# and GPU test binary only (no Faiss, no Python), run the GPU tests matching
# FK_TESTS (a gtest filter, default the assign tests), then bench_gpu once per
# variant (each variant a set of environment assignments, e.g.
# "FK_WG_BLOCK=4" "FK_WG_BLOCK=2", and optionally @case,case to run only
# those cases; the token `baseline` runs the baseline tree's bench_gpu), then
# flash-kmeans on the same cases.
# Baseline: a source tree of another commit in the ignored folder .baseline/
# (git archive <commit> | tar -x -C .baseline), built beside, for A/B of
# code changes in one call.
#   carry: [".gtest-src", ".whl", ".baseline"]
#   FK_CASES="n1M-k1024 n8M-k1024" bench/probe_on_device.sh [variant ...]
#   FK_TESTS: gtest filter (none: no tests); FK_PEERS=0: no flash-kmeans;
#   FK_NCU / FK_NCU_TIMES: see below.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
# A scratch folder under /tmp can hold an earlier call's files (machines are
# handed out again): start it empty.
case $OUT in /tmp/?*) rm -rf "$OUT" ;; esac
mkdir -p "$OUT"
B=/tmp/fk-build
CASES=${FK_CASES:-}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
  nvcc --version | tail -1; } | tee "$OUT/env.txt"
if [ -d "$ROOT/.whl" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$ROOT"/.whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
t0=$SECONDS
{ cmake -S "$ROOT/.gtest-src" -B /tmp/gtest-build -G Ninja -DCMAKE_INSTALL_PREFIX=/tmp/gtest -DBUILD_GMOCK=OFF \
    && ninja -C /tmp/gtest-build install \
    && cmake -S "$ROOT" -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHKMEANS_CUDA=ON \
         -DFLASHKMEANS_CUDA_ARCHS=90a-real -DFLASHKMEANS_BUILD_FAISS=OFF -DCMAKE_PREFIX_PATH=/tmp/gtest \
    && ninja -C $B -j"$(nproc)" bench_gpu flashkmeans_gpu_tests; } > "$OUT/build.log" 2>&1 \
  || { echo "BUILD FAILED"; grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "build ok in $((SECONDS - t0)) s"
if [ -f "$ROOT/.baseline/CMakeLists.txt" ]; then
  { cmake -S "$ROOT/.baseline" -B $B-baseline -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHKMEANS_CUDA=ON \
      -DFLASHKMEANS_CUDA_ARCHS=90a-real -DFLASHKMEANS_BUILD_FAISS=OFF -DFLASHKMEANS_BUILD_TESTS=OFF \
      && ninja -C $B-baseline -j"$(nproc)" bench_gpu; } > "$OUT/build_baseline.log" 2>&1 \
    && echo "baseline built in $((SECONDS - t0)) s" || echo "BASELINE BUILD FAILED"
fi
cuobjdump --dump-resource-usage $B/CMakeFiles/flashkmeans.dir/kernels/assign.cu.o 2>&1 | grep -A1 assign_wgmma \
  | grep -o "REG:[0-9]* STACK:[0-9]* SHARED:[0-9]* LOCAL:[0-9]*" | sort | uniq -c
rc=0
if [ "${FK_TESTS:-Assign*}" != none ]; then
  $B/tests/gpu/flashkmeans_gpu_tests --gtest_filter="${FK_TESTS:-Assign*}" > "$OUT/tests.log" 2>&1 || rc=1
  grep -E "^\[  (PASSED|FAILED)|FAILED  \]" "$OUT/tests.log" | head -20
fi
n=0
for v in "${@:-base}"; do
  n=$((n + 1))
  echo "== variant $n: $v"
  envs=(); vcases=$CASES; bin=$B
  for tok in $v; do
    case $tok in base) ;; baseline) bin=$B-baseline ;; @*) vcases=${tok#@}; vcases=${vcases//,/ } ;; *) envs+=("$tok") ;; esac
  done
  env "${envs[@]}" $bin/bench/bench_gpu "$OUT/bench_v$n.json" $vcases 2>&1 | tee "$OUT/bench_v$n.log" | grep -v "^device"
done
# FK_NCU="env... @case kernel-regex": one profiled launch of the kernel in that case.
if [ -n "${FK_NCU:-}" ]; then
  read -r -a nt <<< "$FK_NCU"
  kre=${nt[-1]}; ncase=${nt[-2]#@}; unset 'nt[-1]' 'nt[-1]'
  env "${nt[@]}" ncu --clock-control none -k "regex:$kre" --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis --section Occupancy \
    --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
    $B/bench/bench_gpu /tmp/ncu.json "$ncase" > "$OUT/ncu.txt" 2>&1
  # The section text has no stall breakdown; the stalled_*_per_issue_active
  # metrics are warps stalled for each reason per issued instruction.
  grep -E "pct_of_peak|Duration|Issue Slots|issue_stalled|Registers|Theoretical Occ|Achieved Occ" "$OUT/ncu.txt" | head -50
fi
# FK_NCU_SASS="[baseline] env... @case kernel-regex[; ...]": where one launch's warps
# stall, per SASS instruction (PC sampling: the source page, with each stall
# reason's samples), as sass_<case>.csv; bench/sass_stalls.py sums it up.
if [ -n "${FK_NCU_SASS:-}" ]; then
  IFS=';' read -r -a specs <<< "$FK_NCU_SASS"
  for spec in "${specs[@]}"; do
    read -r -a nt <<< "$spec"
    kre=${nt[-1]}; ncase=${nt[-2]#@}; unset 'nt[-1]' 'nt[-1]'
    # A leading `baseline` token profiles the baseline tree's build instead.
    bin=$B; tag=$ncase
    if [ "${nt[0]:-}" = baseline ]; then bin=$B-baseline; tag=baseline_$ncase; nt=("${nt[@]:1}"); fi
    env "${nt[@]}" ncu --clock-control none -k "regex:$kre" --launch-skip 3 --launch-count 1 \
      --section SourceCounters --section WarpStateStats -f -o /tmp/sass_prof \
      $bin/bench/bench_gpu /tmp/ncu.json "$ncase" > "$OUT/ncu_sass_$tag.log" 2>&1
    ncu -i /tmp/sass_prof.ncu-rep --page source --csv --print-source sass > "$OUT/sass_$tag.csv" 2>&1
    ncu -i /tmp/sass_prof.ncu-rep --page details --csv > "$OUT/details_$tag.csv" 2>&1
    echo "sass profile $tag: $(wc -l < "$OUT/sass_$tag.csv") lines"; tail -2 "$OUT/ncu_sass_$tag.log"
  done
fi
# FK_NCU_TIMES="@case": the duration of every kernel of that case's first
# iterations (launches 30-59), one line each.
if [ -n "${FK_NCU_TIMES:-}" ]; then
  ncu --clock-control none --launch-skip 30 --launch-count 30 --metrics gpu__time_duration.sum --csv \
    $B/bench/bench_gpu /tmp/ncu.json "${FK_NCU_TIMES#@}" > "$OUT/ncu_times.csv" 2>&1
  python3 - "$OUT/ncu_times.csv" <<'PY'
import csv, re, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 14 and r[12] == "gpu__time_duration.sum"]
for r in rows:
    print(f"{float(r[14].replace(',', '')) / 1e3:10.1f} us  {re.sub(r'[(<].*', '', r[4])[:70]}")
PY
fi
if [ "${FK_PEERS:-1}" = 1 ]; then
  PYTHONUNBUFFERED=1 python3 "$ROOT/bench/peers/run_flash_kmeans.py" "$OUT/bench_flash_kmeans.json" $CASES \
    2>&1 | grep -v Warning | tee "$OUT/bench_flash_kmeans.log"
fi
exit $rc
