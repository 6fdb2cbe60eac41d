// emu_selftest.cu: kernels that exercise the CUDA execution model, for the host emulator's tests.
//
// They check what every real kernel relies on: __syncthreads with a static __shared__ tile, dynamic shared memory,
// threads that return before a barrier, warp shuffles (xor/down/up/indexed, with a width), votes, atomics, 2-D/3-D
// grids and blocks, the block reductions of slak_common.cuh, and that __trap / SLAK_DEVICE_ASSERT come back as
// errors. They are valid CUDA; selftest_misuse_kernel is undefined behaviour on a GPU on purpose and is launched
// only on the emulator, which must report it. Test-only: compiled into libslak_emu_test.so (see CMakeLists.txt),
// not into the production emulator nor the kernel sources embedded for NVRTC.
#include "slak_common.cuh"

// ---- barriers and shared memory ----

// Reverses each block's slice of `in` (the last block may be partial: its surplus threads return before the
// barrier). Static shared tile, so blockDim.x <= 256.
extern "C" __global__ void __launch_bounds__(256) selftest_block_reverse_kernel(float* out, const float* in, int n)
{
    __shared__ float tile[256];
    const int t = threadIdx.x;
    const long long base = static_cast<long long>(blockIdx.x) * blockDim.x;
    const long long i = base + t;
    if (i >= n) return;
    const int valid = static_cast<int>(min(static_cast<long long>(blockDim.x), n - base));
    tile[t] = in[i];
    __syncthreads();
    out[i] = tile[valid - 1 - t];
}

// One block per row (row = blockIdx.y * gridDim.x + blockIdx.x): the row goes to dynamic shared memory, then
// out[c] = row[c] - row[(c + 1) % cols], so each element needs a value another thread loaded.
extern "C" __global__ void selftest_dynamic_smem_kernel(float* out, const float* in, int rows, int cols)
{
    SLAK_DYNAMIC_SHARED(float, row);
    const int r = blockIdx.y * gridDim.x + blockIdx.x;
    if (r >= rows) return;  // the whole block leaves together
    for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] = in[static_cast<long long>(r) * cols + c];
    __syncthreads();
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        out[static_cast<long long>(r) * cols + c] = row[c] - row[(c + 1) % cols];
}

// ---- warp intrinsics ----

// n is a multiple of 32 and so is blockDim.x. Per element i (lane l of warp w):
//   xor_sum[i]  = sum of the warp's values (butterfly), down_sum[w] = the same by __shfl_down_sync (lane 0),
//   bcast[i]    = value of lane 3 of l's group of 8 lanes, scan[i] = inclusive prefix sum within the warp,
//   ballot[w]   = bits of lanes with value > 0, vote[i] = any(value > 2) + 2 * all(value > -3).
extern "C" __global__ void selftest_warp_kernel(float* xor_sum, float* down_sum, float* bcast, float* scan,
                                                unsigned* ballot, int* vote, const float* in, int n)
{
    const long long i = slak::global_index_1d();
    if (i >= n) return;  // whole warps only
    const int lane = threadIdx.x % slak::kWarpSize;
    const long long w = i / slak::kWarpSize;
    const float v = in[i];
    xor_sum[i] = slak::warp_reduce_sum(v);

    float d = v;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) d += __shfl_down_sync(slak::kFullMask, d, offset);
    if (lane == 0) down_sum[w] = d;

    bcast[i] = __shfl_sync(slak::kFullMask, v, 3, 8);

    float s = v;
#pragma unroll
    for (int offset = 1; offset < 32; offset *= 2)
    {
        const float t = __shfl_up_sync(slak::kFullMask, s, offset);
        if (lane >= offset) s += t;
    }
    scan[i] = s;

    const unsigned b = __ballot_sync(slak::kFullMask, v > 0.0f);
    if (lane == 0) ballot[w] = b;
    vote[i] = __any_sync(slak::kFullMask, v > 2.0f) + 2 * __all_sync(slak::kFullMask, v > -3.0f);
}

// ---- atomics ----

// Every thread i < n adds in[i] (small integers) to the float, int and 64-bit sums, counts itself, takes the
// maxima, increments a counter through a CAS loop and exchanges in[i] into `last`.
extern "C" __global__ void selftest_atomics_kernel(float* fsum, int* isum, unsigned long long* usum, unsigned* count,
                                                   int* imax, unsigned* umax, int* cas_counter, int* last,
                                                   const int* in, int n)
{
    const long long i = slak::global_index_1d();
    if (i >= n) return;
    const int v = in[i];
    atomicAdd(fsum, static_cast<float>(v));
    atomicAdd(isum, v);
    atomicAdd(usum, static_cast<unsigned long long>(v + 1000));
    atomicAdd(count, 1u);
    atomicMax(imax, v);
    atomicMax(umax, static_cast<unsigned>(v + 1000));
    int old = *cas_counter;
    int assumed;
    do
    {
        assumed = old;
        old = atomicCAS(cas_counter, assumed, assumed + 1);
    } while (old != assumed);
    atomicExch(last, v);
}

// ---- launch geometry ----

// 3-D grid of 3-D blocks over an (nz, ny, nx) volume: out[(z * ny + y) * nx + x] = x + 1000 * y + 1000000 * z.
extern "C" __global__ void selftest_dims_kernel(int* out, int nx, int ny, int nz)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int z = blockIdx.z * blockDim.z + threadIdx.z;
    if (x >= nx || y >= ny || z >= nz) return;
    out[(static_cast<long long>(z) * ny + y) * nx + x] = x + 1000 * y + 1000000 * z;
}

// ---- reductions of slak_common.cuh ----

// One block per row of an (rows, cols) matrix: sums[row] and maxes[row], two block reductions in a row, and
// positives[row] = how many of the row's first blockDim.x elements are > 0 (__syncthreads_count).
extern "C" __global__ void selftest_block_reduce_kernel(float* sums, float* maxes, int* positives, const float* in,
                                                        int cols)
{
    const float* row = in + static_cast<long long>(blockIdx.x) * cols;
    float s = 0.0f;
    float m = slak::neg_infinity();
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
    {
        s += row[c];
        m = fmaxf(m, row[c]);
    }
    s = slak::block_reduce_sum(s);
    m = slak::block_reduce_max(m);
    const int positive = __syncthreads_count(static_cast<int>(threadIdx.x) < cols && row[threadIdx.x] > 0.0f);
    if (threadIdx.x == 0)
    {
        sums[blockIdx.x] = s;
        maxes[blockIdx.x] = m;
        positives[blockIdx.x] = positive;
    }
}

// ---- errors ----

// out[i] = i, except that thread `fault_index` traps (use_assert = 0) or fails SLAK_DEVICE_ASSERT (use_assert = 1).
extern "C" __global__ void selftest_fault_kernel(int* out, int n, int fault_index, int use_assert)
{
    const int i = static_cast<int>(slak::global_index_1d());
    if (i >= n) return;
    if (use_assert != 0) SLAK_DEVICE_ASSERT(i != fault_index);
    else if (i == fault_index) __trap();
    out[i] = i;
}

// Emulator only (undefined behaviour on a GPU, which the emulator must report):
//   mode 0: lane 7 returns, then the rest shuffle with a full mask;
//   mode 1: lanes 0-15 wait in __syncwarp for lanes 16-31, which wait in __syncthreads.
extern "C" __global__ void selftest_misuse_kernel(float* out, int mode)
{
    const int t = threadIdx.x;
    if (mode == 0)
    {
        if (t == 7) return;
        out[t] = __shfl_xor_sync(slak::kFullMask, 1.0f, 1);
    }
    else
    {
        if (t < 16) __syncwarp(slak::kFullMask);
        else __syncthreads();
        out[t] = 1.0f;
    }
}
