"""Split MNIST as van de Ven & Tolias (2018, arXiv 1809.10635) ran it, written from the paper's
description in plain numpy: an independent check of what tunnelbench's `split-mnist-vdv` scenario
measures, and a way to see which of the protocol's details move the numbers.

The protocol: 5 tasks of 2 digits (0/1, 2/3, ..., 8/9), an MLP of 2 x 400 ReLU units initialised as
PyTorch's nn.Linear, Adam (0.9, 0.999) at lr 1e-3, batch 128 drawn from a reshuffled pass over the
task's training images, 2000 iterations per task, fine-tuning (no continual-learning method).
Task-incremental: only the current task's two output units take part in the loss, and a test image
is scored by the argmax over its own task's two units. Class-incremental: the loss and the scoring
use the output units of every class seen so far.

    pip install numpy
    python3 benches/reference/split_mnist_vdv.py --data ~/.cache/tunnelbench/mnist --seeds 3
    python3 benches/reference/split_mnist_vdv.py --data ~/.cache/tunnelbench/mnist --seeds 3 --torch  # pip install torch

`--torch` trains the same network in PyTorch, as the authors' code does: a second implementation
that checks the first (fine-tuning only). `--first-seed N` starts the seeds at N.

Options that differ from the paper on purpose, to compare with the harness:
  --input harness   28x28 digits as three identical channels normalised with the ImageNet
                    statistics (what tunnelbench feeds the network) instead of the paper's 32x32
                    padded digits in [0, 1];
  --input padded-rgb  the paper's padded 32x32 digits in [0, 1] as three identical channels
                    (tunnelbench's `preprocess = "pad"`);
  --reset-adam      a fresh Adam state at every task (tunnelbench's trainer) instead of one Adam
                    kept over the whole sequence (the paper's default optimiser);
  --joint           each task trains on the union of the tasks so far (the paper's joint
                    upper bound, continued from the previous task's weights);
  --all-units       the loss over all 10 output units at every task (a shared head trained as
                    tunnelbench's `heads = "shared"`) in the class-incremental scenario.
  --partial-batches train on the last, smaller batch of every pass too (as tunnelbench's trainer)
                    instead of starting the next pass.
"""

import argparse
import gzip
import os
import pathlib

# One BLAS thread: the matrices are small, and threads that spin beside another process slow it down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, split, form):
    images = read_idx(data_dir / f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = read_idx(data_dir / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    if form == "vdv":
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        x = images.reshape(len(images), -1)
    elif form == "padded-rgb":
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        x = np.repeat(images[:, None, :, :], 3, axis=1).reshape(len(images), -1)
    else:
        x = (images[:, None, :, :] - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]
        x = x.reshape(len(images), -1)
    return x.astype(np.float32), labels


def linear(rng, fan_in, fan_out):
    bound = 1.0 / np.sqrt(fan_in)
    return [
        rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
        rng.uniform(-bound, bound, fan_out).astype(np.float32),
    ]


class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def forward(params, x):
    w1, b1, w2, b2, w3, b3 = params
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.maximum(h1 @ w2 + b2, 0)
    return h1, h2, h2 @ w3 + b3


def grads(params, x, y, units):
    """Cross-entropy over the output units `units` (y indexes into them), and its gradients."""
    w1, b1, w2, b2, w3, b3 = params
    h1, h2, logits = forward(params, x)
    z = logits[:, units]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dlogits = np.zeros_like(logits)
    dlogits[:, units] = p / len(y)
    dw3, db3 = h2.T @ dlogits, dlogits.sum(0)
    dh2 = (dlogits @ w3.T) * (h2 > 0)
    dw2, db2 = h1.T @ dh2, dh2.sum(0)
    dh1 = (dh2 @ w2.T) * (h1 > 0)
    dw1, db1 = x.T @ dh1, dh1.sum(0)
    return [dw1, db1, dw2, db2, dw3, db3]


def accuracy(params, x, y, units):
    """Accuracy over the output units `units` of an MLP of any depth (weights, biases in turn)."""
    *hidden, (w, b) = list(zip(params[::2], params[1::2]))
    for wi, bi in hidden:
        x = np.maximum(x @ wi + bi, 0)
    logits = x @ w + b
    return float((np.asarray(units)[logits[:, units].argmax(1)] == y).mean())


def batches(rng, idx, args):
    """`args.iterations` batches of `args.batch` indices from reshuffled passes over `idx`."""
    order, pos = rng.permutation(idx), 0
    for _ in range(args.iterations):
        left = len(order) - pos
        if left < (2 if args.partial_batches else args.batch):
            order, pos = rng.permutation(idx), 0
        yield order[pos : pos + args.batch]
        pos += args.batch


def run(seed, scenario, train, test, args):
    rng = np.random.default_rng(seed)
    dim = train[0].shape[1]
    params = linear(rng, dim, 400) + linear(rng, 400, 400) + linear(rng, 400, 10)
    adam = Adam(params)
    tasks = [[2 * t, 2 * t + 1] for t in range(5)]
    for t, classes in enumerate(tasks):
        if args.reset_adam:
            adam = Adam(params)
        seen = [c for task in tasks[: t + 1] for c in task]
        idx = np.flatnonzero(np.isin(train[1], seen if args.joint else classes))
        if scenario == "task":
            units = classes
        elif args.all_units:
            units = list(range(10))
        else:
            units = list(range(2 * t + 2))
        for b in batches(rng, idx, args):
            y = np.searchsorted(units, train[1][b])
            adam.step(params, grads(params, train[0][b], y, units))
        if args.matrix:
            row = [evaluate(params, test, scenario, c) for c in tasks]
            print(f"  after task {t + 1}: {[round(100 * a, 1) for a in row]}", flush=True)
    accs = [evaluate(params, test, scenario, c) for c in tasks]
    return 100 * float(np.mean(accs)), accs


def run_torch(seed, scenario, train, test, args):
    """The same protocol in PyTorch (nn.Linear's own initialisation, torch.optim.Adam, a
    cross-entropy over the output units that take part), as the authors' code is written: a check
    of the numpy implementation above. Fine-tuning only."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    dim = train[0].shape[1]
    net = torch.nn.Sequential(
        torch.nn.Linear(dim, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 10)
    )
    adam = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    tasks = [[2 * t, 2 * t + 1] for t in range(5)]
    xs, ys = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    for t, classes in enumerate(tasks):
        if args.reset_adam:
            adam = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
        idx = np.flatnonzero(np.isin(train[1], classes))
        units = classes if scenario == "task" else list(range(2 * t + 2))
        for b in batches(rng, idx, args):
            b = torch.from_numpy(b)
            y = torch.searchsorted(torch.tensor(units), ys[b])
            loss = torch.nn.functional.cross_entropy(net(xs[b])[:, units], y)
            adam.zero_grad()
            loss.backward()
            adam.step()
    params = [p.detach().numpy().T.copy() if p.dim() == 2 else p.detach().numpy() for p in net.parameters()]
    accs = [evaluate(params, test, scenario, c) for c in tasks]
    return 100 * float(np.mean(accs)), accs


def evaluate(params, test, scenario, classes):
    sel = np.isin(test[1], classes)
    units = classes if scenario == "task" else list(range(10))
    return accuracy(params, test[0][sel], test[1][sel], units)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=pathlib.Path, required=True, help="folder of the MNIST .gz files")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--scenario", choices=["task", "class"], default="task")
    ap.add_argument("--input", choices=["vdv", "harness", "padded-rgb"], default="vdv")
    ap.add_argument("--reset-adam", action="store_true")
    ap.add_argument("--all-units", action="store_true")
    ap.add_argument("--joint", action="store_true",
                    help="train each task on the union of the tasks so far (the paper's joint upper bound)")
    ap.add_argument("--matrix", action="store_true", help="print the accuracy on every task after each task")
    ap.add_argument("--torch", action="store_true", help="train with PyTorch instead of numpy (fine-tuning only)")
    ap.add_argument("--partial-batches", action="store_true",
                    help="train on the last, smaller batch of every pass too (as tunnelbench's trainer)")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if args.torch and (args.joint or args.all_units or args.matrix):
        ap.error("--torch runs plain fine-tuning only")
    if args.joint and args.scenario == "task":
        ap.error("--joint is written for the class-incremental scenario only")
    train, test = load(args.data, "train", args.input), load(args.data, "test", args.input)
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        acc, per_task = (run_torch if args.torch else run)(seed, args.scenario, train, test, args)
        results.append(acc)
        print(f"seed {seed}: ACC {acc:.2f}  per task {[round(100 * a, 1) for a in per_task]}", flush=True)
    r = np.array(results)
    sem = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else float("nan")
    strategy = "joint" if args.joint else "fine-tuning"
    print(f"{args.scenario}-IL {strategy}, input {args.input}, reset-adam {args.reset_adam}: "
          f"ACC {r.mean():.2f} +- {sem:.2f} (mean +- SEM over {len(r)} seeds)")


if __name__ == "__main__":
    main()
