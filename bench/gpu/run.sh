#!/usr/bin/env bash
# Runs the GPU check on a machine with an NVIDIA GPU and no .NET (publish/gpucheck from bench/gpu/prepare.sh must be
# carried along). Works from an empty environment (`env -i bash bench/gpu/run.sh OUT.md`): it sets PATH, HOME, the
# CUDA library path, the prebuilt kernel folder and a kernel cache folder itself.
#   bash bench/gpu/run.sh OUT.md [options for Slak.GpuCheck...] [--sanitize]
# Steps, each writing its own table as it goes (rows flushed one by one):
#   1. OUT.tiny.md: a smoke pass at the tiny scale (every kernel row, no end-to-end rows, 1 timed repeat): catches a
#      broken setup in seconds and leaves a complete kernel table even if the full pass is cut short;
#   2. OUT.md: the full pass (SLaK-T, batch 128, 224 px; every kernel, cuBLAS GEMM and end-to-end row);
#   3. PyTorch's depthwise convolution and its kernel = stride conv2d (beside the patchify rows) on the same GPU,
#      appended to OUT.md (when PyTorch with CUDA is present);
#   4. with --sanitize: the tiny scale under compute-sanitizer (memcheck, racecheck, synccheck, initcheck), one
#      table and log per tool (OUT.<tool>.md, OUT.<tool>.log), when compute-sanitizer is found.
# Options after OUT.md go to the check (after run.sh's own, so they win): e.g. --device cuda-emu --scale tiny runs the
# same steps on the host emulator (CI does that under env -i). Exit status: non-zero when any pass has a FAIL row.
#
# Duration of the default run on one H200 (estimate, from the launch counts and the FLOPs/bytes of each row; see
# bench/gpu/README.md for the arithmetic): about 3.5 minutes, under the 6-minute target:
#   smoke pass ~20 s (15 child processes x ~0.6 s context + cuBLAS start, tiny rows);
#   full pass ~170 s: input generation ~25 s (≈3.5e9 normal values, 16 threads), CPU references ~25 s
#   (≈0.5 TFLOP of depthwise/GEMM/conv work + the sparse rounds), comparisons and copies ~15 s, device timing
#   ~35 s (each row capped at 1.5 s of repeats; the kernels themselves total < 5 s), end-to-end ~60 s (11 SLaK-T
#   steps at batch 64 and 128, 11 inference batches, model set-up), process starts ~10 s;
#   PyTorch peer ~20 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
  echo "usage: bash bench/gpu/run.sh OUT.md [options for Slak.GpuCheck...] [--sanitize]" >&2
  exit 2
fi
out=$1; shift
case $out in /*) ;; *) out=$root/$out ;; esac
sanitize=0; args=()
for a in "$@"; do
  if [ "$a" = --sanitize ]; then sanitize=1; else args+=("$a"); fi
done

app=$root/publish/gpucheck/Slak.GpuCheck
[ -x "$app" ] || { echo "run: $app not found; run bash bench/gpu/prepare.sh first (and carry publish/gpucheck)" >&2; exit 2; }

# Environment: nothing is inherited under env -i.
export PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
export HOME=${HOME:-/tmp}
cuda_home=${CUDA_HOME:-${CUDA_PATH:-}}
if [ -z "$cuda_home" ]; then
  for d in /usr/local/cuda /usr/local/cuda-13* /usr/local/cuda-12*; do [ -d "$d/lib64" ] && { cuda_home=$d; break; }; done
fi
libdirs=""
[ -n "$cuda_home" ] && [ -d "$cuda_home/lib64" ] && libdirs=$cuda_home/lib64
# libcuda.so.1 comes with the driver (the loader's default paths); NVRTC and cuBLAS from the toolkit.
export SLAK_CUDA_LIBRARY_PATH=${SLAK_CUDA_LIBRARY_PATH:-$libdirs}
export LD_LIBRARY_PATH=${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export SLAK_KERNEL_PREBUILT=${SLAK_KERNEL_PREBUILT:-$root/publish/gpucheck/kernels-sm90}
export SLAK_KERNEL_CACHE=${SLAK_KERNEL_CACHE:-${TMPDIR:-/tmp}/slak-kernel-cache}
export DOTNET_CLI_TELEMETRY_OPTOUT=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "run: nvidia-smi not found"
echo "run: CUDA libraries from ${SLAK_CUDA_LIBRARY_PATH:-the default loader paths}; prebuilt kernels $SLAK_KERNEL_PREBUILT"

status=0
base=${out%.md}
echo "run: 1/3 smoke pass (tiny) -> $base.tiny.md"
"$app" --scale tiny --repeats 1 --no-e2e "${args[@]}" --out "$base.tiny.md"
rc=$?; [ $rc -ne 0 ] && status=1
if [ $rc -eq 2 ]; then echo "run: the check could not start (exit 2); stopping" >&2; exit 2; fi

echo "run: 2/3 full pass -> $out"
"$app" --scale full --repeats 20 "${args[@]}" --out "$out"
[ $? -ne 0 ] && status=1

# The peer on the same GPU: PyTorch conv2d(groups=C), three branches summed, SLaK-T stages at batch 128 (fp32, TF32
# off), next to the fused rows. Skipped with a line when PyTorch has no CUDA here (always on the emulator).
if [[ " ${args[*]} " != *" cuda-emu "* ]] && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "run: 3/3 PyTorch peer -> $out"
  {
    echo
    echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)') on the same GPU (N C H M kind fwd_ms fwd+bwd_ms, median of 20):"
    echo '```'
    python3 bench/torch/dwconv_peer.py --device cuda --threads 1 --reps 20 128,124,56,51 128,249,28,49 128,499,14,47 128,998,7,13
    echo '```'
    echo
    echo "PyTorch conv2d, kernel = stride (beside the patchify rows; name pass N Cin H Cout S ms, median of 20; fp32, then TF32):"
    echo '```'
    python3 bench/torch/patchify_peer.py --device cuda --reps 20
    python3 bench/torch/patchify_peer.py --device cuda --reps 20 --tf32 | sed 's/$/ tf32/'
    echo '```'
    echo
    echo "PyTorch layer_norm / batch_norm (beside the norm rows; op pass N C H ms GB/s, median of 20; fp32):"
    echo '```'
    python3 bench/torch/norm_peer.py --device cuda --reps 20
    echo '```'
  } >> "$out" || status=1
else
  echo "run: 3/3 no PyTorch peer (no GPU PyTorch here)"
  echo "PyTorch with CUDA not used here: no peer timing" >> "$out"
fi

if [ $sanitize -eq 1 ]; then
  san=$(command -v compute-sanitizer || true)
  [ -z "$san" ] && [ -n "$cuda_home" ] && [ -x "$cuda_home/bin/compute-sanitizer" ] && san=$cuda_home/bin/compute-sanitizer
  if [[ " ${args[*]} " == *" cuda-emu "* ]]; then
    echo "run: --sanitize: compute-sanitizer checks GPU launches; skipped on cuda-emu" | tee -a "$out"
  elif [ -z "$san" ]; then
    echo "run: --sanitize: compute-sanitizer not found; skipped" | tee -a "$out"
  else
    for tool in memcheck racecheck synccheck initcheck; do
      echo "run: sanitize ($tool) -> $base.$tool.md, $base.$tool.log"
      "$san" --tool "$tool" --error-exitcode 9 --log-file "$base.$tool.log" \
        "$app" --scale tiny --repeats 1 --no-e2e --isolate none "${args[@]}" --out "$base.$tool.md"
      rc=$?
      echo "compute-sanitizer --tool $tool: exit $rc (9 = errors reported; see $(basename "$base.$tool.log"))" >> "$out"
      [ $rc -ne 0 ] && status=1
    done
  fi
fi
echo "gpu-check: exit $status, tables in $base*.md"
exit $status
