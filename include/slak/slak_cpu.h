/* slak_cpu.h: what libslak_kernels_cpu.so adds to include/slak/slak.h.
 *
 * libslak_kernels_cpu.so is the third build of the C ABI: the C# CPU depthwise engine of Slak (the code its CPU backend
 * runs: multithreaded, sparse-aware) compiled by .NET Native AOT into a plain shared library. Pointers are host
 * pointers; `stream` is ignored and every call returns when its result is written; no call needs a workspace (every
 * *_workspace_size answers 0); slak_backend_name() is "cpu". Problems of more than 2^31 - 1 elements per tensor
 * return SLAK_STATUS_PROBLEM_TOO_LARGE. The calls run on the caller's thread and the library's own worker threads.
 */
#ifndef SLAK_SLAK_CPU_H
#define SLAK_SLAK_CPU_H

#include "slak/slak.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Threads a call may use: SLAK_NUM_THREADS when set (>= 1) at the first call, else the number of cores, until
 *  slak_cpu_set_num_threads changes it. */
SLAK_API int slak_cpu_num_threads(void);
/** Sets the thread budget of later calls (process-wide); threads < 1 is SLAK_STATUS_INVALID_ARGUMENT. */
SLAK_API slak_status slak_cpu_set_num_threads(int threads);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLAK_SLAK_CPU_H */
