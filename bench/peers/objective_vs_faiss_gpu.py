"""Same data, same seed, same number of iterations: the final k-means objective
and ms per iteration of Faiss GPU and of flashkmeans, in one process on one
card (issue 4's "Faiss GPU: >= 10x faster on ivf-n1M-k16384 at equal
iterations, objectives within 1e-3 relative").

Data: 2^20 x 128 float32 normal values made as run_faiss_gpu.py and
run_flash_kmeans.py make them (torch.randn on the GPU, generator seed 1234).
Both fits use seed 1234, no subsampling, no early stop, 20 iterations; the
engine's seeding permutation equals faiss::rand_perm, so both start from the
same centroids. Faiss: faiss.Kmeans on a GpuIndexFlatL2 (use_cuvs=False, see
run_faiss_gpu.py) with host numpy input (what it accepts). flashkmeans: its
faiss-style Kmeans with gpu=True on the torch CUDA tensor (zero-copy), in tf32
and in exact fp32 arithmetic. Needs `. bench/peers/faiss_gpu_env.sh` and the
built Python module on PYTHONPATH.

Usage: python3 objective_vs_faiss_gpu.py out.json [N K D NITER]
"""
import json
import sys
import time

import faiss
import numpy as np
import torch

import flashkmeans


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "objective_vs_faiss_gpu.json"
    N, K, D, NITER = (int(v) for v in sys.argv[2:6]) if len(sys.argv) > 5 else (1 << 20, 16384, 128, 20)
    g = torch.Generator(device="cuda").manual_seed(1234)
    xt = torch.randn(1, N, D, device="cuda", dtype=torch.float32, generator=g)[0].contiguous()
    xh = xt.cpu().numpy()
    results = {"N": N, "K": K, "D": D, "niter": NITER, "seed": 1234,
               "device": torch.cuda.get_device_name(), "faiss": faiss.__version__,
               "flashkmeans": getattr(flashkmeans, "__version__", "?"), "runs": []}

    res = faiss.StandardGpuResources()
    cfg = faiss.GpuIndexFlatConfig()
    cfg.device = 0
    cfg.use_cuvs = False
    for warm in (True, False):
        km = faiss.Kmeans(D, K, niter=NITER if not warm else 2, seed=1234,
                          max_points_per_centroid=10 ** 9, early_stop_threshold=-1.0)
        km.index = faiss.GpuIndexFlatL2(res, D, cfg)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        km.train(xh)
        t = time.perf_counter() - t0
    faiss_obj = float(km.obj[-1])
    results["runs"].append({"engine": "faiss-gpu fp32", "obj": faiss_obj, "iterations": len(km.obj),
                            "seconds": t, "ms_per_iter": t / NITER * 1e3})
    print(f"faiss-gpu fp32      obj {faiss_obj:.8g}  {t / NITER * 1e3:9.2f} ms/iter (whole train / niter)", flush=True)
    del km

    for prec in ("tf32", "exact"):
        for warm in (True, False):
            km = flashkmeans.Kmeans(D, K, niter=NITER if not warm else 2, seed=1234, gpu=True,
                                    max_points_per_centroid=10 ** 9, precision=prec)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            km.train(xt)
            torch.cuda.synchronize()
            t = time.perf_counter() - t0
        obj = float(km.obj[-1])
        rel = abs(obj - faiss_obj) / abs(faiss_obj)
        results["runs"].append({"engine": f"flashkmeans {prec}", "obj": obj,
                                "iterations": len(km.obj), "seconds": t,
                                "ms_per_iter": t / NITER * 1e3, "rel_obj_vs_faiss": rel})
        print(f"flashkmeans {prec:6s}  obj {obj:.8g}  {t / NITER * 1e3:9.2f} ms/iter  "
              f"rel. difference to faiss {rel:.2e}", flush=True)
        del km
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
