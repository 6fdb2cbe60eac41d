#!/usr/bin/env bash
# Runs `kernel-model` (bench/Slak.Bench): installs nvdisasm (Debian's nvidia-cuda-toolkit, non-free section set up
# by .ci/setup) when it is missing, then writes bench/results/kernel-model.md. Never run by CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/.ci/setup" >&2
if ! command -v nvdisasm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "kernel-model: installing nvidia-cuda-toolkit for nvdisasm" >&2
  $SUDO apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit >&2
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet run -c Release --project "$root/bench/Slak.Bench" -- kernel-model --out "$root/bench/results/kernel-model.md" "$@"
