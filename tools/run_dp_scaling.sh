#!/usr/bin/env bash
# run_dp_scaling.sh: issue 22's CPU scaling measurement, 1 process vs 2 ranks on this machine, printed as a markdown
# table (machine, date, commit and load average in its header). Same global batch (64), seed, data and steps:
# slak_nano on Fashion-MNIST, --limit 1536 (24 steps, 3 prune/regrow rounds), --device cpu; the process uses all
# cores, each rank cores / 2. Figures: the epoch's global training img/s as rank 0 prints it.
# Usage: tools/run_dp_scaling.sh [OUT_DIR]   (needs the command built: dotnet build src/Slak.Cli -c Release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
dll="$root/src/Slak.Cli/bin/Release/net10.0/Slak.Cli.dll"
cores="$(nproc)"
mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
common=(train --epochs 1 --limit 1536 --val-split 0.001 --device cpu --update-frequency 8 --overwrite)
row() { # name, log
  local ips loss
  ips="$(grep '^epoch ' "$2" | tail -n 1 | grep -o '[0-9]* img/s' | grep -o '[0-9]*' || true)"
  echo "| $1 | ${ips:-?} | $(grep "test accuracy" "$2" | tail -n 1) |"
}
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $cores cores; $(date -u '+%Y-%m-%d %H:%M UTC');" \
     "commit $(git -C "$root" rev-parse --short HEAD); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | training img/s (global) | final line |"
echo "|---|---|---|"
dotnet "$dll" "${common[@]}" --batch-size 64 --threads "$cores" --out "$out/one" > "$out/one.log" 2>&1
row "1 process, batch 64, $cores threads" "$out/one.log"
"${mpi[@]}" dotnet "$dll" "${common[@]}" --batch-size 32 --out "$out/two" > "$out/two.log" 2>&1
row "2 ranks x batch 32, SyncBatchNorm" "$out/two.log"
"${mpi[@]}" dotnet "$dll" "${common[@]}" --batch-size 32 --no-sync-bn --out "$out/two-nosync" > "$out/two-nosync.log" 2>&1
row "2 ranks x batch 32, --no-sync-bn" "$out/two-nosync.log"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $out"
