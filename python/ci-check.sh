#!/usr/bin/env bash
# The PyTorch package as a user installs it (run by .ci/run): a fresh virtual environment that sees Debian's torch,
# `pip install --no-build-isolation ./python` (which builds the native libraries with CMake and dotnet publish into
# <repo>/build and packages them), then the Python tests run from outside the checkout against the installed
# package, with no PYTHONPATH and no SLAK_* library variable (python/tests, not python/, is on sys.path: the tests
# import slak_torch from the venv, which is checked first). Ends with "python: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary() { echo "python: $1 passed, $2 failed, $3 skipped"; }

unset PYTHONPATH SLAK_KERNELS_LIBRARY SLAK_KERNELS_CPU_LIBRARY SLAK_KERNELS_EMU_LIBRARY SLAK_KERNELS_CUDA_LIBRARY
if ! /usr/bin/python3 -m venv --system-site-packages "$work/venv" >"$work/venv.log" 2>&1; then
  cat "$work/venv.log"; echo "python: could not create a virtual environment (apt-get install python3-venv)"
  summary 0 1 0; exit 1
fi
if ! "$work/venv/bin/pip" install --no-build-isolation --no-index "$root/python" >"$work/pip.log" 2>&1; then
  tail -n 60 "$work/pip.log"; echo "python: pip install ./python failed"; summary 0 1 0; exit 1
fi
grep -E "Successfully installed" "$work/pip.log"
cli="$root/src/Slak.Cli/bin/Release/net10.0/Slak.Cli.dll"
[ -f "$cli" ] && export SLAK_CLI_DLL="$cli"
export SLAK_TEST_SEED="${SLAK_TEST_SEED:-$RANDOM}" PYTHONDONTWRITEBYTECODE=1 SLAK_REPO_ROOT="$root"
cd "$work"
where=$("$work/venv/bin/python" -c "import slak_torch, os; print(os.path.dirname(slak_torch.__file__))")
case "$where" in
  "$work/venv/"*) echo "python: testing the installed package at $where (seed $SLAK_TEST_SEED)" ;;
  *) echo "python: slak_torch imported from $where, not from the virtual environment"; summary 0 1 0; exit 1 ;;
esac
"$work/venv/bin/python" -m unittest discover -s "$root/python/tests" -v >"$work/test.log" 2>&1
status=$?
cat "$work/test.log"
ran=$(grep -oE "^Ran [0-9]+ test" "$work/test.log" | grep -oE "[0-9]+" | tail -n 1)
failed=$(grep -cE "^(FAIL|ERROR): " "$work/test.log")
skipped=$(grep -cE " \.\.\. skipped" "$work/test.log")
if [ -z "$ran" ]; then echo "python: no test summary"; summary 0 1 0; exit 1; fi
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
summary $((ran - failed - skipped)) "$failed" "$skipped"
[ "$status" -eq 0 ]
