#!/usr/bin/python3
"""The ERF figure of the comparison in small (issue 23 item 2): one heat map per preset, side by side.

Usage: tools/erf_figure.py RUNS_DIR OUT.png [--order P1,P2,...]

RUNS_DIR is the committed results folder that tools/comparison_table.py reads: one folder per run with options.json
(its "preset") and erf.npz (key "erf": the raw mean ERF map of `slak erf`, H x W, stored as float32) or erf.npy.
Per preset the raw maps of its seeds are averaged, then drawn as `slak erf` draws one map (RepLKNet's
visualisation): log10(x + 1) scaled by its maximum, so every panel spans 0..1. Each panel's title gives the preset,
the number of seeds averaged and the area ratios r(0.2) / r(0.5) of the averaged map, computed as `slak erf` does
(the smallest centred square of side 2i + 1, i = 1 .. H // 2 - 1, holding more than t of the total of the scaled map;
area / image area).
Needs Debian's python3-numpy and python3-matplotlib (a machine that draws the figure, not CI).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def load_map(folder):
    npz, npy = os.path.join(folder, "erf.npz"), os.path.join(folder, "erf.npy")
    if os.path.isfile(npz):
        with np.load(npz) as f:
            return f["erf"].astype(np.float64)
    if os.path.isfile(npy):
        return np.load(npy).astype(np.float64)
    raise SystemExit(f"{folder}: neither erf.npz nor erf.npy")


def scaled(raw):
    m = np.log10(raw + 1.0)
    return m / m.max()


def ratio(m, t):
    """RepLKNet analyze_erf's high-contribution area ratio of the scaled map m (None when no square reaches t)."""
    h, w = m.shape
    total = m.sum()
    for i in range(1, h // 2):
        side = 2 * i + 1
        top, left = h // 2 - i, w // 2 - i
        if m[top:top + side, left:left + side].sum() / total > t:
            return side * side / (h * w)
    return None


def main(argv):
    order = ()
    if "--order" in argv:
        i = argv.index("--order")
        order = tuple(argv[i + 1].split(","))
        del argv[i:i + 2]
    if len(argv) != 2:
        raise SystemExit(__doc__.strip())
    runs_dir, out = argv
    maps = {}
    for name in sorted(os.listdir(runs_dir)):
        folder = os.path.join(runs_dir, name)
        if not os.path.isdir(folder):
            continue
        with open(os.path.join(folder, "options.json"), encoding="utf-8") as f:
            preset = json.load(f)["preset"]
        maps.setdefault(preset, []).append(load_map(folder))
    presets = [p for p in order if p in maps] + sorted(p for p in maps if p not in order)
    if not presets:
        raise SystemExit(f"{runs_dir}: no runs with an ERF map")
    fig, axes = plt.subplots(1, len(presets), figsize=(3.2 * len(presets), 3.6), squeeze=False)
    for ax, preset in zip(axes[0], presets):
        shapes = {m.shape for m in maps[preset]}
        if len(shapes) != 1:
            raise SystemExit(f"{preset}: ERF maps of different sizes {sorted(shapes)}")
        m = scaled(np.mean(maps[preset], axis=0))
        image = ax.imshow(m, cmap="RdYlGn", vmin=0.0, vmax=1.0)
        r2, r5 = ratio(m, 0.2), ratio(m, 0.5)
        fmt = lambda r: "none" if r is None else f"{r:.3f}"  # noqa: E731
        ax.set_title(f"{preset} ({len(maps[preset])} seed{'s' if len(maps[preset]) != 1 else ''})\nr(0.2) {fmt(r2)}, r(0.5) {fmt(r5)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes[0]), fraction=0.012, pad=0.01)
    h, w = m.shape
    fig.suptitle(f"Effective receptive field, {h}x{w} inputs (log10(x + 1) / max, mean map over seeds)", fontsize=10)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
