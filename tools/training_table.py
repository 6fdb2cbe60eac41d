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


def epochs(run):
    rows, _ = load(run)
    ema = any(r.get("ema_top1") is not None for r in rows)
    head = "| epoch | train loss | test top-1 | test top-5 | test loss |" + (" EMA top-1 |" if ema else "") + \
        " lr | density | img/s | wall s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        cells = [str(r["epoch"]), f'{r["train_loss"]:.4f}', f'{r["test_top1"]:.2f}', f'{r["test_top5"]:.2f}',
                 f'{r["test_loss"]:.4f}']
        if ema:
            cells.append(f'{r["ema_top1"]:.2f}' if r.get("ema_top1") is not None else "")
        cells += [f'{r["lr"]:.2e}', f'{r["density"]:.3f}', f'{r["images_per_second"]:.0f}', f'{r["wall_time"]:.0f}']
        print("| " + " | ".join(cells) + " |")


def compare(runs):
    print("| run | preset | epochs | sparse | final top-1 | best top-1 | final test loss | wall s | mean img/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        rows, o = load(run)
        last = rows[-1]
        best = max(r["test_top1"] for r in rows)
        ips = sum(r["images_per_second"] for r in rows) / len(rows)
        sparse = f'{o["density"]:.2f} {o["sparse_init"]}' if o.get("sparse") else "dense"
        print(f'| {os.path.basename(os.path.normpath(run))} | {o["preset"]} | {last["epoch"]}/{o["epochs"]} | {sparse} | '
              f'{last["test_top1"]:.2f} | {best:.2f} | {last["test_loss"]:.4f} | {last["wall_time"]:.0f} | {ips:.0f} |')


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("epochs", "compare"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "epochs":
        epochs(sys.argv[2])
    else:
        compare(sys.argv[2:])
