"""Renders a GPU benchmark run as a markdown table on stdout and a PNG bar
chart of speed-ups: bench_gpu's JSON beside run_flash_kmeans.py's (same card,
same session) and, when given, Faiss GPU's (run_faiss_gpu.py; its fp32 line
per case), fastkmeans's (run_fastkmeans.py; its device-resident figure,
with its train(numpy) figure in the table) and cuVS's (run_cuvs.py; float32
on device-resident data, the only precision its KMeans takes).

Usage: python3 bench/plot.py ours.json flash_kmeans.json out.png
                              [--faiss-gpu faiss_gpu.json] [--fastkmeans fastkmeans.json]
                              [--cuvs cuvs.json]
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def by_case(path, dtype=None):
    if not path:
        return {}, {}
    with open(path) as f:
        run = json.load(f)
    return run, {c["case"]: c for c in run["cases"]
                 if "ms_per_iter" in c and (dtype is None or c.get("dtype") == dtype)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("flash_kmeans")
    ap.add_argument("png")
    ap.add_argument("--faiss-gpu")
    ap.add_argument("--fastkmeans")
    ap.add_argument("--cuvs")
    a = ap.parse_args()
    ours_run, ours = by_case(a.ours)
    peer_run, peer = by_case(a.flash_kmeans)
    fg_run, fg = by_case(a.faiss_gpu, "float32")
    fk_run, fk = by_case(a.fastkmeans)
    cv_run, cv = by_case(a.cuvs)
    cases = [c for c in ours if c in peer]
    print(f"Card: {ours_run['device']}; flash-kmeans {peer_run.get('version')} "
          f"(torch {peer_run.get('torch')})"
          + (f"; Faiss GPU {fg_run.get('version')} fp32" if fg else "")
          + (f"; fastkmeans {fk_run.get('version')}" if fk else "")
          + (f"; cuVS {cv_run.get('version')} fp32" if cv else "")
          + ". ms per Lloyd iteration, lower is better.\n")
    print("| case | B x N x K x D | flashkmeans ms | flash-kmeans ms | speed-up | "
          + ("Faiss GPU ms | speed-up | " if fg else "")
          + ("fastkmeans ms (resident / train()) | speed-up | " if fk else "")
          + ("cuVS ms (fp32) | speed-up | " if cv else "")
          + "flashkmeans TFLOP/s |")
    print("|---|---|---|---|---|" + ("---|---|" if fg else "") + ("---|---|" if fk else "")
          + ("---|---|" if cv else "") + "---|")
    for c in cases:
        o, p = ours[c], peer[c]
        shape = f"{o['B']}x{o['N']}x{o['K']}x{o['D']} {o['dtype']}"
        cols = ""
        if fg:
            f = fg.get(c)
            cols += (f"{f['ms_per_iter']:.1f} | {f['ms_per_iter'] / o['ms_per_iter']:.1f}x | "
                     if f else "- | - | ")
        if fk:
            f = fk.get(c)
            api = f"{f['api_ms_per_iter']:.1f}" if f and "api_ms_per_iter" in f else "-"
            cols += (f"{f['ms_per_iter']:.2f} / {api} | {f['ms_per_iter'] / o['ms_per_iter']:.2f}x | "
                     if f else "- | - | ")
        if cv:
            f = cv.get(c)
            cols += (f"{f['ms_per_iter']:.2f} | {f['ms_per_iter'] / o['ms_per_iter']:.1f}x | "
                     if f else "- | - | ")
        print(f"| {c} | {shape} | {o['ms_per_iter']:.2f} | {p['ms_per_iter']:.2f} | "
              f"{p['ms_per_iter'] / o['ms_per_iter']:.2f}x | {cols}{o['tflops']:.0f} |")

    peers = [("flash-kmeans 0.3.1", peer)]
    if fk:
        peers.append(("fastkmeans (resident)", fk))
    if cv:
        peers.append(("cuVS (fp32)", cv))
    if fg:
        peers.append(("Faiss GPU (fp32)", fg))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(peers)
    for i, (name, runs) in enumerate(peers):
        xs = [x for x, c in enumerate(cases) if c in runs]
        ys = [runs[c]["ms_per_iter"] / ours[c]["ms_per_iter"] for c in cases if c in runs]
        ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], ys, width, label=f"{name} time / ours")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.axhline(2.0, color="green", lw=0.8, ls="--", label="2x target (flash-kmeans)")
    if fg or cv:
        ax.set_yscale("log")
    ax.set_xticks(list(range(len(cases))), cases, rotation=30, ha="right")
    ax.set_ylabel("speed-up of flashkmeans")
    ax.set_title(f"ms per Lloyd iteration on {ours_run['device']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.png, dpi=120)


if __name__ == "__main__":
    main()
