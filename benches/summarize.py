#!/usr/bin/env python3
"""Summarise benches/side_by_side.sh output: per network and resolution, the median (and range,
min–max) of each implementation's training and inference throughput over the rounds and the ratio
of medians to PyTorch's; then, where the runs recorded it, tunnelbench's training step stage by
stage (median over the rounds of each run's per-step medians).

    python3 benches/summarize.py OUT.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = defaultdict(list)
for r in rows:
    who = "pytorch " + r["torch"] if r.get("implementation") == "pytorch" else f"{r['backend']} ({r['kernels']} kernels)"
    runs[(r["arch"], float(r["width"]), r.get("resolution", 32), r.get("batch", 128), who)].append(r)

nets = sorted({k[:4] for k in runs}, key=lambda n: (n[2], n[0], n[1]))


def name(net):
    arch, width, res, batch = net
    return f"{arch} ×{width:g}, {res}², batch {batch}"


print("| network | workload | implementation | median | range | vs PyTorch |")
print("|---|---|---|---|---|---|")
for net in nets:
    keys = sorted((k for k in runs if k[:4] == net), key=lambda k: k[4])
    torch_key = next((k for k in keys if k[4].startswith("pytorch")), None)
    for field, label in [("train_images_per_sec", "training img/s"), ("inference_images_per_sec", "inference img/s")]:
        base = statistics.median(r[field] for r in runs[torch_key]) if torch_key else None
        for key in keys:
            values = [r[field] for r in runs[key]]
            med = statistics.median(values)
            ratio = f"{med / base:.2f}×" if base else ""
            print(f"| {name(net)} | {label} | {key[4]} | {med:.1f} | {min(values):.1f}–{max(values):.1f} | {ratio} |")

stages = ["data", "forward", "backward", "optimizer"]
staged = [k for k in runs if all("train_stage_secs" in r for r in runs[k]) and not k[4].startswith("pytorch")]
if staged:
    print()
    print("| network | implementation | " + " | ".join(f"{s}, ms" for s in stages) + " | optimizer share | data share |")
    print("|---|---|" + "---|" * (len(stages) + 2))
    for key in sorted(staged, key=lambda k: (k[2], k[0], k[1], k[4])):
        med = {s: 1e3 * statistics.median(r["train_stage_secs"][s] for r in runs[key]) for s in stages}
        total = sum(med.values())
        cells = " | ".join(f"{med[s]:.1f}" for s in stages)
        print(f"| {name(key[:4])} | {key[4]} | {cells} | {100 * med['optimizer'] / total:.1f}% "
              f"| {100 * med['data'] / total:.1f}% |")
