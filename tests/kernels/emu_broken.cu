// emu_broken.cu: deliberately broken kernels (and a few probes) for the emulator's sanitizer tests. Each bug is one
// that runs "fine" on a naive emulator and fails, or is undefined, on a GPU; the tests show that the matching
// option of EmulatedDevice.Checks catches it. Test-only: compiled into libslak_emu_test.so, never into the
// production emulator nor the kernel sources embedded for NVRTC.
#include "slak_common.cuh"

// Missing __syncthreads: thread t reads the tile entry thread t + 1 writes, with no barrier between. In thread
// order, t + 1 has not run yet (t reads whatever the tile held); in reverse order it has. 1-D, blockDim.x <= 256.
extern "C" __global__ void broken_missing_sync_kernel(float* out, const float* in, int n)
{
    __shared__ float tile[256];
    const int t = threadIdx.x;
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + t;
    if (i >= n) return;
    tile[t] = in[i];
    // __syncthreads() belongs here.
    out[i] = tile[(t + 1) % blockDim.x];
}

// The correct version of the kernel above (for the schedule helper's "no difference" case).
extern "C" __global__ void fixed_missing_sync_kernel(float* out, const float* in, int n)
{
    __shared__ float tile[256];
    const int t = threadIdx.x;
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + t;
    const bool active = i < n;
    if (active) tile[t] = in[i];
    __syncthreads();
    if (active) out[i] = tile[(t + 1) % blockDim.x];
}

// Reads a static __shared__ accumulator that no thread initialised (it should start from zero).
extern "C" __global__ void broken_uninitialised_static_shared_kernel(float* out, const float* in)
{
    __shared__ float acc[64];
    const int t = threadIdx.x;  // blockDim.x == 64
    acc[t] += in[blockIdx.x * 64 + t];
    __syncthreads();
    out[blockIdx.x * 64 + t] = acc[t];
}

// Reads one element past the end of `in` (out[i] = in[i + 1] for every i < n).
extern "C" __global__ void broken_read_past_end_kernel(float* out, const float* in, int n)
{
    const long long i = slak::global_index_1d();
    if (i < n) out[i] = in[i + 1];
}

// Writes one element past the end of `out` (out[i + 1] = in[i]).
extern "C" __global__ void broken_write_past_end_kernel(float* out, const float* in, int n)
{
    const long long i = slak::global_index_1d();
    if (i < n) out[i + 1] = in[i];
}

// Shared-memory race: threads t and t + 32 (different warps) both write slot[t % 32] between the same barriers.
extern "C" __global__ void broken_shared_race_kernel(float* out)
{
    __shared__ float slot[32];
    const int t = threadIdx.x;  // blockDim.x == 64
    slot[t % 32] = static_cast<float>(t);
    __syncthreads();
    out[blockIdx.x * 64 + t] = slot[t % 32];
}

// Race-free: each thread writes its own word, warp 0 combines after a barrier, shared atomics count the positives.
extern "C" __global__ void clean_shared_kernel(float* out, const float* in)
{
    __shared__ float part[64];
    __shared__ unsigned positives;
    const int t = threadIdx.x;  // blockDim.x == 64
    if (t == 0) positives = 0u;
    const float v = in[blockIdx.x * 64 + t];
    part[t] = v;
    __syncthreads();
    if (v > 0.0f) atomicAdd(&positives, 1u);
    if (t < 32) part[t] += part[t + 32];
    __syncthreads();
    float s = t < 32 ? part[t] : 0.0f;
    s = slak::warp_reduce_sum(s);
    if (t == 0)
    {
        out[2 * blockIdx.x] = s;
        out[2 * blockIdx.x + 1] = static_cast<float>(positives);
    }
}

// __launch_bounds__(128): a launch with more threads per block must fail, as on a GPU.
extern "C" __global__ void __launch_bounds__(128) probe_bounded_kernel(float* out)
{
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}

// Writes the block's index into out[3 * b .. 3 * b + 2], b the linear block index (for sampled execution).
extern "C" __global__ void probe_block_id_kernel(int* out)
{
    if (threadIdx.x != 0) return;
    const long long b =
        blockIdx.x + static_cast<long long>(gridDim.x) * (blockIdx.y + static_cast<long long>(gridDim.y) * blockIdx.z);
    out[3 * b] = static_cast<int>(blockIdx.x);
    out[3 * b + 1] = static_cast<int>(blockIdx.y);
    out[3 * b + 2] = static_cast<int>(blockIdx.z);
}

// A parameter of each width the argument-size check distinguishes: out[0] = a + b + c.
extern "C" __global__ void probe_arg_sizes_kernel(double* out, int a, long long b, float c)
{
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = static_cast<double>(a) + static_cast<double>(b) + c;
}
