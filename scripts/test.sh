#!/usr/bin/env bash
# Quick start, command 2: build, then run every test: the C++ suites (ctest)
# and the Python suite (pytest). GPU tests skip with a reason when no GPU is
# visible. Both suites always run; the exit code is non-zero if either fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
# Two test processes share two cores: OpenMP threads must sleep, not spin, while waiting.
export OMP_WAIT_POLICY=PASSIVE
rc=0
(cd "$build" && ctest --output-on-failure --timeout 600 -j "${JOBS:-$(nproc)}") || rc=$?
BUILD_DIR=$build "$root/scripts/test_python.sh" || rc=$?
exit $rc
