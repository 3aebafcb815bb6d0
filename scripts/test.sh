#!/usr/bin/env bash
# Quick start, command 2: build, then run every test. GPU tests skip with a
# reason when no GPU is visible.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 600 -j "${JOBS:-$(nproc)}"
