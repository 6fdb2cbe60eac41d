#!/usr/bin/env bash
# Packs the NuGet packages (Slak, Slak.Cuda with its native emulator library, Slak.Cli as a .NET tool) into a local
# folder feed: tools/pack.sh [FEED] (default: artifacts/feed). Builds Release first unless SLAK_PACK_NO_BUILD=1 (CI
# has just built). Prints the feed's path and the version (from Directory.Build.props, the one place it is set).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
feed="${1:-$root/artifacts/feed}"
mkdir -p "$feed"
feed="$(cd "$feed" && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
build=()
[ "${SLAK_PACK_NO_BUILD:-0}" = "1" ] && build=(--no-build)
for p in src/Slak.Cuda src/Slak src/Slak.Cli; do
  dotnet pack "$root/$p" -c Release -nologo -v q "${build[@]}" -o "$feed" >&2
done
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props" | head -n 1)
echo "feed: $feed"
echo "version: $version"
