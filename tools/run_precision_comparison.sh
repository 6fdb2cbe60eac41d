#!/usr/bin/env bash
# run_precision_comparison.sh: the accuracy evidence of mixed precision (issue 24 item 4). Trains slak_nano with
# --precision fp32 and with --precision bf16 on the CPU (bf16 is the portable CPU path: operands and stored
# activations rounded to bf16 where the CUDA path stores bf16, docs/mixed-precision.md), every seed of SEEDS, on the
# same budget, one run after the other, and copies metrics.jsonl and options.json of each finished run into the
# committed results folder. The table (test top-1 mean +- std per precision) is then
#   tools/comparison_table.py RESULTS_DIR --per-run --order "slak_nano (fp32),slak_nano (bf16)"
# and belongs in bench/results/training.md with every run.
#
# Usage: tools/run_precision_comparison.sh RUNS_DIR [RESULTS_DIR]
#   RUNS_DIR     where the run folders (with checkpoints) go, e.g. /work/runs/evidence/precision
#   RESULTS_DIR  default bench/results/runs/precision-comparison
# Environment: SLAK (the command, default ./slak), SLAK_NUM_THREADS (default: all cores; accuracy does not depend on
# it, only wall time does), SEEDS (default "0 1 2").
# Re-runnable: a run whose folder has a `done` marker is skipped; an unfinished run folder is started over.
#
# The budget is fixed here, before any result is seen: the README's default run (20 epochs on the full training set
# after the stratified 10 % validation hold-out, batch 128, the default recipe), --eval-test-every-epoch so that the
# test figure of the validation-selected epoch is in metrics.jsonl (reported, never used to select). The target
# (issue 24): bf16 within 0.3 points of fp32 test top-1, as the mean of at least 3 seeds each, std beside the mean.
# Cost: 6 runs of about 10 min (fp32) to about 20 min (bf16: the rounding passes) each on an idle 2-core machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:?usage: tools/run_precision_comparison.sh RUNS_DIR [RESULTS_DIR]}"
results="${2:-$root/bench/results/runs/precision-comparison}"
slak="${SLAK:-$root/slak}"
SEEDS="${SEEDS:-0 1 2}"
BUDGET=(--preset slak_nano --epochs 20 --batch-size 128 --val-split 0.1 --eval-test-every-epoch --device cpu)
threads=()
if [ -n "${SLAK_NUM_THREADS:-}" ]; then threads=(--threads "$SLAK_NUM_THREADS"); fi

mkdir -p "$runs" "$results"
for seed in $SEEDS; do
  for precision in fp32 bf16; do
    name="slak_nano-$precision-s$seed"
    run="$runs/$name"
    if [ -f "$run/done" ]; then
      echo "$name: done, skipped"
      continue
    fi
    echo "$name: training ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
    $slak train "${BUDGET[@]}" --precision "$precision" --seed "$seed" "${threads[@]}" \
      --out "$run" --overwrite --log-every 100 > "$runs/$name.log" 2>&1
    mkdir -p "$results/$name"
    cp "$run/metrics.jsonl" "$run/options.json" "$results/$name/"
    touch "$run/done"
    echo "$name: $(tail -n 1 "$runs/$name.log" | cut -c1-80)"
  done
done
echo "all runs done; table: tools/comparison_table.py $results --per-run --order \"slak_nano (fp32),slak_nano (bf16)\""
