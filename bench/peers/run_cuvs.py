"""cuVS KMeans (NVIDIA RAPIDS cuvs-cu13 26.10, repacked by
bench/peers/cuvs_repack.py; `. bench/peers/cuvs_env.sh` first) on the BENCH.md
cases of bench_cases.py, on the same card and in the same session as bench_gpu.

Call: cuvs.cluster.kmeans.fit(KMeansParams(n_clusters=K, init_method="Array",
max_iter=iters, tol=float32 tiny, n_init=1), X, centroids) with X a float32
CUDA tensor (torch, through __cuda_array_interface__: device-resident, no PCIe
copy) and one cuvs Resources reused by every fit. Init: the first K points of
each problem, copied to a fresh tensor before each fit (fit overwrites it), so no
k-means++ time is counted. tol must be > 0 in cuVS; with the smallest float32
it stops only when the centroids do not move at all or the cost rises
(`cost/prior > 1 - tol`): the iterations actually run (n_iter from fit) are
recorded, and the time per iteration is divided by them.
Data: torch.randn on the GPU, generator seed 1234, as run_flash_kmeans.py and
run_faiss_gpu.py make it (float32 numbers).

Precision: cuVS KMeans.fit takes float32 or float64 only (cuvs/cluster/kmeans
checks the dtype), so the float16 cases run on float32 data: "dtype" is the
precision used (always float32), "case_dtype" the case's, "precision_note" says so.

Timing, as run_faiss_gpu.py / run_fastkmeans.py / run_flash_kmeans.py do it:
ms_per_iter = (time of a 13-iteration fit - time of a 3-iteration fit) /
(their difference in iterations actually run), after a 3-iteration warm-up
fit, median of 3 repeats (cuVS's fixed per-fit cost - allocations, data norms,
its final inertia pass - cancels out). Also "fit_ms_per_iter": the wall time of
the whole 13-iteration fit / its iterations (median of the same repeats), which
counts that per-fit cost. Each time is from a torch.cuda.synchronize() before
to one after (and the cuVS stream synced). Batched cases (B > 1: seed-batched,
seed-k100, pq-train): the B problems are fitted one after another and the times
are summed, as run_faiss_gpu.py does. "inertia" is cuVS's final inertia of the
13-iteration fit, summed over the B problems.

Each case runs in a child process, so a failure (an exception, a crashed CUDA
context) does not stop the others; its output's first lines go to the row.
The child's output is also scanned for the repack's nvJitLink shim message
("jit_lto_failed": a JIT-LTO kernel was needed and could not be linked) and
for cuVS's "Launching cuTile kernel" line ("cutile_seen": the cuTile fused
1-NN ran rather than the CUTLASS one).

Usage: python3 run_cuvs.py out.json [case ...] [--repeats=N] [--timeout=S]
  cases: those of bench_cases.py (default: all), or "smoke" (one small case,
  whose inertia is also recomputed with torch as a check of the call).
"""
import json
import re
import statistics
import sys
import time

import torch

from bench_cases import CASES, run_in_child

EXTRA = {"smoke": (1, 100000, 256, 128, torch.float32)}  # run only when named
SEED = 1234
SHORT, LONG = 3, 13
TOL = float.fromhex("0x1p-126")  # smallest normal float32: > 0, as cuVS requires
SHIM_MSG = "cuVS JIT-LTO unavailable"
CUTILE_MSG = "Launching cuTile kernel"


def sync(res):
    res.sync()
    torch.cuda.synchronize()


def fit_all(km, res, x, k, iters):
    """Fit each of the B problems of x (B, N, D) from its first k points;
    returns (seconds in all, [n_iter], [inertia], last centroids)."""
    inits = [x[b, :k].clone() for b in range(x.shape[0])]  # fit writes the result here
    params = km.KMeansParams(n_clusters=k, init_method="Array", max_iter=iters, tol=TOL,
                             n_init=1, metric="sqeuclidean")
    sync(res)
    t0 = time.perf_counter()
    outs = [km.fit(params, x[b], inits[b], resources=res) for b in range(x.shape[0])]
    sync(res)
    t = time.perf_counter() - t0
    # fit returns (centroids, inertia, n_iter) in cuVS 26.10 (a named result in some versions)
    parts = [(o.inertia, o.n_iter) if hasattr(o, "n_iter") else (o[1], o[2]) for o in outs]
    return t, [int(n) for _, n in parts], [float(i) for i, _ in parts], inits[-1]


def torch_inertia(x, c, chunk=1 << 16):
    """Sum of squared distances of x (N, D) to their nearest row of c, in float64."""
    total = 0.0
    cn = (c.double() ** 2).sum(1)
    for i in range(0, x.shape[0], chunk):
        xb = x[i:i + chunk].double()
        d = (xb ** 2).sum(1, keepdim=True) - 2 * xb @ c.double().T + cn
        total += float(d.min(1).values.clamp_min(0).sum())
    return total


def measure(name, repeats):
    import cuvs
    import cuvs.cluster.kmeans as km
    from cuvs.common import Resources

    B, N, K, D, case_dtype = {**CASES, **EXTRA}[name]
    row = {"case": name, "B": B, "N": N, "K": K, "D": D, "dtype": "float32",
           "case_dtype": str(case_dtype).replace("torch.", ""),
           "device": torch.cuda.get_device_name(), "cuvs": cuvs.__version__}
    if case_dtype != torch.float32:
        row["precision_note"] = ("cuVS KMeans.fit takes float32/float64 only: "
                                 f"this {row['case_dtype']} case ran on float32 data")
    g = torch.Generator(device="cuda").manual_seed(SEED)
    x = torch.randn(B, N, D, device="cuda", dtype=torch.float32, generator=g)
    res = Resources()
    fit_all(km, res, x, K, SHORT)  # warm-up: cuBLAS handle, workspaces, module loading
    per_iter, whole, n_short, n_long, inertia = [], [], [], [], []
    for _ in range(repeats):
        t_s, it_s, _, _ = fit_all(km, res, x, K, SHORT)
        t_l, it_l, inert, cent = fit_all(km, res, x, K, LONG)
        # An iteration of a batched case is one iteration of each of its B
        # problems (as bench_gpu and the other peers count it): divide by the
        # mean iterations a problem, not by their sum over the B problems.
        done = (sum(it_l) - sum(it_s)) / B
        if done <= 0:
            raise RuntimeError(f"no iterations between the fits: n_iter {it_s} and {it_l}")
        per_iter.append((t_l - t_s) / done * 1e3)
        whole.append(t_l / (sum(it_l) / B) * 1e3)
        n_short, n_long, inertia = it_s, it_l, inert
    ms = statistics.median(per_iter)
    row.update(ms_per_iter=ms, tflops=2.0 * B * N * K * D / (ms * 1e-3) / 1e12,
               repeats_ms=per_iter, fit_ms_per_iter=statistics.median(whole),
               fit_repeats_ms=whole, repeats=repeats,
               max_iter={"short": SHORT, "long": LONG},
               n_iter_short=sorted(set(n_short)), n_iter_long=sorted(set(n_long)),
               early_stop=min(n_long) < LONG or min(n_short) < SHORT,
               inertia=sum(inertia), inertia_per_point=sum(inertia) / (B * N),
               init="first K points of each problem (init_method Array)", tol=TOL, n_init=1,
               input="torch float32 CUDA tensor (device-resident)")
    if name in EXTRA:  # check the call: cuVS's inertia against torch's for its centroids
        ref = torch_inertia(x[-1], cent)
        row.update(torch_inertia=ref, inertia_rel_diff=abs(inertia[-1] - ref) / ref)
    return row


def loaded_libs():
    seen = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if re.search(r"libcuvs|libraft|librmm|nvJitLink|nvjitlink|libcublas\.|libnccl", p):
                seen.add(p)
    return sorted(seen)


def child(name, row_file, repeats):
    try:
        row = measure(name, repeats)
        row["libs"] = loaded_libs()
    except Exception as e:
        B, N, K, D, _ = {**CASES, **EXTRA}[name]
        row = {"case": name, "B": B, "N": N, "K": K, "D": D, "error": repr(e)[:2000]}
    with open(row_file, "w") as f:
        json.dump(row, f)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--one":  # child: one case, its row to a file
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3)
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(o[2:].split("=", 1) for o in sys.argv[1:] if o.startswith("--") and "=" in o)
    repeats = int(opts.get("repeats", 3))
    timeout = float(opts.get("timeout", 400))
    out = args[0] if args else "cuvs.json"
    wanted = [n for n in args[1:] if n in CASES or n in EXTRA] or list(CASES)
    for n in args[1:]:
        if n not in CASES and n not in EXTRA:
            print(f"{n:16s} unknown case, skipped", flush=True)
    results, meta = [], {}

    def save():  # after every case, so that a run cut short keeps what it measured
        with open(out, "w") as f:
            json.dump({"peer": "cuvs", "version": meta.get("cuvs"), "device": meta.get("device"),
                       "torch": torch.__version__,
                       "build": "cuvs-cu13 26.10.0 wheels repacked: sm_90 cubins only, "
                                "JIT-LTO fragments dropped, nvJitLink shimmed "
                                "(bench/peers/cuvs_repack.py)",
                       "input": "torch float32 CUDA tensors (device-resident)",
                       "timing": f"({LONG}-iteration fit - {SHORT}-iteration fit) / iterations, "
                                 f"median of {repeats}; fit_ms_per_iter: whole {LONG}-iteration fit",
                       "libs": meta.get("libs"), "cases": results}, f, indent=1)

    for name in wanted:
        t0 = time.perf_counter()
        row, log, rc = run_in_child(__file__, name, out, str(repeats), timeout=timeout)
        if row is None:
            B, N, K, D, _ = {**CASES, **EXTRA}[name]
            row = {"case": name, "B": B, "N": N, "K": K, "D": D,
                   "error": f"child exited {rc} without a result"}
        row["jit_lto_failed"] = SHIM_MSG in log
        row["cutile_seen"] = CUTILE_MSG in log
        lines = [l for l in dict.fromkeys(log.splitlines()) if CUTILE_MSG not in l]
        if lines:
            row["log"] = "\n".join(lines[:20])
        for k in ("device", "cuvs", "libs"):
            if k in row:
                meta.setdefault(k, row[k])
        row.pop("libs", None)
        row.pop("device", None)
        wall = time.perf_counter() - t0
        if "error" in row:
            print(f"{name:16s} failed: {row['error'][:300]}\n  " + "\n  ".join(lines[:5]), flush=True)
        else:
            note = " (early stop: n_iter %s)" % row["n_iter_long"] if row["early_stop"] else ""
            print(f"{name:16s} {row['ms_per_iter']:10.3f} ms/iter {row['tflops']:8.1f} TFLOP/s "
                  f"(whole fit {row['fit_ms_per_iter']:.3f} ms/iter), fp32, inertia/pt "
                  f"{row['inertia_per_point']:.5g}{note}"
                  + (f", torch check rel diff {row['inertia_rel_diff']:.2e}"
                     if "inertia_rel_diff" in row else "")
                  + (", cuTile" if row["cutile_seen"] else "") + f"  [{wall:.0f} s]", flush=True)
        results.append(row)
        save()
    save()


if __name__ == "__main__":
    main()
