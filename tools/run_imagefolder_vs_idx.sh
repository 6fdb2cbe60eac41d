#!/usr/bin/env bash
# run_imagefolder_vs_idx.sh: issue 21's "within 1 point of the IDX path" check. The same model, epochs, batch size,
# learning rate, input size and augmentation switches (--aa none --reprob 0) on Fashion-MNIST read two ways:
#   idx     the IDX files (28x28 grey, zero-padded to 32x32; padded random crop + flip), --limit 18000 after the
#           stratified 10 % hold-out of the 60,000 training images (6,000 validation images), the 10,000 test images;
#   folder  the image folder written by `tools/make_image_folder.py --fmnist DIR 2000 1000` (the first 2,000 training
#           images of each class rendered as 64x64 RGB PNG/JPEG, and the whole test set): 20,000 training images,
#           of which the 10 % hold-out (2,000) validates, 18,000 train; read at 32x32 with the IDX path's augmentation
#           (--train-crop pad --crop-pct 1: the whole image resized to 32x32, random crop with padding 2 + flip; for
#           evaluation the same whole-image view), ImageNet normalisation.
# The 2026-12-04 run (results in imagefolder-vs-idx-2026-12-04/) read the folder with RandomResizedCrop (scale
# 0.08-1) and a 0.875 centre crop, which `--aa none --reprob 0` do not switch off: the two paths did not share their
# augmentation. From 2026-12-05 the folder run shares the IDX path's crop.
# Both: slak_nano, 3 epochs, batch 128, lr 4e-3, seed 0; best/ on validation, test scored after the last epoch.
#
# Usage: tools/run_imagefolder_vs_idx.sh RUNS_DIR FOLDER [RESULTS_DIR]
# Environment: SLAK (default ./slak), SLAK_NUM_THREADS (default 1), SEED (default 0: the 2026-12-05 runs; seeds 1
# and 2 were added on 2026-12-05 16:10 UTC, decided before their results were seen, for a 3-seed mean). Re-runnable: finished runs (a `done` marker) are
# skipped. Copies metrics.jsonl and options.json of each run to RESULTS_DIR (default
# bench/results/runs/imagefolder-vs-idx-2026-12-05/<idx|folder>).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:?usage: tools/run_imagefolder_vs_idx.sh RUNS_DIR FOLDER [RESULTS_DIR]}"
folder="${2:?usage: tools/run_imagefolder_vs_idx.sh RUNS_DIR FOLDER [RESULTS_DIR]}"
results="${3:-$root/bench/results/runs/imagefolder-vs-idx-2026-12-05}"
slak="${SLAK:-$root/slak}"
export SLAK_NUM_THREADS="${SLAK_NUM_THREADS:-1}"
seed="${SEED:-0}"
COMMON=(--preset slak_nano --epochs 3 --batch-size 128 --lr 0.004 --seed "$seed" --aa none --reprob 0 --val-split 0.1
        --threads "$SLAK_NUM_THREADS" --workers 1 --log-every 100 --overwrite)

mkdir -p "$runs" "$results"
for name in idx folder; do
  run="$runs/$name"
  if [ -f "$run/done" ]; then echo "$name: done, skipped"; continue; fi
  echo "$name: training ($(date -u +%H:%M:%S) UTC)"
  if [ "$name" = idx ]; then
    $slak train "${COMMON[@]}" --limit 18000 --out "$run" > "$runs/$name.log" 2>&1
  else
    $slak train "${COMMON[@]}" --data "$folder" --input-size 32 --train-crop pad --crop-pct 1 --out "$run" > "$runs/$name.log" 2>&1
  fi
  mkdir -p "$results/$name"
  cp "$run/metrics.jsonl" "$run/options.json" "$results/$name/"
  touch "$run/done"
  echo "$name: $(tail -n 1 "$runs/$name.log")"
done
