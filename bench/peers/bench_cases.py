"""The in-memory BENCH.md cases (../shared/BENCH.md), as bench_gpu runs them,
for the torch-based peer runners (run_flash_kmeans.py, run_fastkmeans.py,
run_cuvs.py), and how those runners measure a case in a child process."""
import json
import os
import subprocess
import sys

import torch

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


def run_in_child(script, name, out, *args, timeout=None):
    """Runs `python script --one name ROW_FILE *args` (the runner measuring one
    case, so that a crash or a device assert does not take the later cases
    with it) and reads the row it wrote. Returns (row or None, the child's
    output, its exit code or "killed after ... s")."""
    row_file = out + f".{name}.row"
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(script), "--one", name, row_file, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
        log, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        log = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = f"killed after {timeout:.0f} s"
    try:
        with open(row_file) as f:
            row = json.load(f)
        os.remove(row_file)
    except (OSError, ValueError):
        row = None
    return row, log, rc
