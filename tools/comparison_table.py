#!/usr/bin/python3
"""The multi-seed comparison table (issue 23 item 2) rebuilt from committed run files.

Usage: tools/comparison_table.py RUNS_DIR [--erf]

RUNS_DIR holds one folder per run (any names), each with the `metrics.jsonl` and `options.json` that `slak train`
writes, and optionally the `erf.json` of `slak erf` on that run's selected model. Runs are grouped by
options.json's "preset"; per preset the table gives the number of seeds, the test top-1 as mean +- sample standard
deviation over the seeds, each seed's value, and (with --erf) the mean ERF ratios.

Which epoch a run contributes: the epoch with the highest validation top-1 ("val_top1" in metrics.jsonl; the earliest
on ties) when the runs record one, otherwise the final epoch. The test set never selects. Every run of the table must
have the same budget (epochs and batch size), and a preset must not list a seed twice; both are errors naming the
runs. Only the standard library.
"""
import json
import math
import os
import sys


def load_run(folder):
    metrics = os.path.join(folder, "metrics.jsonl")
    options = os.path.join(folder, "options.json")
    for path in (metrics, options):
        if not os.path.isfile(path):
            raise SystemExit(f"{folder}: {os.path.basename(path)} is missing")
    with open(metrics, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(options, encoding="utf-8") as f:
        opts = json.load(f)
    if not rows:
        raise SystemExit(f"{metrics}: no epochs")
    erf = None
    erf_path = os.path.join(folder, "erf.json")
    if os.path.isfile(erf_path):
        with open(erf_path, encoding="utf-8") as f:
            erf = json.load(f)
    return rows, opts, erf


def select(rows):
    """(epoch row, how it was chosen): best validation top-1 if recorded, else the final epoch."""
    if all(r.get("val_top1") is not None for r in rows):
        best = max(rows, key=lambda r: (r["val_top1"], -r["epoch"]))
        return best, "validation"
    return rows[-1], "final epoch"


def mean_std(values):
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def build(runs_dir, with_erf=False):
    folders = sorted(os.path.join(runs_dir, d) for d in os.listdir(runs_dir)
                     if os.path.isdir(os.path.join(runs_dir, d)))
    if not folders:
        raise SystemExit(f"{runs_dir}: no run folders")
    groups = {}
    budgets = {}
    for folder in folders:
        rows, opts, erf = load_run(folder)
        budget = (opts.get("epochs"), opts.get("batch_size"))
        budgets.setdefault(budget, []).append(os.path.basename(folder))
        row, how = select(rows)
        groups.setdefault(opts["preset"], []).append(
            {"run": os.path.basename(folder), "seed": opts.get("seed"), "top1": row["test_top1"],
             "epoch": row["epoch"], "how": how, "erf": erf})
    if len(budgets) > 1:
        detail = "; ".join(f"epochs {e}, batch {b}: {', '.join(r)}" for (e, b), r in budgets.items())
        raise SystemExit(f"runs have different budgets: {detail}")
    lines = []
    head = "| preset | seeds | selected by | test top-1 (mean +- std) | per seed (seed: top-1 @ epoch) |"
    if with_erf:
        head += " ERF r(0.2) | r(0.3) | r(0.5) | r(0.99) |"
    lines.append(head)
    lines.append("|" + "---|" * (head.count("|") - 1))
    for preset in sorted(groups):
        runs = sorted(groups[preset], key=lambda r: (r["seed"] is None, r["seed"]))
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"{preset}: a seed appears twice: {', '.join(r['run'] for r in runs)}")
        m, s = mean_std([r["top1"] for r in runs])
        hows = sorted({r["how"] for r in runs})
        per_seed = ", ".join(f'{r["seed"]}: {r["top1"]:.2f} @ {r["epoch"]}' for r in runs)
        stat = f"{m:.2f} +- {s:.2f}" if s is not None else f"{m:.2f} (one seed)"
        cells = [preset, str(len(runs)), " / ".join(hows), stat, per_seed]
        if with_erf:
            for t in ("0.2", "0.3", "0.5", "0.99"):
                values = [r["erf"]["ratios"].get(t) for r in runs if r["erf"] is not None]
                values = [v for v in values if v is not None]
                cells.append(f"{sum(values) / len(values):.4f}" if values else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--erf"]
    if len(args) != 1:
        raise SystemExit(__doc__.strip())
    print(build(args[0], with_erf="--erf" in sys.argv[1:]))
