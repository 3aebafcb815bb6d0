"""Renders a GPU benchmark run (bench_gpu's JSON beside run_flash_kmeans.py's,
same card, same session) as a markdown table on stdout and a PNG bar chart.

and, when given, Faiss GPU's (run_faiss_gpu.py; its fp32 line per case).

Usage: python3 bench/plot.py ours.json flash_kmeans.json out.png [faiss_gpu.json]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def by_case(path, dtype=None):
    with open(path) as f:
        run = json.load(f)
    return run, {c["case"]: c for c in run["cases"]
                 if "ms_per_iter" in c and (dtype is None or c.get("dtype") == dtype)}


def main():
    ours_path, peer_path, png = sys.argv[1:4]
    ours_run, ours = by_case(ours_path)
    peer_run, peer = by_case(peer_path)
    fg_run, fg = by_case(sys.argv[4], "float32") if len(sys.argv) > 4 else ({}, {})
    cases = [c for c in ours if c in peer]
    print(f"Card: {ours_run['device']}; flash-kmeans {peer_run.get('version')} "
          f"(torch {peer_run.get('torch')})"
          + (f"; Faiss GPU {fg_run.get('version')} fp32" if fg else "")
          + ". ms per Lloyd iteration, lower is better.\n")
    print("| case | B x N x K x D | flashkmeans ms | flash-kmeans ms | speed-up | "
          + ("Faiss GPU ms | speed-up | " if fg else "") + "flashkmeans TFLOP/s |")
    print("|---|---|---|---|---|" + ("---|---|" if fg else "") + "---|")
    for c in cases:
        o, p = ours[c], peer[c]
        shape = f"{o['B']}x{o['N']}x{o['K']}x{o['D']} {o['dtype']}"
        f = fg.get(c)
        fcol = (f"{f['ms_per_iter']:.1f} | {f['ms_per_iter'] / o['ms_per_iter']:.1f}x | " if f
                else "- | - | ") if fg else ""
        print(f"| {c} | {shape} | {o['ms_per_iter']:.2f} | {p['ms_per_iter']:.2f} | "
              f"{p['ms_per_iter'] / o['ms_per_iter']:.2f}x | {fcol}{o['tflops']:.0f} |")

    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(cases))
    ax.bar([x - 0.2 for x in xs], [peer[c]["ms_per_iter"] / ours[c]["ms_per_iter"] for c in cases],
           0.4, label="flash-kmeans time / flashkmeans time")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.axhline(2.0, color="green", lw=0.8, ls="--", label="2x target")
    ax.set_xticks(list(xs), cases, rotation=30, ha="right")
    ax.set_ylabel("speed-up over flash-kmeans")
    ax.set_title(f"ms per Lloyd iteration on {ours_run['device']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main()
