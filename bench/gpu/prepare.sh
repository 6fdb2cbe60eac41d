#!/usr/bin/env bash
# Prepares the GPU check for a machine that has a GPU but no .NET (and no time to spare: a 15-minute window).
# Run here, on a machine with the .NET SDK and NVRTC:
#   bash bench/gpu/prepare.sh
# It writes publish/gpucheck/ (ignored by git; carry it to the GPU machine along with the tree):
#   - Slak.GpuCheck + its libraries: a trimmed, self-contained linux-x64 publish (no .NET needed there); native
#     libraries the check never loads (image decoding, ONNX Runtime, MPI) are dropped by the project's publish
#     filter, the managed code behind them by trimming;
#   - kernels-sm90/: every kernel file compiled to an sm_90 CUBIN by the local NVRTC (11.8), with a manifest of the
#     NVRTC version and source hash. run.sh points SLAK_KERNEL_PREBUILT at it, so the GPU machine (an H200) loads
#     these CUBINs and spends no time in NVRTC: the ordinary kernel cache is keyed by the NVRTC version, and the
#     GPU machine's newer NVRTC would miss it (see src/Slak.Cuda/Compilation/PrebuiltKernelCache.cs).
# The folder must stay under 40 MB (the tree that travels is limited to 64 MiB); this script fails when it does
# not. It then starts the published app once on the host emulator under `env -i` (no .NET, no PATH), as on the
# GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=publish/gpucheck
limit=$((40 * 1024 * 1024))
rm -rf "$out"
dotnet publish bench/Slak.GpuCheck -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true \
  -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false \
  -p:DebugType=none -p:GenerateDocumentationFile=false -nologo -v q -o "$out"
rm -f "$out"/*.xml "$out"/*.pdb
"$out/Slak.GpuCheck" --build-kernel-cache "$out/kernels-sm90" --arch 90
size=$(du -sb "$out" | cut -f1)
echo "prepare: $out is $((size / 1024 / 1024)) MB ($(du -sh "$out/kernels-sm90" | cut -f1) of sm_90 kernels)"
if [ "$size" -gt "$limit" ]; then
  echo "prepare: $out is over 40 MB; largest files:"; du -a "$out" | sort -n | tail -n 8
  exit 1
fi
# The published app starts without .NET and without any environment (a smoke run of two rows on the emulator).
env -i "$PWD/$out/Slak.GpuCheck" --device cuda-emu --scale tiny --repeats 1 --isolate none --no-e2e \
  --only fill_kernel,dwconv_fused_kernel >/dev/null
echo "prepare: $out ready (started under env -i on the emulator)"
