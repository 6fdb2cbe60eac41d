// emu_shared_budget.cu: a kernel with exactly 16 bytes of static shared memory, in a file of its own because the
// emulator counts the static __shared__ of a kernel's whole file (see cuda/emu/README.md), for the test of the
// static + dynamic shared-memory limit. Test-only (libslak_emu_test.so).
#include "slak_common.cuh"

// Static and dynamic shared memory together: 16 bytes static plus whatever the launch gives. out[0] = 1;
// blockDim.x >= 4.
extern "C" __global__ void probe_static_plus_dynamic_kernel(float* out)
{
    __shared__ float header[4];
    SLAK_DYNAMIC_SHARED(float, body);
    if (threadIdx.x < 4) header[threadIdx.x] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        body[0] = header[3];
        out[0] = body[0];
    }
}
