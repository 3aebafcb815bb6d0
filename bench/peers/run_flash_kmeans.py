"""flash-kmeans 0.3.1 (the Triton original) on the BENCH.md cases, on the
same card and in the same session as bench_gpu, so the numbers compare.

ms per iteration = (time of a 13-iteration run - time of a 3-iteration run) / 10,
after a warm-up run (torch.compile and Triton compilation stay out), median of
3 repeats; tol = 0 so no early stop. flash-kmeans comes from its PyPI wheel
(carried to the GPU machine); none of its code is in this repository.

Usage: python3 run_flash_kmeans.py out.json [case ...]
"""
import json
import statistics
import sys
import time

import torch

from flash_kmeans import batch_kmeans_Euclid

CASES = {
    # name: (B, N, K, D, dtype)
    "seed-batched": (32, 75600, 1000, 128, torch.float16),
    "seed-k100": (32, 75600, 100, 128, torch.float16),
    "n1M-k1024": (1, 1 << 20, 1024, 128, torch.float16),
    "n8M-k1024": (1, 1 << 23, 1024, 128, torch.float16),
    "ivf-n1M-k16384": (1, 1 << 20, 16384, 128, torch.float32),
    "ivf-n4M-k65536": (1, 1 << 22, 65536, 128, torch.float16),
    "largeD": (1, 1 << 18, 1024, 1024, torch.float16),
    "pq-train": (32, 1 << 16, 256, 4, torch.float32),
}


def timed_run(x, k, iters):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    batch_kmeans_Euclid(x, k, max_iters=iters, tol=0.0)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "flash_kmeans.json"
    wanted = sys.argv[2:] or list(CASES)
    torch.backends.cuda.matmul.allow_tf32 = True  # what flash-kmeans users get for fp32
    results = []
    for name in wanted:
        B, N, K, D, dtype = CASES[name]
        g = torch.Generator(device="cuda").manual_seed(1234)
        x = torch.randn(B, N, D, device="cuda", dtype=dtype, generator=g)
        try:
            timed_run(x, K, 3)  # warm-up: compilation
            per_iter = []
            for _ in range(3):
                t_short = timed_run(x, K, 3)
                t_long = timed_run(x, K, 13)
                per_iter.append((t_long - t_short) / 10 * 1e3)
            ms = statistics.median(per_iter)
            tflops = 2.0 * B * N * K * D / (ms * 1e-3) / 1e12
            results.append({"case": name, "B": B, "N": N, "K": K, "D": D,
                            "dtype": str(dtype).replace("torch.", ""), "ms_per_iter": ms,
                            "tflops": tflops, "repeats_ms": per_iter})
            print(f"{name:16s} {ms:10.3f} ms/iter {tflops:8.1f} TFLOP/s", flush=True)
        except Exception as e:  # report, keep going with the other cases
            results.append({"case": name, "error": repr(e)})
            print(f"{name:16s} failed: {e!r}", flush=True)
        del x
        torch.cuda.empty_cache()
    import importlib.metadata as md
    with open(out, "w") as f:
        json.dump({"peer": "flash-kmeans", "version": md.version("flash-kmeans"),
                   "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "cases": results}, f, indent=1)


if __name__ == "__main__":
    main()
