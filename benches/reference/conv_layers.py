"""Milliseconds of PyTorch's convolutions on the shapes that
`cargo run --release -p tunnelbench-kernels --example conv_layers [resnet|resnet224|vgg]` times: the
forward pass, the input gradient and the weight gradient of each layer (batch 32 for resnet224, 128
for the others), each the fastest of 10 calls on THREADS threads.

    python benches/reference/conv_layers.py [resnet|resnet224|vgg] [THREADS]
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

# Input channels, input side, output channels, kernel side, stride, padding, layers of this shape.
RESNET_18 = [(3, 32, 64, 7, 2, 3, 1), (64, 8, 64, 3, 1, 1, 4), (64, 8, 128, 3, 2, 1, 1),
             (64, 8, 128, 1, 2, 0, 1), (128, 4, 128, 3, 1, 1, 3), (128, 4, 256, 3, 2, 1, 1),
             (128, 4, 256, 1, 2, 0, 1), (256, 2, 256, 3, 1, 1, 3), (256, 2, 512, 3, 2, 1, 1),
             (256, 2, 512, 1, 2, 0, 1), (512, 1, 512, 3, 1, 1, 3)]
RESNET_18_224 = [(3, 224, 64, 7, 2, 3, 1), (64, 56, 64, 3, 1, 1, 4), (64, 56, 128, 3, 2, 1, 1),
                 (64, 56, 128, 1, 2, 0, 1), (128, 28, 128, 3, 1, 1, 3), (128, 28, 256, 3, 2, 1, 1),
                 (128, 28, 256, 1, 2, 0, 1), (256, 14, 256, 3, 1, 1, 3), (256, 14, 512, 3, 2, 1, 1),
                 (256, 14, 512, 1, 2, 0, 1), (512, 7, 512, 3, 1, 1, 3)]
VGG_SMALL_PLANES = [(256, 4, 512, 3, 1, 1, 1), (512, 4, 512, 3, 1, 1, 1), (512, 2, 512, 3, 1, 1, 2),
                    (32, 4, 64, 3, 1, 1, 1), (64, 4, 64, 3, 1, 1, 3), (64, 2, 64, 3, 1, 1, 4)]


def fastest(f):
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        f()
        best = min(best, (time.perf_counter() - t) * 1e3)
    return best


name = sys.argv[1] if len(sys.argv) > 1 else "resnet"
layers = {"vgg": VGG_SMALL_PLANES, "resnet224": RESNET_18_224}.get(name, RESNET_18)
BATCH = 32 if name == "resnet224" else 128
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count())
total = [0.0, 0.0, 0.0]
for cin, side, cout, k, stride, pad, count in layers:
    x = torch.randn(BATCH, cin, side, side)
    w = torch.randn(cout, cin, k, k)
    with torch.no_grad():
        y = F.conv2d(x, w, stride=stride, padding=pad)
    grad = lambda want: torch.ops.aten.convolution_backward(
        y, x, w, None, [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, want)
    with torch.no_grad():
        ms = [fastest(lambda: F.conv2d(x, w, stride=stride, padding=pad)),
              fastest(lambda: grad([True, False, False])),
              fastest(lambda: grad([False, True, False]))]
    total = [t + m * count for t, m in zip(total, ms)]
    print(f"{cin:3} -> {cout:3} {k}x{k} stride {stride} on {side:2}x{side:<2} x{count}: forward {ms[0]:6.2f}, "
          f"input grad {ms[1]:6.2f}, weight grad {ms[2]:6.2f} ms")
print("all layers: forward %.1f, input grad %.1f, weight grad %.1f ms" % tuple(total))
