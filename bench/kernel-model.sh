#!/usr/bin/env bash
# Runs `kernel-model` (bench/Slak.Bench) and writes bench/results/kernel-model.md. It needs nvdisasm, which Debian
# ships in nvidia-cuda-toolkit (non-free section, set up by .ci/setup). That package is NEVER installed: installing it
# pulls libcuda1 and libcublas11 and changes CUDA discovery for every test on the machine. Instead its .deb is
# fetched with `apt-get download`, unpacked with `dpkg -x` into a cache folder, and only nvdisasm is kept
# ($SLAK_CUDA_TOOLS, default ~/.cache/slak/cuda-tools/bin; nvdisasm needs no shared library beyond libc). The folder
# is put on PATH for this program alone. Never run by CI. Extra arguments go to kernel-model (e.g. --variant).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${SLAK_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/slak/cuda-tools}"
if [ ! -x "$tools/bin/nvdisasm" ]; then
  bash "$root/.ci/setup" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "kernel-model: fetching nvidia-cuda-toolkit's package file for nvdisasm (not installed) into $tools" >&2
  (cd "$work" && apt-get download -q nvidia-cuda-toolkit >&2)
  dpkg -x "$work"/nvidia-cuda-toolkit_*.deb "$work/root"
  mkdir -p "$tools/bin"
  install -m 755 "$work/root/usr/bin/nvdisasm" "$tools/bin/nvdisasm.tmp"
  mv "$tools/bin/nvdisasm.tmp" "$tools/bin/nvdisasm"
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
PATH="$tools/bin:$PATH" dotnet run -c Release --project "$root/bench/Slak.Bench" -- \
  kernel-model --out "$root/bench/results/kernel-model.md" "$@"
