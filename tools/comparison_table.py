#!/usr/bin/python3
"""The multi-seed comparison table (issue 23 item 2) rebuilt from committed run files.

Usage: tools/comparison_table.py RUNS_DIR [--erf] [--per-run] [--order P1,P2,...]

RUNS_DIR holds one folder per run (any names), each with the `metrics.jsonl` and `options.json` that `slak train`
writes, and optionally `summary.txt` (the output of `slak summary --preset P --weights RUN/best/model.safetensors`:
params and MACs dense and live) and `erf.json` (of `slak erf` on the run's best/ weights). Runs are grouped by
options.json's "preset"; per preset the table gives the number of seeds, the test top-1 as mean +- sample standard
deviation over the seeds, each seed's value, params and MACs dense and live (the live counts averaged over the seeds)
and, with --erf, the ERF ratios as mean +- std over the seeds that have one ("(k null)": k seeds' maps have no
square reaching that fraction; "-": no seed has a value). --per-run adds a table with one row per run.
--order lists presets first in that order (the others follow, sorted).

Which epoch a run contributes: the epoch with the highest validation top-1 ("val_top1" in metrics.jsonl; the earliest
on ties) when the runs record one, otherwise the final epoch; its test top-1 is the one reported, so that epoch must
have been scored on the test set (`slak train --eval-test-every-epoch`, or the selected epoch is the last). The test
set never selects. Every run of the table must have the same budget (epochs, batch size, --limit, --val-split), and a
preset must not list a seed twice; both are errors naming the runs. Only the standard library.
"""
import json
import math
import os
import re
import sys

RATIOS = ("0.2", "0.3", "0.5", "0.99")
UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_count(text):
    """'931.7 K' -> 931700.0 (the units `slak summary` prints)."""
    m = re.fullmatch(r"([0-9.]+)\s*([KMG]?)", text.strip())
    if not m:
        raise ValueError(f"not a count: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def format_count(value):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.{2 if unit != 'K' else 1}f} {unit}"
    return f"{value:.0f}"


def load_summary(path):
    """(params dense, MACs dense, params live, MACs live) from the 'total' line of `slak summary --weights`."""
    with open(path, encoding="utf-8") as f:
        totals = [line for line in f if line.startswith("total ")]
    if len(totals) != 1:
        raise SystemExit(f"{path}: expected one 'total' line, found {len(totals)}")
    cells = re.split(r"\s{2,}", totals[0].strip())
    if len(cells) != 6:
        raise SystemExit(f"{path}: the total line has {len(cells)} columns, expected 6 "
                         f"(part, output, params, MACs, params@trained, MACs@trained): {totals[0].strip()!r}")
    try:
        return tuple(parse_count(c) for c in cells[2:])
    except ValueError as e:
        raise SystemExit(f"{path}: {e}")


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
    summary_path = os.path.join(folder, "summary.txt")
    summary = load_summary(summary_path) if os.path.isfile(summary_path) else None
    return rows, opts, erf, summary


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


def stat(values, digits):
    m, s = mean_std(values)
    return f"{m:.{digits}f} +- {s:.{digits}f}" if s is not None else f"{m:.{digits}f} (one seed)"


def load_groups(runs_dir):
    folders = sorted(os.path.join(runs_dir, d) for d in os.listdir(runs_dir)
                     if os.path.isdir(os.path.join(runs_dir, d)))
    if not folders:
        raise SystemExit(f"{runs_dir}: no run folders")
    groups = {}
    budgets = {}
    for folder in folders:
        rows, opts, erf, summary = load_run(folder)
        name = os.path.basename(folder)
        budget = (opts.get("epochs"), opts.get("batch_size"), opts.get("limit"), opts.get("val_split"))
        budgets.setdefault(budget, []).append(name)
        row, how = select(rows)
        if row.get("test_top1") is None:
            raise SystemExit(f"{name}: {how} selects epoch {row['epoch']}, which was not scored on the test set "
                             "(train with --eval-test-every-epoch)")
        # Runs of one preset at different precisions (slak train --precision) are separate rows: "slak_nano (bf16)".
        key = opts["preset"] + (f" ({opts['precision']})" if opts.get("precision") else "")
        groups.setdefault(key, []).append(
            {"run": name, "seed": opts.get("seed"), "top1": row["test_top1"], "val": row.get("val_top1"),
             "last_top1": rows[-1].get("test_top1"), "epoch": row["epoch"], "epochs": len(rows), "how": how,
             "erf": erf, "summary": summary})
    if len(budgets) > 1:
        detail = "; ".join(f"epochs {e}, batch {b}, limit {lim}, val split {v}: {', '.join(r)}"
                           for (e, b, lim, v), r in budgets.items())
        raise SystemExit(f"runs have different budgets: {detail}")
    for preset, runs in groups.items():
        runs.sort(key=lambda r: (r["seed"] is None, r["seed"]))
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"{preset}: a seed appears twice: {', '.join(r['run'] for r in runs)}")
    return groups


def ordered(groups, order):
    first = [p for p in order if p in groups]
    return first + sorted(p for p in groups if p not in first)


def build(runs_dir, with_erf=False, per_run=False, order=()):
    groups = load_groups(runs_dir)
    lines = []
    head = ("| preset | seeds | selected by | test top-1 (mean +- std) | per seed (seed: top-1 @ epoch) "
            "| params dense | MACs dense | params live | MACs live |")
    if with_erf:
        head += " ERF r(0.2) | r(0.3) | r(0.5) | r(0.99) |"
    lines.append(head)
    lines.append("|" + "---|" * (head.count("|") - 1))
    for preset in ordered(groups, order):
        runs = groups[preset]
        hows = sorted({r["how"] for r in runs})
        per_seed = ", ".join(f'{r["seed"]}: {r["top1"]:.2f} @ {r["epoch"]}' for r in runs)
        cells = [preset, str(len(runs)), " / ".join(hows), stat([r["top1"] for r in runs], 2), per_seed]
        summaries = [r["summary"] for r in runs if r["summary"] is not None]
        for k in range(4):
            cells.append(format_count(sum(s[k] for s in summaries) / len(summaries)) if summaries else "-")
        if with_erf:
            for t in RATIOS:
                measured = [r["erf"]["ratios"].get(t) for r in runs if r["erf"] is not None]
                values = [v for v in measured if v is not None]
                nulls = len(measured) - len(values)
                cell = stat(values, 3) if values else "-"
                cells.append(cell + (f" ({nulls} null)" if nulls else ""))
        lines.append("| " + " | ".join(cells) + " |")
    if per_run:
        lines.append("")
        head = "| run | seed | selected epoch / epochs | val top-1 there | test top-1 there | test top-1 last epoch |"
        if with_erf:
            head += " r(0.2) | r(0.3) | r(0.5) | r(0.99) |"
        lines.append(head)
        lines.append("|" + "---|" * (head.count("|") - 1))
        for preset in ordered(groups, order):
            for r in groups[preset]:
                val = "-" if r["val"] is None else f'{r["val"]:.2f}'
                last = "-" if r["last_top1"] is None else f'{r["last_top1"]:.2f}'
                cells = [r["run"], str(r["seed"]), f'{r["epoch"]} / {r["epochs"]}', val, f'{r["top1"]:.2f}', last]
                if with_erf:
                    ratios = r["erf"]["ratios"] if r["erf"] is not None else {}
                    cells += ["-" if ratios.get(t) is None else f"{ratios[t]:.4f}" for t in RATIOS]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    argv = sys.argv[1:]
    order = ()
    if "--order" in argv:
        i = argv.index("--order")
        if i + 1 >= len(argv):
            raise SystemExit("--order needs a comma-separated list of presets")
        order = tuple(argv[i + 1].split(","))
        del argv[i:i + 2]
    flags = {"--erf", "--per-run"}
    args = [a for a in argv if a not in flags]
    if len(args) != 1 or args[0].startswith("--"):
        raise SystemExit(__doc__.strip())
    print(build(args[0], with_erf="--erf" in argv, per_run="--per-run" in argv, order=order))
