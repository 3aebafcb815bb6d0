"""The in-memory BENCH.md cases (../shared/BENCH.md), as bench_gpu runs them,
for the torch-based peer runners (run_flash_kmeans.py, run_fastkmeans.py)."""
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
