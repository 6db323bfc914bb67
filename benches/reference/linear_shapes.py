"""GFLOPS of PyTorch's matrix product on the ViT-T's linear-layer shapes at 32² (batch 128), as
`cargo run --release -p tunnelbench-kernels --example linear_shapes` prints tunnelbench's: the
forward products, input gradients (dY·Wᵀ) and weight gradients (Xᵀ·dY) of a block's four layers,
each the fastest of 30 calls on THREADS threads.

    python benches/reference/linear_shapes.py [THREADS]
"""
import os
import sys
import time

import torch

LAYERS = [("qkv", 192, 576), ("proj", 192, 192), ("fc1", 192, 768), ("fc2", 768, 192)]
ROWS = 2048

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count())
total = 0.0
for product, kind in [("forward", 0), ("input grad", 1), ("weight grad", 2)]:
    for layer, d_in, d_out in LAYERS:
        if kind == 0:
            m, n, k = ROWS, d_out, d_in
            a, b = torch.randn(m, k), torch.randn(k, n)
        elif kind == 1:
            m, n, k = ROWS, d_in, d_out
            a, b = torch.randn(m, k), torch.randn(n, k).t()
        else:
            m, n, k = d_in, d_out, ROWS
            a, b = torch.randn(k, m).t(), torch.randn(k, n)
        best = float("inf")
        for _ in range(30):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        total += best
        print(f"{product:11} {layer:4} {m:4}x{n:3}x{k:4}: {best * 1e3:6.3f} ms {2 * m * n * k / best / 1e9:6.1f} GFLOPS")
print(f"12 blocks' products, forward and backward: {total * 12e3:.1f} ms")
