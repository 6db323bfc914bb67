#!/usr/bin/env python3
"""Summarise benches/side_by_side.sh or benches/device_check.sh output, as the tables of
docs/performance.md: per setting (the GPU, or the CPU with a thread count), network and resolution,
the median (and range, min–max) of each implementation's training and inference throughput over
the rounds and the ratio of medians to PyTorch's in the same setting (on the GPU, to PyTorch with
TF32 on / off); on the CPU, the median of the paired ratios (each round's own-kernel run over that
round's PyTorch run) with a 95% bootstrap interval of that median and the rounds below 1; then,
where the runs recorded it, tunnelbench's training step stage by stage (median over the rounds of
each run's per-step medians); then the quick scenario end to end, the GPU checks against the CPU
backend, and the measurements that failed or were skipped.

    python3 benches/summarize.py OUT.jsonl [MORE.jsonl ...]

Several files are read as one (the rounds of several runs of the script).
"""
import json
import random
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]


def setting(r):
    """The GPU, or the CPU with its thread count; side_by_side.sh's lines are CPU lines."""
    if r.get("device") in ("gpu", "cuda") or r.get("backend") in ("wgpu", "cuda") and r.get("implementation") != "pytorch":
        return "GPU"
    return f"CPU, {r.get('threads', '?')} threads"


def who(r):
    if r.get("implementation") == "pytorch":
        name = "pytorch " + r["torch"]
        if setting(r) == "GPU":
            name += f" CUDA, TF32 {r.get('tf32') or 'default'}"
        return name
    if r.get("backend") == "flex" or "kernels" in r and r.get("backend") not in ("wgpu", "cuda"):
        return f"{r['backend']} ({r['kernels']} kernels)"
    return r["backend"]


def tf32(r):
    if r.get("implementation") == "pytorch" and setting(r) == "GPU":
        return r.get("tf32") or "default"
    return r.get("tf32") or ""


benches = [r for r in rows if r.get("kind", "bench") == "bench"]
runs = defaultdict(list)
for r in benches:
    runs[(setting(r), r["arch"], float(r["width"]), r.get("resolution", 32), r.get("batch", 128), who(r))].append(r)

groups = sorted({k[:5] for k in runs}, key=lambda g: (g[0] != "GPU", g[0], g[3], g[1], g[2]))


def name(net):
    arch, width, res, batch = net
    return f"{arch} ×{width:g}, {res}², batch {batch}"


def ratios(med, bases):
    return " / ".join(f"{med / b:.2f}×" for b in bases)


print("| setting | network | workload | implementation | TF32 | median | range | vs PyTorch (GPU: TF32 on / off) |")
print("|---|---|---|---|---|---|---|---|")
for group in groups:
    keys = sorted((k for k in runs if k[:5] == group), key=lambda k: (not k[5].startswith("pytorch"), k[5]))
    torch_keys = [k for k in keys if k[5].startswith("pytorch")]
    # On the GPU, TF32 on before off.
    torch_keys.sort(key=lambda k: {"on": 0, "off": 1}.get(runs[k][0].get("tf32"), 2))
    for field, label in [("train_images_per_sec", "training img/s"), ("inference_images_per_sec", "inference img/s")]:
        bases = [statistics.median(r[field] for r in runs[k]) for k in torch_keys]
        for key in keys:
            values = [r[field] for r in runs[key]]
            med = statistics.median(values)
            print(f"| {group[0]} | {name(group[1:])} | {label} | {key[5]} | {tf32(runs[key][0])} | {med:.1f} "
                  f"| {min(values):.1f}–{max(values):.1f} | {ratios(med, bases) if bases else ''} |")


def median_interval(values, draws=4000):
    """The 95% percentile bootstrap interval of the median of `values` (seeded: the same file gives
    the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


# Paired ratios: each round's own-kernel run against the PyTorch run of the same round (the i-th of
# each in the file's order), so that what the machine did in that minute cancels.
paired = [g for g in groups if g[0] != "GPU"]
if paired:
    print()
    print("| setting | network | workload | rounds | own / PyTorch, median of paired ratios | 95% interval (bootstrap) "
          "| range | rounds below 1 |")
    print("|---|---|---|---|---|---|---|---|")
for group in paired:
    torch_runs = [runs[k] for k in runs if k[:5] == group and k[5].startswith("pytorch")]
    own_runs = [runs[k] for k in runs if k[:5] == group and k[5].endswith("(own kernels)")]
    if len(torch_runs) != 1 or len(own_runs) != 1:
        continue
    for field, label in [("train_images_per_sec", "training"), ("inference_images_per_sec", "inference")]:
        ratios_ = [o[field] / t[field] for o, t in zip(own_runs[0], torch_runs[0])]
        low, high = median_interval(ratios_)
        print(f"| {group[0]} | {name(group[1:])} | {label} | {len(ratios_)} | {statistics.median(ratios_):.3f}× "
              f"| {low:.3f}–{high:.3f} | {min(ratios_):.2f}–{max(ratios_):.2f} | {sum(r < 1 for r in ratios_)} |")

stages = ["data", "forward", "backward", "optimizer"]
staged = [k for k in runs if all("train_stage_secs" in r for r in runs[k]) and not k[5].startswith("pytorch")]
if staged:
    print()
    print("| setting | network | implementation | " + " | ".join(f"{s}, ms" for s in stages) + " | optimizer share | data share |")
    print("|---|---|---|" + "---|" * (len(stages) + 2))
    for key in sorted(staged, key=lambda k: (k[0] != "GPU", k[0], k[3], k[1], k[2], k[5])):
        med = {s: 1e3 * statistics.median(r["train_stage_secs"][s] for r in runs[key]) for s in stages}
        total = sum(med.values())
        cells = " | ".join(f"{med[s]:.1f}" for s in stages)
        print(f"| {key[0]} | {name(key[1:5])} | {key[5]} | {cells} | {100 * med['optimizer'] / total:.1f}% "
              f"| {100 * med['data'] / total:.1f}% |")

quick = [r for r in rows if r.get("kind") == "quick"]
if quick:
    print()
    print("| quick scenario | backend | wall, s | data, s | training, s | features, s | probes, s | peak memory, GB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in quick:
        t = r.get("timings_secs") or {}
        cells = " | ".join(f"{t[s]:.1f}" if s in t else "" for s in ["data", "train", "features", "probes"])
        print(f"| {setting(r)} | {r['backend']} | {r['wall_secs']:.1f} | {cells} | {r['max_rss_gb']:.2f} |")

checks = [r for r in rows if r.get("kind") == "check"]
if checks:
    print()
for r in checks:
    tests = ", ".join(f"{t} {v}" for t, v in sorted(r.get("tests", {}).items())) or "no test ran"
    print(f"GPU check of {r.get('backend')} against flex ({'passed' if r.get('passed') else 'FAILED'}): {tests}")

machine = [r for r in rows if r.get("kind") == "machine"]
failed = [r for r in rows if r.get("kind") == "failure"]
skipped = [r for r in rows if r.get("kind") == "skipped"]
if machine or failed or skipped:
    print()
for r in machine:
    print(f"Machine: {r.get('cpu')} ({r.get('cpu_threads')} threads), GPU {r.get('gpu') or 'none'}, torch {r.get('torch')}, "
          f"GPU backends {', '.join(r.get('gpu_backends') or []) or 'none'}, {r.get('date')}"
          + (", dry run" if r.get("dry_run") else ""))


def what(r):
    shape = f"{r['arch']} ×{float(r['width']):g}, {r.get('resolution')}², batch {r.get('batch')}" if "arch" in r else ""
    return " ".join(filter(None, [r.get("measured"), r.get("implementation"), r.get("backend"), setting(r), shape]))


for r in failed:
    lines = (r.get("stderr") or "").strip().splitlines()
    # A panic's message is the line after "panicked at"; else the last line.
    panic = [lines[i + 1] for i, l in enumerate(lines[:-1]) if "panicked at" in l]
    print(f"- FAILED: {what(r)}: exit {r.get('exit')}: {(panic or lines[-1:] or [''])[0][:200]}")
for r in skipped:
    print(f"- skipped: {what(r)}: {r.get('reason')}")
