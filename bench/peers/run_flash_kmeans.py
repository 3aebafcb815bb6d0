"""flash-kmeans 0.3.1 (the Triton original) on the BENCH.md cases, on the
same card and in the same session as bench_gpu, so the numbers compare.

ms per iteration = (time of a 13-iteration run - time of a 3-iteration run) / 10,
after a warm-up run (torch.compile and Triton compilation stay out), median of
3 repeats; tol = 0 so no early stop. flash-kmeans comes from its PyPI wheel
(carried to the GPU machine); none of its code is in this repository.

Out-of-core cases ("ooc-...", run only when named, or all of them with
"ooc"): f32 data in host memory, pinned (torch.empty(pin_memory=True), filled
in place by several threads) or pageable, clustered by
flash_kmeans.kmeans_largeN on one GPU (device=cuda:0), which copies every
block of BLOCK_N = 2^20 rows to the GPU every iteration; same timing method,
fewer repeats for the 2^27-row case (the JSON says how many).

Usage: python3 run_flash_kmeans.py out.json [case ...]
"""
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from flash_kmeans import batch_kmeans_Euclid
from flash_kmeans.kmeans_large import kmeans_largeN

from bench_cases import CASES

OOC_CASES = {
    # name: (N, K, D, pinned host memory, repeats)
    "ooc-n16M-k4096": (1 << 24, 4096, 128, True, 3),
    "ooc-n16M-k4096-pageable": (1 << 24, 4096, 128, False, 3),
    "ooc-n128M-k4096": (1 << 27, 4096, 128, True, 1),
}


def host_randn(n, d, pinned, seed=1234, parts=32):
    """(n, d) f32 standard normal in host memory, filled in place by threads."""
    x = torch.empty((n, d), dtype=torch.float32, pin_memory=pinned)
    step = (n + parts - 1) // parts

    def fill(i):
        g = torch.Generator().manual_seed(seed + i)
        x[i * step:min(n, (i + 1) * step)].normal_(generator=g)

    with ThreadPoolExecutor(max_workers=16) as ex:
        list(ex.map(fill, range(parts)))
    return x


def timed_large(x, k, iters):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    kmeans_largeN(x, k, max_iters=iters, tol=0.0, device=torch.device("cuda:0"),
                  dtype=torch.float32)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_ooc(name):
    N, K, D, pinned, repeats = OOC_CASES[name]
    t0 = time.perf_counter()
    x = host_randn(N, D, pinned)
    setup_s = time.perf_counter() - t0
    try:
        timed_large(x, K, 2)  # warm-up: Triton compilation
        per_iter = []
        for _ in range(repeats):
            t_short = timed_large(x, K, 3)
            t_long = timed_large(x, K, 13)
            per_iter.append((t_long - t_short) / 10 * 1e3)
        ms = statistics.median(per_iter)
        tflops = 2.0 * N * K * D / (ms * 1e-3) / 1e12
        gbs = N * D * 4 / (ms * 1e-3) / 1e9
        print(f"{name:24s} {ms:10.1f} ms/iter {tflops:8.1f} TFLOP/s, all {N * D * 4 / 1e9:.1f} GB "
              f"copied each iteration = {gbs:.1f} GB/s (repeats {per_iter}, host data {setup_s:.1f} s)",
              flush=True)
        return {"case": name, "B": 1, "N": N, "K": K, "D": D, "dtype": "float32",
                "host_memory": "pinned" if pinned else "pageable", "function": "kmeans_largeN",
                "BLOCK_N": 1 << 20, "ms_per_iter": ms, "tflops": tflops,
                "h2d_gbs_whole_iteration": gbs, "repeats": repeats, "repeats_ms": per_iter,
                "repeats_note": ("median of 3" if repeats >= 3 else
                                 f"{repeats} repeat(s) only: each is 16 iterations over "
                                 f"{N * D * 4 / 1e9:.1f} GB"),
                "host_data_s": setup_s}
    except Exception as e:  # report, keep going with the other cases
        print(f"{name:24s} failed: {e!r}", flush=True)
        return {"case": name, "error": repr(e)}
    finally:
        del x
        torch.cuda.empty_cache()


def timed_run(x, k, iters):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    batch_kmeans_Euclid(x, k, max_iters=iters, tol=0.0)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "flash_kmeans.json"
    names = sys.argv[2:]
    wanted = [n for n in names if n in CASES] if names else list(CASES)
    ooc = [n for n in OOC_CASES if "ooc" in names or n in names]
    torch.backends.cuda.matmul.allow_tf32 = True  # what flash-kmeans users get for fp32
    results = []

    def save():  # after every case, so that a run cut short keeps what it measured
        import importlib.metadata as md
        with open(out, "w") as f:
            json.dump({"peer": "flash-kmeans", "version": md.version("flash-kmeans"),
                       "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "cases": results}, f, indent=1)

    for name in ooc:
        results.append(run_ooc(name))
        save()
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
        save()
    save()


if __name__ == "__main__":
    main()
