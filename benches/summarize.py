#!/usr/bin/env python3
"""Summarise benches/side_by_side.sh output: per network, the median (and range) of each
implementation's training and inference throughput over the rounds, and the ratio of medians
to PyTorch's.

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
    runs[(r["arch"], float(r["width"]), who)].append(r)

nets = sorted({(a, w) for a, w, _ in runs}, key=lambda n: (n[0], n[1]))
print("| network | workload | implementation | median | range | vs PyTorch |")
print("|---|---|---|---|---|---|")
for arch, width in nets:
    torch_key = next(k for k in runs if k[:2] == (arch, width) and k[2].startswith("pytorch"))
    for field, label in [("train_images_per_sec", "training img/s"), ("inference_images_per_sec", "inference img/s")]:
        base = statistics.median(r[field] for r in runs[torch_key])
        for key in sorted((k for k in runs if k[:2] == (arch, width)), key=lambda k: k[2]):
            values = [r[field] for r in runs[key]]
            med = statistics.median(values)
            print(f"| {arch} ×{width:g} | {label} | {key[2]} | {med:.1f} | {min(values):.1f}–{max(values):.1f} "
                  f"| {med / base:.2f}× |")
