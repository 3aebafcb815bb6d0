#!/usr/bin/env bash
# Builds the Python extension in an existing CMake build tree (default:
# build/, where scripts/build.sh has already compiled the engine and its CUDA
# kernels, so only the bindings compile here) and runs the pytest suite.
# Installs the pip packages it needs once. torch and cupy are optional: their
# tests skip when absent, as GPU tests do without a GPU.
#   BUILD_DIR=build-py scripts/test_python.sh -DFLASHKMEANS_CUDA=OFF   # a CPU-only tree
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
python=${PYTHON:-python3}

missing=()
for spec in numpy:numpy pytest:pytest nanobind:nanobind scikit_build_core:scikit-build-core faiss:faiss-cpu; do
  "$python" -c "import ${spec%%:*}" 2>/dev/null || missing+=("${spec#*:}")
done
if ((${#missing[@]})); then
  echo "pip installing: ${missing[*]}"
  "$python" -m pip install -q "${missing[@]}"
fi

"$root/scripts/install_deps.sh"
export PATH=$PATH:/usr/local/cuda/bin
cmake -S "$root" -B "$build" -G Ninja -DFLASHKMEANS_BUILD_PYTHON=ON \
  -DPython_EXECUTABLE="$(command -v "$python")" "$@" >/dev/null
cmake --build "$build" --target _flashkmeans --parallel "${JOBS:-$(nproc)}"

cd "$root"
PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest python/tests -p no:cacheprovider -ra -q
