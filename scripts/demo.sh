#!/usr/bin/env bash
# Quick start, command 1: build, then train an IVF index with stock Faiss and
# with flashkmeans side by side on built-in data.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
"${BUILD_DIR:-$root/build}/examples/ivf_demo"
