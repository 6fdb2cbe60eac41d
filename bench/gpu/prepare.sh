#!/usr/bin/env bash
# Prepares the GPU check for a machine that has a GPU but no .NET: a trimmed, self-contained linux-x64 publish of
# bench/Slak.GpuCheck into publish/gpucheck (about 25 MB; the tree that travels to the GPU machine is limited to
# 64 MiB), checked here on the host emulator first. Run on a machine with the .NET SDK:
#   bash bench/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=publish/gpucheck
rm -rf "$out"
dotnet publish bench/Slak.GpuCheck -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true \
  -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false -nologo -v q -o "$out"
du -sh "$out"
"$out/Slak.GpuCheck" --device cuda-emu --scale tiny --repeats 1 >/dev/null
echo "prepare: $out ready (emulator check passed)"
