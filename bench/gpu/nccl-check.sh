#!/usr/bin/env bash
# The NCCL row of the GPU check (issue 22): loads libnccl.so.2 through Slak's binding (SLAK_CUDA_LIBRARY_PATH, the
# loader's search, CUDA_PATH, /usr/local/cuda, a Python wheel's nvidia/nccl/lib), creates a one-rank communicator and
# all-reduces 2^20 floats in place on the GPU; then a one-rank data-parallel training step through NCCL (slak_nano,
# 2 steps: gradient buckets started during backward, NCCL on the compute stream, SyncBatchNorm's device path; see
# bench/Slak.GpuCheck/NcclTrainStep.cs). Writes two markdown tables. ok / FAIL / skip (no NCCL or no GPU).
# Needs publish/gpucheck from bench/gpu/prepare.sh (carry it); well under a minute on one GPU. Written without a GPU:
# the training row has run only on cuda-emu with the NCCL stand-in (`Slak.GpuCheck --nccl-train cuda-emu`), never on
# a GPU.
#   bash bench/gpu/nccl-check.sh OUT.md
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: bash bench/gpu/nccl-check.sh OUT.md}
app=$PWD/publish/gpucheck/Slak.GpuCheck
[ -x "$app" ] || { echo "nccl-check: $app not found; run bash bench/gpu/prepare.sh first (and carry publish/gpucheck)" >&2; exit 2; }
export PATH=${PATH:-/usr/bin:/bin} HOME=${HOME:-/tmp}
"$app" --nccl | tee "$out"; smoke=${PIPESTATUS[0]}
echo | tee -a "$out"
"$app" --nccl-train cuda | tee -a "$out"; train=${PIPESTATUS[0]}
exit $(( smoke > train ? smoke : train ))
