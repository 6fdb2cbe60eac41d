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
# The peer on the same GPU: PyTorch conv2d(groups=C), three branches summed, SLaK-T stages at batch 128 (fp32, TF32
# off), next to the fused rows of the table above. Skipped with a line when PyTorch has no CUDA here.
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  {
    echo
    echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)') on the same GPU (N C H M kind fwd_ms fwd+bwd_ms, median of 20):"
    echo '```'
    python3 bench/torch/dwconv_peer.py --device cuda --threads 1 --reps 20 128,124,56,51 128,249,28,49 128,499,14,47 128,998,7,13
    echo '```'
  } >> "$out" || status=1
else
  echo "PyTorch with CUDA not found: no peer timing" >> "$out"
fi
echo "gpu-check: exit $status, table in $out"
exit $status
