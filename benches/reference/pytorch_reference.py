#!/usr/bin/env python3
"""PyTorch reference for `tunnelbench bench`: the same VGGm network (method §4.1, width multiplier),
the same batch, optimizer and thread count, timing a training step, inference, and the paper's
linear probe (method §3.3) on a feature matrix of the bench's size.

Runs only when torch is importable (pip install torch). Example, next to `tunnelbench bench --json`:

    python3 benches/reference/pytorch_reference.py --arch vggm-11 --width 0.25 --batch 128 --threads 2
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed: pip install torch", file=sys.stderr)
    sys.exit(0)

STACKS = {
    "vggm-11": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vggm-17": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vggm(arch, width, classes):
    layers, cin = [], 3
    for item in STACKS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = max(1, round(item * width))
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def timed(fn, steps, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="vggm-11", choices=sorted(STACKS))
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--probe-samples", type=int, default=3000)
    p.add_argument("--probe-dim", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu or cuda (the probe always runs on the CPU, as in tunnelbench)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = vggm(a.arch, a.width, a.classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(a.batch, 3, a.resolution, a.resolution, device=device)
    y = torch.arange(a.batch, device=device) % a.classes

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        opt.step()

    model.train()
    train = a.steps * a.batch / timed(train_step, a.steps, device)
    model.eval()
    with torch.no_grad():
        inference = a.steps * a.batch / timed(lambda: model(x), a.steps, device)

    # The paper probe: Linear(d, K), N(0, 0.01²), AdamW lr 1e-3 wd 0, LS 0.1, batch 128, 30 epochs,
    # test accuracy after every epoch (best reported).
    n, d, k = a.probe_samples, a.probe_dim, 10
    centres = torch.rand(k, d) * 2 - 1
    labels = torch.arange(n) % k
    feats = centres[labels] + (torch.rand(n, d) * 4 - 2)
    test_labels = torch.arange(n // 3) % k
    test = centres[test_labels] + (torch.rand(n // 3, d) * 4 - 2)

    def probe():
        lin = nn.Linear(d, k)
        nn.init.normal_(lin.weight, 0, 0.01)
        nn.init.zeros_(lin.bias)
        popt = torch.optim.AdamW(lin.parameters(), lr=1e-3, weight_decay=0.0)
        best = 0.0
        for _ in range(30):
            perm = torch.randperm(n)
            for i in range(0, n, 128):
                idx = perm[i : i + 128]
                popt.zero_grad(set_to_none=True)
                F.cross_entropy(lin(feats[idx]), labels[idx], label_smoothing=0.1).backward()
                popt.step()
            with torch.no_grad():
                best = max(best, (lin(test).argmax(1) == test_labels).float().mean().item())
        return best

    probe_secs = float("inf")
    for _ in range(3):  # the fastest of three fits, as `tunnelbench bench` reports
        t = time.perf_counter()
        probe()
        probe_secs = min(probe_secs, time.perf_counter() - t)
    print(json.dumps({
        "implementation": "pytorch", "torch": torch.__version__, "arch": a.arch, "width": a.width,
        "batch": a.batch, "resolution": a.resolution, "threads": a.threads, "device": a.device,
        "train_images_per_sec": train, "inference_images_per_sec": inference,
        "probe_samples": n, "probe_dim": d, "probe_paper_secs": probe_secs,
    }, indent=2))


if __name__ == "__main__":
    main()
