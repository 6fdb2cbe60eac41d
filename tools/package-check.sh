#!/usr/bin/env bash
# Checks the NuGet packages as a user meets them, from the local feed only (no project references, no cmake):
#   1. a fresh `dotnet new console` project outside the repository + `dotnet add package Slak` from the feed + the
#      guide's first example (samples/GettingStarted/Program.cs) runs on cpu and cuda-emu;
#   2. the `slak` .NET tool installs from the feed and runs;
#   3. every sample under samples/ builds against the feed and runs (KernelBenchmark as a short job).
# Usage: tools/package-check.sh FEED. Prints one "package-check: ok|FAIL <name>" line per check and, last,
# "package-check: N passed, N failed"; exits non-zero when any failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
feed="$(cd "${1:?usage: package-check.sh FEED}" && pwd)"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props" | head -n 1)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
result() { # $1 = name, $2 = exit status, $3 = log file
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "package-check: ok $1"
  else failed=$((failed + 1)); echo "package-check: FAIL $1 (exit $2); its log:"; tail -n 40 "$3"; fi
}
# NuGet sources: the local feed first, then whatever this machine's NuGet configuration already lists (for the
# packages ours depend on), and a private package cache so nothing installed earlier is reused.
export NUGET_PACKAGES="$work/packages"
feed_config() { # $1 = folder
  cat > "$1/nuget.config" <<CFG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="slak-local" value="$feed" />
  </packageSources>
</configuration>
CFG
}

# 1. A fresh console project.
fresh="$work/FirstSteps"
log="$work/fresh.log"
(
  set -e
  mkdir -p "$fresh" && cd "$fresh"
  dotnet new console --framework net10.0 --output . >"$log" 2>&1
  feed_config "$fresh"
  dotnet add package Slak --version "$version" >>"$log" 2>&1
  cp "$root/samples/GettingStarted/Program.cs" Program.cs
  env -u SLAK_EMU_LIBRARY dotnet run -c Release >"$work/fresh.out" 2>>"$log"
  cat "$work/fresh.out" >>"$log"
  grep -q "^cpu: loss" "$work/fresh.out" && grep -q "^cuda-emu: loss" "$work/fresh.out" \
    && grep -q "pruned taps with a gradient: 0" "$work/fresh.out"
)
result "fresh console project + dotnet add package Slak + the guide's first example" $? "$log"

# 2. The command as a .NET tool, installed from the feed into a private folder; `slak info` must run.
log="$work/tool.log"
(
  set -e
  cd "$work"
  dotnet tool install Slak.Cli --version "$version" --tool-path "$work/tools" --add-source "$feed" >"$log" 2>&1
  env -u SLAK_EMU_LIBRARY "$work/tools/slak" info >>"$log" 2>&1
  grep -q "^cuda-emu: *available" "$log"
)
result "dotnet tool install Slak.Cli from the feed, then slak info" $? "$log"

# 3. The samples, against the feed.
for proj in "$root"/samples/*/*.csproj; do
  name=$(basename "$(dirname "$proj")")
  log="$work/$name.log"
  copy="$work/samples/$name"
  mkdir -p "$copy"
  cp -r "$(dirname "$proj")"/. "$copy"/
  cp "$root/samples/Directory.Build.props" "$root/samples/Directory.Packages.props" "$work/samples/"
  # The samples' Directory.Build.props imports the repository's; point it there from the copy.
  sed -i "s#\.\./Directory.Build.props#$root/Directory.Build.props#" "$work/samples/Directory.Build.props"
  feed_config "$work/samples"
  (
    set -e
    cd "$copy"
    dotnet build -c Release -nologo -v q >"$log" 2>&1
    args=()
    [ -f sample-args.txt ] && read -r -a args < sample-args.txt
    env -u SLAK_EMU_LIBRARY dotnet run -c Release --no-build -- "${args[@]}" >"$work/$name.out" 2>>"$log"
    cat "$work/$name.out" >>"$log"
    # sample-expect.txt: one extended regular expression per line that the output must contain.
    if [ -f sample-expect.txt ]; then
      while IFS= read -r re; do
        [ -z "$re" ] && continue
        grep -qE "$re" "$work/$name.out" || { echo "output lacks /$re/" >>"$log"; exit 1; }
      done < sample-expect.txt
    fi
    ! grep -qE "// ERROR|Unhandled exception" "$work/$name.out"
  )
  result "sample $name builds from the feed and runs" $? "$log"
done
echo "package-check: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
