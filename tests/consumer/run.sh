#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds and runs a
# separate project that uses find_package(flashkmeans).
set -euo pipefail
build=$1 src=$2 work=$3
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# The dependencies (Faiss, ...) are found where the project's own build found them.
prefixes=$(sed -n 's/^CMAKE_PREFIX_PATH:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix${prefixes:+;$prefixes}" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
