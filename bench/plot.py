"""Renders a GPU benchmark run (bench_gpu's JSON beside run_flash_kmeans.py's,
same card, same session) as a markdown table on stdout and a PNG bar chart.

Usage: python3 bench/plot.py ours.json flash_kmeans.json out.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def by_case(path):
    with open(path) as f:
        run = json.load(f)
    return run, {c["case"]: c for c in run["cases"] if "ms_per_iter" in c}


def main():
    ours_path, peer_path, png = sys.argv[1:4]
    ours_run, ours = by_case(ours_path)
    peer_run, peer = by_case(peer_path)
    cases = [c for c in ours if c in peer]
    print(f"Card: {ours_run['device']}; flash-kmeans {peer_run.get('version')} "
          f"(torch {peer_run.get('torch')}). ms per Lloyd iteration, lower is better.\n")
    print("| case | B x N x K x D | flashkmeans ms | flash-kmeans ms | speed-up | flashkmeans TFLOP/s |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        o, p = ours[c], peer[c]
        shape = f"{o['B']}x{o['N']}x{o['K']}x{o['D']} {o['dtype']}"
        print(f"| {c} | {shape} | {o['ms_per_iter']:.2f} | {p['ms_per_iter']:.2f} | "
              f"{p['ms_per_iter'] / o['ms_per_iter']:.2f}x | {o['tflops']:.0f} |")

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
