# Source from the repo root on the GPU machine:  . bench/peers/cuvs_env.sh
# Unpacks the compact cuVS 26.10 build (cuvs-cu13 and the RAPIDS wheels it
# needs, repacked by bench/peers/cuvs_repack.py: sm_90 cubins only, no JIT-LTO,
# nvJitLink shimmed) into /tmp and sets PYTHONPATH / LD_LIBRARY_PATH so that
# `import cuvs.cluster.kmeans` works. Nothing of cuVS is in the repository; the
# archive lives in the git-ignored .whl/cuvs/ (carry ".whl/cuvs" or ".whl").
# The CUDA 13 libraries (cuBLAS, cuSOLVER, cuSPARSE, cuRAND, NVRTC, nvJitLink,
# NCCL, cuFile), cuda-bindings and numpy are the machine's: those of torch's
# pip packages (site-packages/nvidia/cu13/lib, nvidia/nccl/lib), else the CUDA
# toolkit's. A missing one is named, and the script returns 1.
_cv_src=${CUVS_SRC:-$PWD/.whl/cuvs/cuvs_cu13_sm90.tar.xz}
_cv_dst=${CUVS_DST:-/tmp/cuvs13}
_cv_fail() { echo "cuvs_env: $*" >&2; unset _cv_src _cv_dst _cv_dirs _cv_miss _cv_add _cv_l _cv_d _cv_ok; }
# A machine handed out again can keep /tmp: unpack again when the archive differs.
_cv_stamp=$(stat -c '%s %Y' "$_cv_src" 2>/dev/null)
if [ -z "$_cv_stamp" ]; then
    _cv_fail "no archive $_cv_src (build it here: python3 bench/peers/cuvs_repack.py)"
    return 1 2>/dev/null || exit 1
fi
if [ "$(cat "$_cv_dst/.unpacked" 2>/dev/null)" != "$_cv_stamp" ]; then
    rm -rf "$_cv_dst" && mkdir -p "$_cv_dst" && tar -C "$_cv_dst" -xJf "$_cv_src" &&
        echo "$_cv_stamp" > "$_cv_dst/.unpacked" ||
        { _cv_fail "cannot unpack $_cv_src"; return 1 2>/dev/null || exit 1; }
fi
unset _cv_stamp
# The CUDA libraries: prefer the folders torch loads them from (so one copy
# serves both), then the CUDA toolkit's.
_cv_dirs=$(python3 -c 'import importlib.util as u, os
out = []
for mod, probe in (("nvidia.cu13", "libcublas.so.13"), ("nvidia.nccl", "libnccl.so.2")):
    s = u.find_spec(mod)
    out += [os.path.join(p, "lib") for p in (s.submodule_search_locations if s else [])
            if os.path.exists(os.path.join(p, "lib", probe))][:1]
print(":".join(out))' 2>/dev/null)
_cv_dirs="$_cv_dirs:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib"
_cv_miss=""
_cv_add=""  # the folders that hold them, in order of preference
for _cv_l in libcublas.so.13 libcublasLt.so.13 libcusolver.so.12 libcusparse.so.12 libcurand.so.10 \
             libnvrtc.so.13 libnvJitLink.so.13 libnccl.so.2; do
    _cv_ok=""
    for _cv_d in ${_cv_dirs//:/ }; do
        if [ -e "$_cv_d/$_cv_l" ]; then
            _cv_ok=1
            case ":$_cv_add:" in *":$_cv_d:"*) ;; *) _cv_add="${_cv_add:+$_cv_add:}$_cv_d" ;; esac
            break
        fi
    done
    [ -n "$_cv_ok" ] || _cv_miss="$_cv_miss $_cv_l"
done
if [ -n "$_cv_miss" ]; then
    _cv_fail "missing CUDA libraries:$_cv_miss (looked in ${_cv_dirs//:/ }; cuVS 26.10 needs the CUDA 13 pip packages nvidia-cublas, -cusolver, -cusparse, -curand, -cuda-nvrtc, -nvjitlink, nvidia-nccl-cu13, as torch+cu130 installs them)"
    return 1 2>/dev/null || exit 1
fi
# Ahead of what LD_LIBRARY_PATH held (e.g. a CUDA toolkit's lib64): torch's
# CUDA libraries, and before them the carried ones (libcuvs's own rpath finds
# the shim and libgomp).
export LD_LIBRARY_PATH="$_cv_add${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for _cv_d in rapids_logger librmm libkvikio libraft libcuvs; do
    export LD_LIBRARY_PATH="$_cv_dst/site/$_cv_d/lib64:$LD_LIBRARY_PATH"
done
export PYTHONPATH="$_cv_dst/site${PYTHONPATH:+:$PYTHONPATH}"
# cuda-bindings: the machine's (cuvs, pylibraft and rmm need >= 13.0.1, < 14).
if ! python3 -c 'import cuda.bindings, sys
v = tuple(int(x) for x in cuda.bindings.__version__.split(".")[:3])
sys.exit(not ((13, 0, 1) <= v < (14,)))' 2>/dev/null; then
    _cv_fail "cuda-bindings >= 13.0.1, < 14 not importable here ($(python3 -c 'import cuda.bindings; print(cuda.bindings.__version__)' 2>&1 | tail -1)); carry its cp312 wheel"
    return 1 2>/dev/null || exit 1
fi
# cuda-pathfinder: the machine's, unless it cannot find nvrtc and cufile (libcuvs
# and libkvikio load them through it): then the carried 1.9.1.
_cv_probe='from cuda.pathfinder import load_nvidia_dynamic_lib as f; f("nvrtc"); f("cufile")'
if ! python3 -c "$_cv_probe" 2>/dev/null; then
    export PYTHONPATH="$_cv_dst/fallback:$PYTHONPATH"
    echo "cuvs_env: the machine's cuda-pathfinder cannot load nvrtc/cufile; using the carried 1.9.1" >&2
    if ! python3 -c "$_cv_probe"; then
        _cv_fail "cuda.pathfinder finds no nvrtc or no cufile (pip packages nvidia-cuda-nvrtc, nvidia-cufile)"
        return 1 2>/dev/null || exit 1
    fi
fi
unset _cv_src _cv_dst _cv_dirs _cv_miss _cv_add _cv_l _cv_d _cv_ok _cv_probe
unset -f _cv_fail
