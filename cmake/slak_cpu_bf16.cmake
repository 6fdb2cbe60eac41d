# libslak_cpu_bf16.so: the AVX512-BF16 GEMM microkernel of the CPU backend's bf16 path (native/cpu_bf16), loaded at run
# time by src/Slak/Backends/Cpu/CpuBf16Gemm.cs. Compiled for any x86-64 (AVX512-BF16 only inside functions with a
# target attribute, used after a CPU check); on other architectures it is not built and the portable path runs.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  enable_language(C)
  add_library(slak_cpu_bf16 SHARED ${CMAKE_CURRENT_LIST_DIR}/../native/cpu_bf16/slak_cpu_bf16.c)
  target_compile_options(slak_cpu_bf16 PRIVATE -O2 -Wall -Wextra)
  target_link_options(slak_cpu_bf16 PRIVATE -Wl,--no-undefined)
  set_target_properties(slak_cpu_bf16 PROPERTIES C_STANDARD 11 C_VISIBILITY_PRESET hidden POSITION_INDEPENDENT_CODE ON)
endif()
