"""ImageFolder at scale: a synthetic JPEG tree, a ResNet-50 checkpoint, and a side-by-side of tunnelbench and PyTorch
decoding + resizing JPEGs to 224² and extracting ResNet-50 features on the CPU (docs/performance.md).

    pip install torch torchvision pillow
    python3 benches/reference/image_folder_bench.py make --out /tmp/jpegs --classes 100 --train 80 --test 20
    python3 benches/reference/image_folder_bench.py weights --out /tmp/resnet50-random.pth
    python3 benches/reference/image_folder_bench.py scenario --data /tmp/jpegs --weights /tmp/resnet50-random.pth \
        --out /tmp/if.toml
    python3 benches/reference/image_folder_bench.py compare --data /tmp/jpegs --weights /tmp/resnet50-random.pth \
        --images 256 --rounds 3 --threads 2

`make` writes random-content JPEGs (smooth random colour fields plus noise, 500x375 like an average ImageNet photo,
quality 90) as `train/<class>/` and `test/<class>/`. `compare` runs, interleaved for `--rounds` rounds, (1) PyTorch:
PIL decode + `Resize(256, bicubic)` + `CenterCrop(224)` over `--images` images of `train/` in `--threads` processes,
then torchvision's `resnet50` in eval mode over those images (batch 32, `torch.set_num_threads`) with a 2x2 average
pool of every probe point tunnelbench uses (the 49 conv outputs before their BatchNorm), and (2) tunnelbench:
`tunnelbench run` of the same images with a cold cache (decode) and the same network, reading the data and feature
times from its summary.json. It prints one JSON object per round and the medians.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time


def make(args):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = args.width, args.height
    for split, n in (("train", args.train), ("test", args.test)):
        for c in range(args.classes):
            d = pathlib.Path(args.out, split, f"class{c:04d}")
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
                img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.int16)
                img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:05d}.jpg", quality=90)


def weights(args):
    import torch
    from torchvision.models import resnet50

    torch.manual_seed(0)
    torch.save(resnet50().state_dict(), args.out)


def scenario_text(train, test, weights_path, per_class=None):
    keep = f"train_per_class = {per_class}\ntest_per_class = 1\n" if per_class else ""
    return f"""name = "image-folder-bench"
seed = 0
resolution = 224

[id]
kind = "image-folder"
label = "jpegs"
train = "{train}"
test = "{test}"
{keep}
[model]
name = "resnet-50"
weights = "{weights_path}"

[probe.main]
kind = "closed-form"
standardize = true

[control]
random_init = false
"""


def scenario(args):
    data = pathlib.Path(args.data).resolve()
    pathlib.Path(args.out).write_text(scenario_text(data / "train", data / "test", pathlib.Path(args.weights).resolve()))


def _decode(path):
    from PIL import Image
    from torchvision import transforms

    t = transforms.Compose(
        [transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224)]
    )
    import numpy as np

    with Image.open(path) as im:
        return np.asarray(t(im.convert("RGB")))


def torch_round(files, threads):
    import multiprocessing

    import numpy as np
    import torch
    from torchvision.models import resnet50

    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(threads) as pool:
        imgs = pool.map(_decode, files, chunksize=16)
    decode = time.perf_counter() - t
    torch.set_num_threads(threads)
    model = resnet50().eval()
    pooled = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: pooled.append(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(o, 2), 1)))
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255).sub(mean).div(std)
    t = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(x), 32):
            pooled.clear()
            model(x[b : b + 32])
    extract = time.perf_counter() - t
    for h in hooks:
        h.remove()
    n = len(files)
    return {"impl": "pytorch", "torch": torch.__version__, "images": n, "decode_img_s": n / decode,
            "extract_img_s": n / extract}


def tunnelbench_round(args, per_class, n):
    data = pathlib.Path(args.data).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        sc = pathlib.Path(tmp, "sc.toml")
        sc.write_text(scenario_text(data / "train", data / "test", pathlib.Path(args.weights).resolve(), per_class))
        env = dict(os.environ, TUNNELBENCH_DATA=str(pathlib.Path(tmp, "cache")))
        out = pathlib.Path(tmp, "out")
        subprocess.run([args.bin, "run", str(sc), "--out", str(out), "--quiet"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        s = json.loads((out / "summary.json").read_text())
    t = s["timings_secs"]
    # The run decodes and extracts the training images and one test image per class.
    total = n + args.classes
    return {"impl": "tunnelbench", "images": total, "decode_img_s": total / t["data"],
            "extract_img_s": total / t["features"]}


def compare(args):
    train = pathlib.Path(args.data, "train")
    classes = sorted(p for p in train.iterdir() if p.is_dir())
    args.classes = len(classes)
    per_class = max(1, args.images // len(classes))
    files = [f for c in classes for f in sorted(c.iterdir())[:per_class]]
    rows = []
    for r in range(args.rounds):
        for row in (torch_round(files, args.threads), tunnelbench_round(args, per_class, len(files))):
            row["round"] = r
            print(json.dumps(row), flush=True)
            rows.append(row)
    for impl in ("pytorch", "tunnelbench"):
        mine = [x for x in rows if x["impl"] == impl]
        med = {k: statistics.median(x[k] for x in mine) for k in ("decode_img_s", "extract_img_s")}
        print(f"{impl}: median decode+resize {med['decode_img_s']:.1f} img/s, "
              f"ResNet-50 features {med['extract_img_s']:.2f} img/s ({len(mine)} rounds)")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--classes", type=int, default=100)
    m.add_argument("--train", type=int, default=80)
    m.add_argument("--test", type=int, default=20)
    m.add_argument("--width", type=int, default=500)
    m.add_argument("--height", type=int, default=375)
    w = sub.add_parser("weights")
    w.add_argument("--out", required=True)
    s = sub.add_parser("scenario")
    s.add_argument("--data", required=True)
    s.add_argument("--weights", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--data", required=True)
    c.add_argument("--weights", required=True)
    c.add_argument("--images", type=int, default=256)
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--bin", default="target/release/tunnelbench")
    args = p.parse_args()
    {"make": make, "weights": weights, "scenario": scenario, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
