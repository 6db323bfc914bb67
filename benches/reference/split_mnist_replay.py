"""Replays a task-incremental MLP sequence that tunnelbench recorded (`TUNNELBENCH_TRACE=DIR`) in
PyTorch, step for step: the same initial weights, the same batches in the same order, the
cross-entropy over each task's output units, one torch.optim.Adam kept over the tasks. Prints, per
task, how far PyTorch's losses are from tunnelbench's and the accuracy on every task afterwards
(task-aware, on the MNIST test set), so that the two engines' training can be compared on identical
inputs.

    TUNNELBENCH_TRACE=/tmp/trace tunnelbench run scenarios/split-mnist-vdv.toml --set continual.heads=multi \\
        --set 'continual.strategies=["finetune"]' --set model.input_channels=1 --set replicates=1
    python3 benches/reference/split_mnist_replay.py /tmp/trace --data ~/.cache/tunnelbench/mnist

`--resync` loads tunnelbench's weights at the start of every task after the first (PyTorch's own
Adam moments kept), so that each task's first steps compare from the same weights. `--burn-adam`
steps with Adam computed as burn computes it (1 - beta, beta^t and the bias corrections in f32)
instead of torch.optim.Adam (which takes them in f64): the same algorithm, other roundings. The
record's calls 5r .. 5r + 4 are replicate r (`--replicate r`).
"""

import argparse
import json
import pathlib
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from split_mnist_vdv import evaluate, load  # noqa: E402


def safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        start, end = v["data_offsets"]
        out[key] = torch.from_numpy(np.frombuffer(raw[8 + n + start : 8 + n + end], dtype=np.float32).reshape(v["shape"]).copy())
    return out


class BurnAdam:
    """Adam (0.9, 0.999, eps 1e-8) with burn 0.22's f32 arithmetic: m·b1 + g·(1 - b1),
    v·b2 + g²·(1 - b2), update m·(sqrt(1 - b2^t) / (1 - b1^t)) / (sqrt(v) + eps·sqrt(1 - b2^t))."""

    def __init__(self, params, lr=1e-3):
        f = np.float32
        self.params, self.lr, self.b1, self.b2, self.eps = list(params), f(lr), f(0.9), f(0.999), f(1e-8)
        self.state = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        f, one = np.float32, np.float32(1)
        for k, p in enumerate(self.params):
            g = p.grad
            if self.state[k] is None:
                m, v, t = g * f(one - self.b1), (g * g) * f(one - self.b2), 1
            else:
                m, v, t = self.state[k]
                m, v, t = m * self.b1 + g * f(one - self.b1), v * self.b2 + (g * g) * f(one - self.b2), t + 1
            self.state[k] = (m, v, t)
            bc2 = f(np.sqrt(f(one - self.b2 ** np.int32(t))))
            factor = f(bc2 / f(one - self.b1 ** np.int32(t)))
            p -= (m * factor) / (v.sqrt() + f(self.eps * bc2)) * self.lr


def layer_keys(weights):
    hidden = sorted({int(k.split(".")[1]) for k in weights if k.startswith("units.")})
    return [f"units.{i}.Dense.fc" for i in hidden] + ["head.fc"]


def load_weights(net, weights):
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, key in zip(linears, layer_keys(weights)):
            layer.weight.copy_(weights[key + ".weight"].T)  # burn stores [in, out]
            layer.bias.copy_(weights[key + ".bias"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", type=pathlib.Path)
    ap.add_argument("--data", type=pathlib.Path, required=True, help="folder of the MNIST .gz files")
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--resync", action="store_true")
    ap.add_argument("--burn-adam", action="store_true", help="Adam with burn's f32 arithmetic")
    args = ap.parse_args()
    torch.set_num_threads(1)
    first = args.replicate * args.tasks
    start = safetensors(args.trace / f"call{first}.start.safetensors")
    keys = layer_keys(start)
    dims = [start[keys[0] + ".weight"].shape[0]] + [start[k + ".weight"].shape[1] for k in keys]
    layers = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(dims) - 2 else [])
    net = torch.nn.Sequential(*layers)
    load_weights(net, start)
    if args.burn_adam:
        adam = BurnAdam(net.parameters())
    else:
        adam = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    test = load(args.data, "test", "vdv" if dims[0] == 32 * 32 else "padded-rgb")
    tasks = []
    for t in range(args.tasks):
        call = first + t
        rec = json.loads((args.trace / f"call{call}.json").read_text())
        n, c, h, w = rec["shape"]
        px = np.fromfile(args.trace / f"call{call}.images.u8", dtype=np.uint8).reshape(n, c, h, w).astype(np.float32) / 255.0
        mean, std = np.array(rec["mean"], np.float32), np.array(rec["std"], np.float32)
        x = (px - mean[None, :c, None, None]) / std[None, :c, None, None]
        # A first layer with H·W inputs reads the mean of the channels, as tunnelbench's MLP does.
        x = x.mean(axis=1) if dims[0] == h * w else x
        x = torch.from_numpy(x.reshape(n, -1).astype(np.float32))
        labels = np.array(rec["labels"], dtype=np.int64)
        units = sorted(set(labels.tolist()))
        tasks.append(units)
        y = torch.from_numpy(np.searchsorted(units, labels))
        if args.resync and t > 0:
            load_weights(net, safetensors(args.trace / f"call{call - 1}.end.safetensors"))
        diffs = []
        for tb_loss, batch in rec["steps"]:
            idx = torch.tensor(batch)
            loss = torch.nn.functional.cross_entropy(net(x[idx])[:, units], y[idx])
            diffs.append(abs(loss.item() - tb_loss))
            adam.zero_grad()
            loss.backward()
            adam.step()
        end = safetensors(args.trace / f"call{call}.end.safetensors")
        rel = [
            float((m.weight.detach().T - end[k + ".weight"]).norm() / end[k + ".weight"].norm())
            for m, k in zip([m for m in net if isinstance(m, torch.nn.Linear)], keys)
        ]
        params = [p.detach().numpy().T.copy() if p.dim() == 2 else p.detach().numpy() for p in net.parameters()]
        row = [round(100 * evaluate(params, test, "task", u), 2) for u in tasks]
        print(
            f"task {t + 1} (classes {units}, {len(diffs)} steps): |loss - tunnelbench's| max over the first 10 steps "
            f"{max(diffs[:10]):.1e}, first 100 {max(diffs[:100]):.1e}; weights after it, relative to tunnelbench's: "
            f"{', '.join(f'{r:.1e}' for r in rel)}; accuracy on tasks 1..{t + 1}: {row}",
            flush=True,
        )
    acc = float(np.mean(row))
    print(f"PyTorch replay ACC {acc:.2f} (tunnelbench's run: see its accuracy_matrix.csv)")


if __name__ == "__main__":
    main()
