#!/usr/bin/env bash
# run_paper_comparison.sh: the paper's comparison in small with statistics (issue 23 item 2). Trains every preset of
# PRESETS with every seed of SEEDS on the same budget, one run after the other, then for each finished run writes
# `slak summary` of its best/ weights (params and MACs, dense and live) and `slak erf` of its best/ weights, and copies
# the small files (metrics.jsonl, options.json, summary.txt, erf.json, the ERF map as erf.npz) into the committed results folder.
#
# Usage: tools/run_paper_comparison.sh RUNS_DIR [RESULTS_DIR]
#   RUNS_DIR     where the run folders (with checkpoints) go, e.g. /work/runs/evidence/cmp
#   RESULTS_DIR  default bench/results/runs/paper-comparison-2026-12-04
# Environment: SLAK (the command, default ./slak), SLAK_NUM_THREADS (default 1: one core; accuracy does not depend on
# it, only wall time does).
# Re-runnable: a run whose folder has a `done` marker is skipped; an unfinished run folder is started over.
#
# The budget is fixed here, before any test figure is seen: 20,000 training images (the first ones after the
# stratified 10 % validation hold-out, the same for every seed), 4 epochs, batch 128, the default recipe otherwise.
# best/ is selected on validation top-1; the test set is also scored every epoch (--eval-test-every-epoch: reported,
# never used to select) so that the test figure of the validation-selected epoch is in metrics.jsonl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:?usage: tools/run_paper_comparison.sh RUNS_DIR [RESULTS_DIR]}"
results="${2:-$root/bench/results/runs/paper-comparison-2026-12-04}"
slak="${SLAK:-$root/slak}"
export SLAK_NUM_THREADS="${SLAK_NUM_THREADS:-1}"
PRESETS="convnext_nano replk_nano slak_nano_dense slak_nano"
SEEDS="0 1 2"
BUDGET=(--epochs 4 --limit 20000 --batch-size 128 --val-split 0.1 --eval-test-every-epoch)

mkdir -p "$runs" "$results"
for seed in $SEEDS; do
  for preset in $PRESETS; do
    name="$preset-s$seed"
    run="$runs/$name"
    if [ -f "$run/done" ]; then
      echo "$name: done, skipped"
      continue
    fi
    echo "$name: training ($(date -u +%H:%M:%S) UTC)"
    $slak train --preset "$preset" --seed "$seed" "${BUDGET[@]}" --threads "$SLAK_NUM_THREADS" --workers 1 \
      --out "$run" --overwrite --log-every 100 > "$runs/$name.log" 2>&1
    $slak summary --preset "$preset" --weights "$run/best/model.safetensors" > "$run/summary.txt"
    $slak erf --model-config "$run/best/config.json" --weights "$run/best/model.safetensors" --images 50 \
      --out "$run/erf" > "$runs/$name.erf.log" 2>&1
    mkdir -p "$results/$name"
    cp "$run/metrics.jsonl" "$run/options.json" "$run/summary.txt" "$run/erf/erf.json" "$results/$name/"
    # The raw map as float32 in a compressed .npz (key "erf"; 128x128 float64 would be 128 KB per run).
    /usr/bin/python3 -c 'import numpy as np, sys; np.savez_compressed(sys.argv[2], erf=np.load(sys.argv[1]).astype(np.float32))' \
      "$run/erf/erf.npy" "$results/$name/erf.npz"
    touch "$run/done"
    echo "$name: $(tail -n 1 "$runs/$name.log" | cut -c1-60)"
  done
done
echo "all runs done; table: tools/comparison_table.py $results --erf"
