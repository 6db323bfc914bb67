#!/usr/bin/env python3
"""PyTorch reference for `tunnelbench bench`: the same network (VGGm-11/17, ResNet-18/34 and
ViT-T/T+ as method §4.1, §4.3 and §4.4 define them and `src/model/` builds them, width multiplier,
any resolution), the same batch, optimizer and thread count, timing a training step, inference,
and the paper's linear probe (method §3.3) on a feature matrix of the bench's size.

Runs only when torch is importable (pip install torch). Example, next to `tunnelbench bench --json`:

    python3 benches/reference/pytorch_reference.py --arch vit-t --width 1 --batch 128 --threads 2

On a GPU, `--device cuda --tf32 on|off` fixes whether cuDNN's convolutions and cuBLAS's matrix
products may use TF32 tensor cores (PyTorch's default: convolutions yes, matrix products no), and
the JSON records it with the GPU's name.
"""
import argparse
import json
import math
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
RESNET_BLOCKS = {"resnet-18": [2, 2, 2, 2], "resnet-34": [3, 4, 6, 3]}
VIT_DEPTH = {"vit-t": 12, "vit-t-plus": 18}
ARCHS = sorted([*STACKS, *RESNET_BLOCKS, *VIT_DEPTH])


def scaled(channels, width):
    """A channel count times the width multiplier, rounded half away from zero as tunnelbench does."""
    return max(1, int(math.floor(channels * width + 0.5)))


def vggm(arch, width, classes):
    layers, cin = [], 3
    for item in STACKS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = scaled(item, width)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)), inplace=True)
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.down is None else self.down(x)), inplace=True)


def resnet(arch, width, classes):
    """torchvision's ResNet (7×7 stride-2 stem, 3×3 stride-2 max-pool) at every resolution."""
    stem = scaled(64, width)
    layers = [nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    cin = stem
    for stage, (n, w) in enumerate(zip(RESNET_BLOCKS[arch], [64, 128, 256, 512])):
        w = scaled(w, width)
        for b in range(n):
            layers.append(BasicBlock(cin, w, 2 if stage > 0 and b == 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def sincos_positions(dim, gh, gw):
    """Fixed 2D sin-cos positions, row by row: concat(sin xω, cos xω, sin yω, cos yω)."""
    q = dim // 4
    omega = torch.tensor([1.0 / 10000 ** (k / (q - 1) if q > 1 else 0.0) for k in range(q)], dtype=torch.float64)
    y, x = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij")
    x, y = x.reshape(-1, 1) * omega, y.reshape(-1, 1) * omega
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], 1).float()


def drop_path(x, rate, training):
    """Stochastic depth: drop the whole residual branch per sample with probability `rate`."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class Attention(nn.Module):
    """timm's: one qkv projection, PyTorch's fused scaled dot-product attention, an output projection."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class VitBlock(nn.Module):
    def __init__(self, dim, heads, drop):
        super().__init__()
        self.drop = drop
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + drop_path(self.attn(self.norm1(x)), self.drop, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop, self.training)


class Vit(nn.Module):
    """ViT-T (12 blocks) / ViT-T+ (18): patch 8, dim 192 × width, 3 heads, no class token, fixed
    sin-cos positions, pre-norm blocks with stochastic depth rising linearly to 0.1, final
    LayerNorm, mean over the tokens, linear head."""

    def __init__(self, arch, width, classes, resolution, patch=8, heads=3, drop=0.1):
        super().__init__()
        dim, depth = scaled(192, width), VIT_DEPTH[arch]
        self.proj = nn.Conv2d(3, dim, patch, patch)
        grid = resolution // patch
        self.register_buffer("pos", sincos_positions(dim, grid, grid), persistent=False)
        self.blocks = nn.ModuleList(
            VitBlock(dim, heads, drop * i / (depth - 1) if depth > 1 else 0.0) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(1))


def build(arch, width, classes, resolution):
    if arch in STACKS:
        return vggm(arch, width, classes)
    if arch in RESNET_BLOCKS:
        return resnet(arch, width, classes)
    return Vit(arch, width, classes, resolution)


def set_tf32(mode):
    """Set whether cuDNN convolutions and cuBLAS matrix products may use TF32; return what is in force.

    PyTorch 2.9 and later have `fp32_precision` ("tf32" / "ieee") and refuse to mix it with the
    older `allow_tf32` flags, so the newer API is used where it exists."""
    conv, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(getattr(conv, "conv", None), "fp32_precision"):
        if mode != "default":
            conv.conv.fp32_precision = matmul.fp32_precision = "tf32" if mode == "on" else "ieee"
        return {"conv": conv.conv.fp32_precision, "matmul": matmul.fp32_precision}
    if mode != "default":
        conv.allow_tf32 = matmul.allow_tf32 = mode == "on"
    return {"conv": "tf32" if conv.allow_tf32 else "ieee", "matmul": "tf32" if matmul.allow_tf32 else "ieee"}


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
    p.add_argument("--arch", default="vggm-11", choices=ARCHS)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--probe-samples", type=int, default=3000)
    p.add_argument("--probe-dim", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu or cuda (the probe always runs on the CPU, as in tunnelbench)")
    p.add_argument("--tf32", default="default", choices=["default", "on", "off"],
                   help="on a GPU: let convolutions and matrix products use TF32 (on), neither (off), or PyTorch's default")
    p.add_argument("--no-probe", action="store_true", help="skip the probe fits (probe_paper_secs is null)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    tf32 = set_tf32(a.tf32) if a.device.startswith("cuda") else None
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = build(a.arch, a.width, a.classes, a.resolution).to(device)
    parameters = sum(p.numel() for p in model.parameters())
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

    probe_secs = None if a.no_probe else float("inf")
    for _ in range(0 if a.no_probe else 3):  # the fastest of three fits, as `tunnelbench bench` reports
        t = time.perf_counter()
        probe()
        probe_secs = min(probe_secs, time.perf_counter() - t)
    print(json.dumps({
        "implementation": "pytorch", "torch": torch.__version__, "arch": a.arch, "width": a.width, "parameters": parameters,
        "batch": a.batch, "resolution": a.resolution, "threads": a.threads, "device": a.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "tf32": a.tf32 if tf32 is not None else None, "fp32_precision": tf32, "steps": a.steps,
        "train_images_per_sec": train, "inference_images_per_sec": inference,
        "probe_samples": n, "probe_dim": d, "probe_paper_secs": probe_secs,
    }, indent=2))


if __name__ == "__main__":
    main()
