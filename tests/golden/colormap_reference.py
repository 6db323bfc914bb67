"""Reference colours for tests/plot.rs `colormaps_match_matplotlib`.

matplotlib 3.11.2: `pip install matplotlib==3.11.2`, then `python3 tests/golden/colormap_reference.py`.
"""
import matplotlib

for name in ["viridis", "RdBu_r"]:
    cm = matplotlib.colormaps[name]
    for t in [0.0, 0.3, 0.5, 0.7, 1.0]:
        r, g, b, _ = cm(t)
        print(name, t, round(r * 255), round(g * 255), round(b * 255))
