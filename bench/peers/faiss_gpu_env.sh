# Source from the repo root on the GPU machine:  . bench/peers/faiss_gpu_env.sh
# Unpacks the compact Faiss GPU build (faiss-gpu-cu13-cuvs 1.15.0 from PyPI,
# repacked by bench/peers/faiss_gpu_repack.py: sm_90 cubins only, cuVS stubbed,
# real librmm/rapids_logger) into /tmp and sets PYTHONPATH / LD_LIBRARY_PATH so
# that `import faiss` gives a GPU Faiss.  Nothing of Faiss is in the repository;
# the archive lives in the git-ignored .whl/faissgpu/ (carry ".whl").
# cuVS is NOT available: build GPU indexes with use_cuvs=False (the default of
# this build is True); a cuVS call raises "cuVS not available (stub ...)".
_fg_src=${FAISS_GPU_SRC:-$PWD/.whl/faissgpu/faiss_gpu_cu13_sm90.tar.xz}
_fg_dst=${FAISS_GPU_DST:-/tmp/faissgpu}
if [ ! -f "$_fg_dst/.unpacked" ]; then
    rm -rf "$_fg_dst" && mkdir -p "$_fg_dst" &&
        tar -C "$_fg_dst" -xJf "$_fg_src" &&
        touch "$_fg_dst/.unpacked" ||
        { echo "faiss_gpu_env: cannot unpack $_fg_src" >&2; return 1 2>/dev/null || exit 1; }
fi
# libcudart.so.13 / libcublas.so.13: prefer the ones torch loads (nvidia/cu13/lib
# from its pip packages, so one copy serves both), else the CUDA toolkit's.
_fg_cu=$(python3 -c 'import importlib.util as u, os
s = u.find_spec("nvidia.cu13")
print(next((os.path.join(p, "lib") for p in (s.submodule_search_locations if s else [])
            if os.path.exists(os.path.join(p, "lib", "libcublas.so.13"))), ""))' 2>/dev/null)
for _d in "$_fg_cu" /usr/local/cuda/lib64; do
    if [ -n "$_d" ] && [ -e "$_d/libcudart.so.13" ] && [ -e "$_d/libcublas.so.13" ]; then
        case ":${LD_LIBRARY_PATH:-}:" in *":$_d:"*) ;; *) export LD_LIBRARY_PATH="$_d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
        break
    fi
done
export PYTHONPATH="$_fg_dst${PYTHONPATH:+:$PYTHONPATH}"
# faiss/loader.py would otherwise dlopen nvidia-* / libcuvs pip packages
export _FAISS_WHEEL_DISABLE_CUDA_PRELOAD=1 _FAISS_WHEEL_DISABLE_CUVS_PRELOAD=1
unset _fg_src _fg_dst _fg_cu _d
