#!/usr/bin/env bash
# check_nvcc_build.sh: builds libslak_kernels.so (the C ABI of include/slak/slak.h over the real CUDA kernels) with nvcc
# and checks it without a GPU: the library compiles for every requested architecture, links with -Wl,--no-undefined,
# exports exactly the slak_* C API, embeds SASS for each architecture, and a C program links against the installed
# package (find_package(slak)). Running the kernels needs a GPU: the script also builds tests/capi/capi_cuda_smoke.cpp,
# which on a GPU machine runs with `ctest --test-dir <build-dir> -R slak_capi_cuda_smoke` (skipped without a device).
#
# Toolkit: Debian bookworm's `nvidia-cuda-toolkit` (CUDA 11.8, section non-free; .ci/setup adds that section):
#     apt-get install -y --no-install-recommends nvidia-cuda-toolkit
# Measured 2026-11-28 on the 2-core CI VM: 1.56 GB download, 5.3 GB installed, ~5.5 min to install; the build itself
# is timed below. That is why .ci/setup does NOT install it and CI does not run this script; run it by hand (or in a
# dedicated CI job) after touching cuda/capi, cuda/kernels/{dwconv,reduce,elementwise}.cu or the CMake files.
#
# Usage: tools/check_nvcc_build.sh [build-dir] [cuda-architectures]   (defaults: a temp dir, "80;90")
# Exit status 0 when every check passes; 2 when no nvcc is installed (nothing was checked).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$(mktemp -d /tmp/slak-nvcc-XXXXXX)}"
archs="${2:-80;90}"
mkdir -p "$build"

if ! command -v nvcc >/dev/null 2>&1; then
  echo "check_nvcc_build: nvcc not found; install nvidia-cuda-toolkit (see the header of this script)" >&2
  exit 2
fi
echo "check_nvcc_build: $(nvcc --version | tail -n 1); build dir $build; architectures $archs"

# nvcc 11.8 accepts g++ <= 11 or clang <= 14 as host compiler; bookworm's default g++ is 12, and the toolkit package
# pulls in clang-14 (or g++-11). $CUDAHOSTCXX wins when set.
host="${CUDAHOSTCXX:-}"
if [ -z "$host" ]; then
  for c in g++-11 clang++-14 clang++-13; do command -v "$c" >/dev/null 2>&1 && { host=$(command -v "$c"); break; }; done
fi
[ -n "$host" ] && { export CUDAHOSTCXX="$host"; echo "check_nvcc_build: CUDA host compiler $host"; }

start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLAK_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$archs" \
      ${host:+-DCMAKE_CUDA_HOST_COMPILER="$host"} \
      -DCMAKE_INSTALL_PREFIX="$build/install" -Wno-dev >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; echo "check_nvcc_build: configure failed" >&2; exit 1; }
cmake --build "$build" --target slak_kernels slak_kernels_emu slak_capi_cuda_smoke --parallel "$(nproc)"
echo "check_nvcc_build: built libslak_kernels.so in $(( $(date +%s) - start )) s"

lib="$build/libslak_kernels.so"
fail=0
# 1. The exported dynamic symbols are the C API of slak.h, nothing else (no CUDA runtime or C++ symbols leak).
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
declared=$(grep -oE 'SLAK_API [a-z_ *]+ \**(slak_[a-z0-9_]+)\(' "$root/include/slak/slak.h" | grep -oE 'slak_[a-z0-9_]+\($' \
           | tr -d '(' | sort)
if [ "$exported" != "$declared" ]; then
  echo "check_nvcc_build: FAIL exported symbols differ from slak.h:"; diff <(echo "$declared") <(echo "$exported") || true
  fail=1
else
  echo "check_nvcc_build: exports the $(wc -l <<<"$exported") functions of slak.h"
fi
# 2. SASS for every requested architecture (cuobjdump lists one ELF per arch and translation unit).
elfs=$(cuobjdump --list-elf "$lib" 2>&1 || true)
syms=$(cuobjdump --dump-elf-symbols "$lib" 2>&1 || true)
for a in ${archs//;/ }; do
  a=${a%-real}; a=${a%-virtual}
  if grep -q "sm_$a" <<<"$elfs"; then
    echo "check_nvcc_build: SASS for sm_$a present"
  else
    echo "check_nvcc_build: FAIL no SASS for sm_$a"; fail=1
  fi
done
for k in dwconv_fwd_tiled_kernel dwconv_fwd_direct_kernel dwconv_wgrad_tiled_kernel dwconv_wgrad_direct_kernel \
         column_sum_finalize_kernel add_kernel fill_kernel; do
  grep -q "$k" <<<"$syms" || { echo "check_nvcc_build: FAIL kernel $k missing"; fail=1; }
done
# 3. Install, then a C consumer finds the package and links (it would run only on a GPU machine).
cmake --install "$build" >/dev/null
consumer="$build/consumer"
mkdir -p "$consumer"
cat >"$consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(slak_consumer LANGUAGES C)
find_package(slak 1 REQUIRED)
if(NOT slak_HAS_CUDA_KERNELS)
  message(FATAL_ERROR "slak::slak_kernels missing from the installed package")
endif()
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE slak::slak_kernels)
CM
cat >"$consumer/main.c" <<'C'
#include <stdio.h>
#include "slak/slak.h"
int main(void)
{
    slak_dwconv2d_params p;
    slak_status s = slak_dwconv2d_params_init(&p, 1, 1, 4, 4, 4, 3); /* even kh: rejected before any CUDA call */
    s = slak_dwconv2d_fwd(&p, 0, 0, 0, 0, 0);
    printf("%s ABI %d: %s (%s)\n", slak_backend_name(), slak_abi_version(), slak_status_string(s), slak_last_error());
    return s == SLAK_STATUS_INVALID_ARGUMENT ? 0 : 1;
}
C
if cmake -S "$consumer" -B "$consumer/build" -DCMAKE_PREFIX_PATH="$build/install" >"$consumer/configure.log" 2>&1 \
   && cmake --build "$consumer/build" >"$consumer/build.log" 2>&1; then
  echo "check_nvcc_build: a C consumer links against the installed slak::slak_kernels"
  # Argument validation runs before any CUDA call, so this part runs without a GPU (the CUDA runtime only loads).
  if "$consumer/build/consumer"; then echo "check_nvcc_build: consumer ran (validation path, no GPU needed)"; fi
else
  cat "$consumer/configure.log" "$consumer/build.log"; echo "check_nvcc_build: FAIL consumer"; fail=1
fi
[ $fail -eq 0 ] && echo "check_nvcc_build: OK" || echo "check_nvcc_build: FAILED"
exit $fail
