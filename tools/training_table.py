#!/usr/bin/env python3
"""Markdown tables from `slak train` run folders (metrics.jsonl + options.json), for bench/results/.

    tools/training_table.py epochs RUN_DIR            per-epoch table of one run
    tools/training_table.py compare RUN_DIR...        one row per run: preset, final/best top-1, wall time, img/s
Only the standard library: runs anywhere the runs are.
"""
import json
import os
import sys


def load(run):
    with open(os.path.join(run, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(run, "options.json"), encoding="utf-8") as f:
        options = json.load(f)
    if not rows:
        raise SystemExit(f"{run}: metrics.jsonl has no epochs")
    return rows, options


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def epochs(run):
    """Per-epoch table. Runs since the validation rule have val_* every epoch and test_* where the test set was scored
    (the last epoch); older runs have test_* every epoch and no val_*."""
    rows, _ = load(run)
    ema = any(r.get("ema_top1") is not None for r in rows)
    val = any(r.get("val_top1") is not None for r in rows)
    head = "| epoch | train loss |" + (" val top-1 | val top-5 | val loss |" if val else "") + \
        " test top-1 | test top-5 | test loss |" + (" EMA top-1 |" if ema else "") + " lr | density | img/s | wall s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        cells = [str(r["epoch"]), f'{r["train_loss"]:.4f}']
        if val:
            cells += [fmt(r.get("val_top1"), ".2f"), fmt(r.get("val_top5"), ".2f"), fmt(r.get("val_loss"), ".4f")]
        cells += [fmt(r.get("test_top1"), ".2f"), fmt(r.get("test_top5"), ".2f"), fmt(r.get("test_loss"), ".4f")]
        if ema:
            cells.append(fmt(r.get("ema_top1"), ".2f"))
        cells += [f'{r["lr"]:.2e}', f'{r["density"]:.3f}', f'{r["images_per_second"]:.0f}', f'{r["wall_time"]:.0f}']
        print("| " + " | ".join(cells) + " |")


def compare(runs):
    """One row per run: the selection score is validation top-1 when the run has one (never the test set), and the
    test figure is the last one scored."""
    print("| run | preset | epochs | sparse | best val top-1 (epoch) | test top-1 | test loss | wall s | mean img/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        rows, o = load(run)
        last = rows[-1]
        scored = [r for r in rows if r.get("val_top1") is not None]
        best = f'{max(r["val_top1"] for r in scored):.2f} ({max(scored, key=lambda r: r["val_top1"])["epoch"]})' \
            if scored else "(no validation set)"
        tested = [r for r in rows if r.get("test_top1") is not None]
        test = tested[-1] if tested else None
        ips = sum(r["images_per_second"] for r in rows) / len(rows)
        sparse = f'{o["density"]:.2f} {o["sparse_init"]}' if o.get("sparse") else "dense"
        print(f'| {os.path.basename(os.path.normpath(run))} | {o["preset"]} | {last["epoch"]}/{o["epochs"]} | {sparse} | '
              f'{best} | {fmt(test and test["test_top1"], ".2f")} | {fmt(test and test["test_loss"], ".4f")} | '
              f'{last["wall_time"]:.0f} | {ips:.0f} |')


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("epochs", "compare"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "epochs":
        epochs(sys.argv[2])
    else:
        compare(sys.argv[2:])
