#!/usr/bin/env bash
# Builds libslak_kernels.so with nvcc (CMake, no .NET needed: the CPU library is off) and appends the slak PyTorch
# operator's CUDA row to OUT.md (gpu_row.py). For a machine with a GPU, nvcc and PyTorch with CUDA:
#   bash bench/torch-op-vs-torch/gpu_row.sh OUT.md
# Exit status: gpu_row.py's (77: skipped, no GPU or no nvcc).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: bash bench/torch-op-vs-torch/gpu_row.sh OUT.md}
build=${SLAK_GPU_ROW_BUILD:-build-gpu-row}
command -v nvcc >/dev/null || { echo "skip: nvcc not found"; exit 77; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLAK_ENABLE_CUDA=ON -DSLAK_BUILD_CPU_LIBRARY=OFF \
      -DSLAK_BUILD_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES=native >/dev/null || exit 1
cmake --build "$build" --target slak_kernels --parallel >/dev/null || exit 1
SLAK_KERNELS_CUDA_LIBRARY="$PWD/$build/libslak_kernels.so" python3 bench/torch-op-vs-torch/gpu_row.py "$out"
