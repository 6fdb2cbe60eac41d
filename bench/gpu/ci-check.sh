#!/usr/bin/env bash
# CI step (.ci/run counts it as one test): the GPU check exactly as a GPU machine runs it, on the host emulator —
# bench/gpu/prepare.sh (trimmed self-contained publish + prebuilt sm_90 kernels), then run.sh under `env -i` (no .NET,
# no PATH) at the tiny scale. Passes when run.sh exits 0 and its table has one ok row per case (every kernel of
# cuda/kernels, the GEMMs and the end-to-end rows). A CI step rather than a unit test: the trimmed publish takes 1-2
# minutes and must not run inside the test process's build outputs; the whole step takes about 4 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok=1
if ! bash bench/gpu/prepare.sh >"$tmp/prepare.log" 2>&1; then
  echo "ci-check: prepare.sh failed"; tail -n 30 "$tmp/prepare.log"; exit 1
fi
env -i bash bench/gpu/run.sh "$tmp/out.md" --device cuda-emu --scale tiny --repeats 1 >"$tmp/run.log" 2>&1 || ok=0
want=$(publish/gpucheck/Slak.GpuCheck --list --scale tiny | wc -l)
got=$(grep -c '| ok |$' "$tmp/out.md" 2>/dev/null); got=${got:-0}
if [ $ok -eq 1 ] && [ "$got" -eq "$want" ]; then
  echo "ci-check: GPU check under env -i on cuda-emu: $got of $want rows ok"; exit 0
fi
echo "ci-check: GPU check under env -i on cuda-emu FAILED ($got of $want rows ok)"
tail -n 40 "$tmp/run.log"; grep -v '| ok |$' "$tmp/out.md" 2>/dev/null | tail -n 20
exit 1
