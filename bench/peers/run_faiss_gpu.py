"""Faiss GPU (faiss-gpu-cu13-cuvs 1.15.0 from PyPI, repacked for the H100 by
bench/peers/faiss_gpu_repack.py; `. bench/peers/faiss_gpu_env.sh` first) on the
BENCH.md cases, on the same card and in the same session as bench_gpu.

k-means: faiss.Kmeans on a GpuIndexFlatL2 (what Kmeans(gpu=True) builds, but
with use_cuvs=False: this wheel defaults to cuVS, which is stubbed out here;
use_cuvs=False is the classic Faiss GPU path that the non-cuVS faiss-gpu wheels
take by default). Data: float32 normal, made like run_flash_kmeans.py does
(torch.randn on the GPU, generator seed 1234) and handed to Faiss as host
numpy, the input faiss.Kmeans takes (it runs the centroid update on the CPU;
a torch CUDA tensor is not accepted, see the "torch-cuda-input" entry).
max_points_per_centroid = 10^9 (no subsampling), early_stop_threshold = -1
(Faiss 1.15 stops when the objective is exactly unchanged otherwise).
ms per iteration = (time of a 13-iteration run - time of a 3-iteration run) / 10,
after a 3-iteration warm-up run, median of 3 repeats; for the batched cases the
B problems run one after another and the times are sums. Each case is run in
fp32 and again with GpuIndexFlatConfig.useFloat16 (fp16 centroids and queries
in the distance GEMM), dtype "float16" in the JSON.

Extra entries: "ivf-n1M-k16384-obj20" (final objective kmeans.obj[-1] of a
20-iteration fp32 run, seed 1234, on the ivf-n1M-k16384 data), "ivf-pq"
(the GPU twin of index_factory(128, "IVF4096,PQ32"): GpuIndexIVFPQ(res, 128,
4096, 32, 8) with use_cuvs=False, as index_cpu_to_gpu would make it; train on
1M clustered vectors, then add 1M; seconds, median of 3 after a warm-up), "torch-cuda-input" (whether Kmeans.train takes a CUDA
tensor with faiss.contrib.torch_utils loaded).

Usage: python3 run_faiss_gpu.py out.json [case ...] [--no-fp16] [--repeats=N]
"""
import json
import os
import statistics
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # numpy data and nvidia-smi then
    torch = None

import faiss

CASES = {
    # name: (B, N, K, D)
    "n1M-k1024": (1, 1 << 20, 1024, 128),
    "ivf-n1M-k16384": (1, 1 << 20, 16384, 128),
    "ivf-n4M-k65536": (1, 1 << 22, 65536, 128),
    "largeD": (1, 1 << 18, 1024, 1024),
    "seed-batched": (32, 75600, 1000, 128),
    "pq-train": (32, 1 << 16, 256, 4),
    # small checks, not in the default list
    "smoke-kmeans": (1, 100000, 256, 128),
}
EXTRA = ["ivf-n1M-k16384-obj20", "ivf-pq", "torch-cuda-input"]
DEFAULT = ["n1M-k1024", "ivf-n1M-k16384", "ivf-n4M-k65536", "largeD",
           "seed-batched", "pq-train"] + EXTRA
SEED = 1234
NO_SUBSAMPLING = 10 ** 9


def sync():
    if torch is not None:
        torch.cuda.synchronize()


def make_data(B, N, D):
    """float32 normal (B, N, D) on the host, the same numbers as run_flash_kmeans.py
    makes for a float32 case (torch CUDA generator seeded 1234)."""
    if torch is not None:
        g = torch.Generator(device="cuda").manual_seed(SEED)
        x = torch.randn(B, N, D, device="cuda", dtype=torch.float32, generator=g)
        out = x.cpu().numpy()
        del x
        torch.cuda.empty_cache()
        return out
    return np.random.default_rng(SEED).standard_normal((B, N, D), dtype=np.float32)


def flat_index(res, d, fp16):
    cfg = faiss.GpuIndexFlatConfig()
    cfg.device = 0
    cfg.use_cuvs = False
    cfg.useFloat16 = fp16
    return faiss.GpuIndexFlatL2(res, d, cfg)


def kmeans(res, x, k, niter, fp16, seed=SEED):
    """One faiss.Kmeans fit on host float32 x (n, d); returns (seconds, Kmeans)."""
    n, d = x.shape
    km = faiss.Kmeans(d, k, niter=niter, seed=seed, max_points_per_centroid=NO_SUBSAMPLING,
                      early_stop_threshold=-1.0)
    km.index = flat_index(res, d, fp16)
    sync()
    t0 = time.perf_counter()
    km.train(x)
    sync()
    t = time.perf_counter() - t0
    if len(km.obj) != niter:
        raise RuntimeError(f"ran {len(km.obj)} iterations, asked {niter}")
    return t, km


def timed_case(res, x, K, fp16, repeats):
    B = x.shape[0]
    kmeans(res, x[0], K, 3, fp16)  # warm-up: cuBLAS handle, temp memory, kernel loading
    per_iter = []
    for _ in range(repeats):
        t_short = sum(kmeans(res, x[b], K, 3, fp16)[0] for b in range(B))
        t_long = sum(kmeans(res, x[b], K, 13, fp16)[0] for b in range(B))
        per_iter.append((t_long - t_short) / 10 * 1e3)
    return per_iter


def clustered(rng, centers, n, sigma=0.3):
    a = rng.integers(0, centers.shape[0], size=n)
    x = centers[a]
    x += sigma * rng.standard_normal(x.shape, dtype=np.float32)
    return x


def ivf_pq(res, repeats, n=1000000, nlist=4096, factory="IVF4096,PQ32", d=128):
    """Train on n clustered vectors (nlist Gaussian blobs), then add n more."""
    rng = np.random.default_rng(SEED)
    centers = rng.standard_normal((nlist, d), dtype=np.float32)
    xt = clustered(rng, centers, n)
    xb = clustered(rng, centers, n)
    # The GpuIndexIVFPQ that index_cpu_to_gpu(index_factory(d, factory)) makes,
    # built directly: the cloner copies the coarse quantizer with default
    # GpuClonerOptions (use_cuvs=True in this cuVS build, whatever co says), and
    # cuVS is stubbed out; the constructor gives the quantizer our use_cuvs=False.
    cpu = faiss.index_factory(d, factory)
    cfg = faiss.GpuIndexIVFPQConfig()
    cfg.device = 0
    cfg.use_cuvs = False

    def once():
        idx = faiss.GpuIndexIVFPQ(res, d, cpu.nlist, cpu.pq.M, cpu.pq.nbits, faiss.METRIC_L2, cfg)
        sync()
        t0 = time.perf_counter()
        idx.train(xt)
        sync()
        t1 = time.perf_counter()
        idx.add(xb)
        sync()
        t2 = time.perf_counter()
        assert idx.ntotal == n, idx.ntotal
        kind = type(idx).__name__
        del idx
        return t1 - t0, t2 - t1, kind

    once()  # warm-up
    runs = [once() for _ in range(repeats)]
    tr = [r[0] for r in runs]
    ad = [r[1] for r in runs]
    return {"case": "ivf-pq", "index": factory, "gpu_index": runs[0][2], "use_cuvs": False,
            "N_train": n, "N_add": n, "D": d, "data": f"{nlist} Gaussian blobs, sigma 0.3",
            "train_s": statistics.median(tr), "add_s": statistics.median(ad),
            "repeats_train_s": tr, "repeats_add_s": ad}


def torch_probe(res):
    if torch is None:
        return {"case": "torch-cuda-input", "works": False, "error": "torch not importable"}
    import faiss.contrib.torch_utils  # noqa: F401  (patches index methods for tensors)
    x = torch.randn(20000, 32, device="cuda")
    km = faiss.Kmeans(32, 64, niter=2, max_points_per_centroid=NO_SUBSAMPLING)
    km.index = flat_index(res, 32, False)
    try:
        km.train(x)
        return {"case": "torch-cuda-input", "works": True}
    except Exception as e:  # Kmeans.train turns x into a host numpy array
        return {"case": "torch-cuda-input", "works": False, "error": repr(e)}


def loaded_libs():
    """Which CUDA / BLAS libraries this process mapped (for the record)."""
    seen = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if any(s in p for s in ("libcudart", "libcublas.so", "openblas", "libcuvs", "librmm")):
                    seen.add(p)
    except OSError:
        pass
    return sorted(seen)


def device_name():
    if torch is not None:
        return torch.cuda.get_device_name()
    import subprocess
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True).stdout.strip()
    except OSError as e:
        return f"unknown ({e})"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = [a for a in sys.argv[1:] if a.startswith("--")]
    fp16_too = "--no-fp16" not in opts
    repeats = next((int(o.split("=")[1]) for o in opts if o.startswith("--repeats=")), 3)
    out = args[0] if args else "faiss_gpu.json"
    wanted = args[1:] or DEFAULT
    print(f"faiss {faiss.__version__}, GPUs {faiss.get_num_gpus()}, {device_name()}, "
          f"omp threads {faiss.omp_get_max_threads()}", flush=True)
    res = faiss.StandardGpuResources()
    results = []
    for name in wanted:
        t_case = time.perf_counter()
        if name in CASES:
            B, N, K, D = CASES[name]
            try:
                x = make_data(B, N, D)
            except Exception as e:
                results.append({"case": name, "error": repr(e)})
                print(f"{name:22s} data failed: {e!r}", flush=True)
                continue
            for fp16 in ([False, True] if fp16_too else [False]):
                dtype = "float16" if fp16 else "float32"
                try:
                    per_iter = timed_case(res, x, K, fp16, repeats)
                    ms = statistics.median(per_iter)
                    tflops = 2.0 * B * N * K * D / (ms * 1e-3) / 1e12
                    results.append({"case": name, "B": B, "N": N, "K": K, "D": D, "dtype": dtype,
                                    "ms_per_iter": ms, "tflops": tflops, "repeats_ms": per_iter,
                                    "input": "numpy float32 (host)",
                                    "index": "GpuIndexFlatL2 use_cuvs=False"
                                             + (" useFloat16=True" if fp16 else "")})
                    print(f"{name:22s} {dtype:8s} {ms:10.3f} ms/iter {tflops:8.2f} TFLOP/s  "
                          f"({time.perf_counter() - t_case:.0f} s)", flush=True)
                except Exception as e:  # report, keep going with the other cases
                    results.append({"case": name, "dtype": dtype, "error": repr(e)})
                    print(f"{name:22s} {dtype:8s} failed: {e!r}", flush=True)
            del x
        elif name == "ivf-n1M-k16384-obj20":
            B, N, K, D = CASES["ivf-n1M-k16384"]
            try:
                x = make_data(B, N, D)
                t, km = kmeans(res, x[0], K, 20, False)
                obj = [float(v) for v in km.obj]
                results.append({"case": name, "B": B, "N": N, "K": K, "D": D, "dtype": "float32",
                                "niter": 20, "seed": SEED, "obj": obj[-1], "obj_per_point": obj[-1] / N,
                                "obj_curve": obj, "seconds": t,
                                "note": "Faiss obj[i] = sum of squared distances to the nearest "
                                        "centroid in the assignment of iteration i (before its update)"})
                print(f"{name:22s} obj[-1] {obj[-1]:.6g} (per point {obj[-1] / N:.6g}), {t:.1f} s",
                      flush=True)
                del x
            except Exception as e:
                results.append({"case": name, "error": repr(e)})
                print(f"{name:22s} failed: {e!r}", flush=True)
        elif name in ("ivf-pq", "smoke-ivf"):
            try:
                r = (ivf_pq(res, repeats) if name == "ivf-pq" else
                     ivf_pq(res, 1, n=100000, nlist=256, factory="IVF256,PQ32"))
                r["case"] = name
                results.append(r)
                print(f"{name:22s} {r['index']} train {r['train_s']:.3f} s, add {r['add_s']:.3f} s "
                      f"({r['gpu_index']})", flush=True)
            except Exception as e:
                results.append({"case": name, "error": repr(e)})
                print(f"{name:22s} failed: {e!r}", flush=True)
        elif name == "torch-cuda-input":
            try:
                r = torch_probe(res)
            except Exception as e:
                r = {"case": name, "works": False, "error": repr(e)}
            results.append(r)
            print(f"{name:22s} works={r['works']} {r.get('error', '')}", flush=True)
        else:
            results.append({"case": name, "error": "unknown case"})
            print(f"{name:22s} unknown case", flush=True)
        if torch is not None:
            torch.cuda.empty_cache()
        write(out, results)  # after every case, so a run cut short keeps what it measured


def write(out, results):
    with open(out, "w") as f:
        json.dump({"peer": "faiss-gpu", "version": faiss.__version__,
                   "build": "faiss-gpu-cu13-cuvs 1.15.0 wheel, sm_90 cubins only, cuVS stubbed "
                            "(use_cuvs=False everywhere)",
                   "device": device_name(), "torch": torch.__version__ if torch else None,
                   "omp_threads": faiss.omp_get_max_threads(), "libs": loaded_libs(),
                   "input": "numpy float32 on the host (faiss.Kmeans takes no CUDA tensor)",
                   "cases": results}, f, indent=1)


if __name__ == "__main__":
    main()
