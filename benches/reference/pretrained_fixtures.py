"""Checkpoints and reference outputs from PyTorch, to test that tunnelbench loads a checkpoint
and computes what PyTorch computes with it (tests/suite/pretrained.rs).

For each model: random weights (BatchNorm statistics warmed up in train mode on random batches,
so that they are not the trivial 0/1), saved as a state dict (.pth) and as .safetensors (and a
float16 copy), a batch of normalised images (.npy) and PyTorch's outputs on them (.npz): the
logits and, at every probe point, the feature tunnelbench probes (the conv output before its
BatchNorm, 2x2 adaptive-average-pooled when larger than 2x2, flattened).

    pip install torch torchvision safetensors numpy
    python3 benches/reference/pretrained_fixtures.py --out tests/fixtures/pretrained           # the reduced model
    python3 benches/reference/pretrained_fixtures.py --out /tmp/full --full                    # torchvision resnet50

The reduced model is torchvision's ResNet-50 with every width divided by 16 (the same modules,
the same key layout, the Bottleneck class of torchvision itself), at 64x64: small enough to commit.
"""

import argparse
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet50
from torchvision.models.resnet import Bottleneck


class ReducedResNet50(nn.Module):
    """torchvision's ResNet-50 layout with widths divided by `div` (module names as torchvision's)."""

    def __init__(self, div, classes):
        super().__init__()
        stem = 64 // div
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem
        for i, (planes, blocks) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
            planes //= div
            stride = 1 if i == 0 else 2
            down = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
            layers = [Bottleneck(inplanes, planes, stride, down)]
            inplanes = planes * 4
            layers += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def probe_points(model):
    """The main-path convs in forward order: conv1, then layerL.B.conv1/2/3."""
    names = ["conv1"]
    for i in range(1, 5):
        for b in range(len(getattr(model, f"layer{i}"))):
            names += [f"layer{i}.{b}.conv{c}" for c in (1, 2, 3)]
    return names


def probe_feature(y):
    if y.shape[2] > 2:
        y = F.adaptive_avg_pool2d(y, 2)
    return torch.flatten(y, 1)


def outputs(model, x, names):
    feats = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: feats.__setitem__(n, probe_feature(o)))
        for n in names
    ]
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    return {"logits": logits, **{n: feats[n] for n in names}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--full", action="store_true", help="torchvision resnet50 at 224x224 instead of the reduced model")
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.full:
        model, res, name = resnet50(weights=None), 224, "resnet50"
    else:
        model, res, name = ReducedResNet50(16, 10), 64, "resnet50-div16"
    # BatchNorm statistics that are not the trivial 0/1.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, res, res))
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, args.out / f"{name}.pth")
    save_file(state, args.out / f"{name}.safetensors")
    x = torch.randn(args.images, 3, res, res)
    np.save(args.out / f"{name}-input.npy", x.numpy().astype(np.float32))
    names = probe_points(model)
    ref = outputs(model, x, names)
    np.savez(args.out / f"{name}-expected.npz", **{k: v.numpy().astype(np.float32) for k, v in ref.items()})
    # A float16 checkpoint, and what PyTorch computes with its (rounded) weights in float32.
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_file(half, args.out / f"{name}-f16.safetensors")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    np.save(args.out / f"{name}-f16-logits.npy", outputs(model, x, [])["logits"].numpy().astype(np.float32))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, {len(names)} probe points -> {args.out}")


if __name__ == "__main__":
    main()
