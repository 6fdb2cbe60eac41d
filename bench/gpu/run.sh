#!/usr/bin/env bash
# Runs the GPU check on a machine with an NVIDIA GPU (no .NET needed): every CUDA kernel against the CPU backend,
# then timed, as one markdown table. Expects publish/gpucheck from bench/gpu/prepare.sh (carry it along).
#   bash bench/gpu/run.sh [output.md]
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-.}/gpu-check.md}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
export SLAK_CUDA_LIBRARY_PATH=${SLAK_CUDA_LIBRARY_PATH:-/usr/local/cuda/lib64}
export SLAK_NUM_THREADS=${SLAK_NUM_THREADS:-$(nproc)}
publish/gpucheck/Slak.GpuCheck --device cuda --scale full --repeats 20 --out "$out"
status=$?
echo "gpu-check: exit $status, table in $out"
exit $status
