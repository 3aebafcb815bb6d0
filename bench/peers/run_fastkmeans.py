"""fastkmeans 0.5.0 (another Triton k-means) on the BENCH.md cases, on the
same card and in the same session as bench_gpu, so the numbers compare.

Two figures a case:
- "api": FastKMeans(d, k).train(numpy array), the way its users call it. It
  keeps the data in host memory and copies every chunk to the GPU every
  iteration (and pins a copy of the whole array at each train()).
- "resident": its Lloyd loop (fastkmeans.kmeans._kmeans_torch_double_chunked,
  a private function) on a CUDA tensor, so no copy crosses the bus: the
  speed of its Triton kernels.
ms per iteration = (time of a 13-iteration run - time of a 3-iteration run) /
10 after a warm-up (Triton compilation stays out), median of 3 repeats (one
for "api": each train() pins a copy of the whole array, seconds for the
large cases); tol = -1 so no early stop. fastkmeans clusters one problem at a time: a
batched case (B problems) is B runs, and its time is their sum. Compute in
the case's dtype (fp16 cases in fp16, fp32 cases in fp32 with TF32 allowed,
as flash-kmeans is run). fastkmeans comes from its PyPI wheel (carried to the
GPU machine); none of its code is in this repository.

Each case runs in a child process: a device-side assert inside fastkmeans
(seen on the H200 at K = 1000: an out-of-range label in index_add_) poisons
the CUDA context, and the other cases must still be measured.

Usage: python3 run_fastkmeans.py out.json [case ...]
FK_SMOKE=1: tiny shapes on the CPU (checks this script where there is no GPU).
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

import fastkmeans
from fastkmeans.kmeans import _kmeans_torch_double_chunked

from bench_cases import CASES, run_in_child

SMOKE = os.environ.get("FK_SMOKE") == "1"
DEVICE = torch.device("cpu" if SMOKE else "cuda:0")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def run_api(problems, k, dtype, iters):
    """Seconds for FastKMeans.train on every problem (numpy, host memory)."""
    sync()
    t0 = time.perf_counter()
    for x in problems:
        km = fastkmeans.FastKMeans(x.shape[1], k, niter=iters, tol=-1.0, gpu=not SMOKE,
                                   dtype=dtype, seed=0, max_points_per_centroid=None)
        km.train(x)
    sync()
    return time.perf_counter() - t0


def run_resident(problems, norms, k, dtype, iters):
    """Seconds for its Lloyd loop on every problem held on the device."""
    sync()
    t0 = time.perf_counter()
    for x, xn in zip(problems, norms):
        _kmeans_torch_double_chunked(x, xn, k=k, device=DEVICE, dtype=dtype, max_iters=iters,
                                     tol=-1.0, max_points_per_centroid=None,
                                     use_triton=DEVICE.type == "cuda")
    sync()
    return time.perf_counter() - t0


def per_iteration_ms(run, repeats=3, warm_up=True):
    if warm_up:
        run(3)  # Triton compilation
    per_iter = []
    for _ in range(repeats):
        t_short = run(3)
        t_long = run(13)
        per_iter.append((t_long - t_short) / 10 * 1e3)
    return statistics.median(per_iter), per_iter


def measure(name):
    """One case's row (dict); raises what fastkmeans raises."""
    B, N, K, D, dtype = CASES[name]
    if SMOKE:
        B, N, K, D, dtype = min(B, 2), 2000, min(K, 16), min(D, 8), torch.float32
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 cases: TF32, as flash-kmeans is run
    rng = np.random.default_rng(1234)
    host = [rng.standard_normal((N, D), dtype=np.float32) for _ in range(B)]
    row = {"case": name, "B": B, "N": N, "K": K, "D": D, "dtype": str(dtype).replace("torch.", "")}
    dev = [torch.from_numpy(x).to(DEVICE) for x in host]
    norms = [(x * x).sum(dim=1) for x in dev]
    ms, reps = per_iteration_ms(lambda it: run_resident(dev, norms, K, dtype, it))
    row.update(ms_per_iter=ms, repeats_ms=reps, tflops=2.0 * B * N * K * D / (ms * 1e-3) / 1e12)
    del dev, norms
    ms_api, reps_api = per_iteration_ms(lambda it: run_api(host, K, dtype, it), repeats=1,
                                        warm_up=False)
    row.update(api_ms_per_iter=ms_api, api_repeats_ms=reps_api)
    return row


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--one":  # child: one case, its row to a file
        name, row_file = sys.argv[2], sys.argv[3]
        try:
            row = measure(name)
        except Exception as e:
            B, N, K, D, dtype = CASES[name]
            row = {"case": name, "B": B, "N": N, "K": K, "D": D, "error": repr(e)[:2000]}
        with open(row_file, "w") as f:
            json.dump(row, f)
        return
    out = sys.argv[1] if len(sys.argv) > 1 else "fastkmeans.json"
    wanted = [n for n in sys.argv[2:] if n in CASES] or list(CASES)
    results = []

    def save():  # after every case, so that a run cut short keeps what it measured
        import importlib.metadata as md
        with open(out, "w") as f:
            json.dump({"peer": "fastkmeans", "version": md.version("fastkmeans"),
                       "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu",
                       "torch": torch.__version__, "smoke": SMOKE, "cases": results}, f, indent=1)

    for name in wanted:
        row, log, rc = run_in_child(__file__, name, out)
        if row is None:
            row = {"case": name, "error": f"child exited {rc} without a result"}
        if "error" in row:
            # the child's output: the first distinct lines (a device assert repeats per thread)
            lines = list(dict.fromkeys(log.splitlines()))
            row["log"] = "\n".join(lines[:20])
            print(f"{name:16s} failed: {row['error'][:300]}\n  " + "\n  ".join(lines[:5]), flush=True)
        else:
            print(f"{name:16s} {row['ms_per_iter']:10.3f} ms/iter resident {row['tflops']:8.1f} "
                  f"TFLOP/s, {row['api_ms_per_iter']:10.3f} ms/iter through train(numpy)", flush=True)
        results.append(row)
        save()
    save()


if __name__ == "__main__":
    main()
