// sparse.cu: one prune/regrow round of dynamic sparse training on the device, bit-identical to the host arithmetic
// of src/Slak/Sparse/SparseSelection.cs. Every choice is "the k smallest (key, index) pairs": the 64-bit composite
// key << 32 | index is unique, so the k smallest are exactly those below one exclusive bound, found by radix select
// (8 passes of 8 bits). Each pass is a histogram kernel over the elements matching the prefix chosen so far and a
// one-block scan kernel that picks the bin holding the k-th smallest and updates prefix and remaining k in device
// memory, so the host never waits between passes. Keys (32 bits; 0xFFFFFFFF = ineligible):
//   prune  : bits of |w| over live positions;
//   regrow : SplitMix64 hash of (round seed, index), or 0x7FFFFFFF - bits of |g| (largest |g| first), over the
//            positions inactive after pruning.
// Launchers: src/Slak.Cuda/Kernels/SparseKernels.cs.
#include "slak_common.cuh"
#include "slak/slak_params.h"  // SparseSelectState

// SparseSelectState (slak/slak_params.h): the selection state in device memory (sizeof bytes, allocated by the
// launcher).

namespace sparse_detail
{
constexpr unsigned kIneligible = 0xFFFFFFFFu;
constexpr unsigned long long kAllEligible = 0xFFFFFFFF00000000ull;  // every eligible composite is below this

__device__ __forceinline__ unsigned long long composite(unsigned key, long long index)
{
    return (static_cast<unsigned long long>(key) << 32) | static_cast<unsigned long long>(static_cast<unsigned>(index));
}

__device__ __forceinline__ unsigned magnitude_key(float v) { return __float_as_uint(v) & 0x7FFFFFFFu; }

// SparseSelection.RandomKey: the SplitMix64 finaliser of seed + golden * (index + 1), top 31 bits.
__device__ __forceinline__ unsigned random_key(unsigned long long seed, long long index)
{
    unsigned long long z = seed + 0x9E3779B97F4A7C15ull * static_cast<unsigned long long>(index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<unsigned>(z >> 33);
}
}  // namespace sparse_detail

// keys[i] = bits of |w[i]| where mask[i] != 0, else ineligible.
extern "C" __global__ void sparse_prune_keys_kernel(unsigned* __restrict__ keys, const float* __restrict__ w,
                                                    const float* __restrict__ mask, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) keys[i] = mask[i] != 0.0f ? sparse_detail::magnitude_key(w[i]) : sparse_detail::kIneligible;
}

// keys[i] over positions with keep[i] == 0: 0x7FFFFFFF - bits of |grad[i]| when grad is given (largest |g| first,
// never ineligible), else the random key of (seed, i); kept positions are ineligible.
extern "C" __global__ void sparse_grow_keys_kernel(unsigned* __restrict__ keys, const float* __restrict__ keep,
                                                   const float* __restrict__ grad, unsigned long long seed, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        unsigned key = sparse_detail::kIneligible;
        if (keep[i] == 0.0f)
            key = grad != nullptr ? 0x7FFFFFFFu - sparse_detail::magnitude_key(grad[i]) : sparse_detail::random_key(seed, i);
        keys[i] = key;
    }
}

// Resets a selection of the k smallest (k taken from k_from->k, the effective count of an earlier selection, when
// k_from is not null). One block.
extern "C" __global__ void sparse_select_init_kernel(SparseSelectState* __restrict__ st, long long k,
                                                     const SparseSelectState* __restrict__ k_from)
{
    for (int b = threadIdx.x; b < kSparseRadixPasses * 256; b += blockDim.x) st->hist[b] = 0u;
    if (threadIdx.x == 0)
    {
        st->k = k_from != nullptr ? k_from->k : static_cast<unsigned long long>(k);
        st->remaining = 0;
        st->prefix = 0;
        st->bound = 0;
        st->eligible = 0;
        st->done = 0;
    }
}

// Histogram of byte `pass` (0 = most significant) of the composites of eligible keys whose higher bytes equal the
// prefix found so far: per-block shared-memory counts, then one global atomic per nonzero bin.
extern "C" __global__ void __launch_bounds__(256) sparse_select_histogram_kernel(SparseSelectState* __restrict__ st,
                                                                               const unsigned* __restrict__ keys,
                                                                               int pass, long long n)
{
    if (st->done) return;  // the same for every thread of the launch
    __shared__ unsigned int bins[256];
    for (int b = threadIdx.x; b < 256; b += blockDim.x) bins[b] = 0u;
    __syncthreads();
    const int shift = 56 - 8 * pass;
    const unsigned long long high = pass == 0 ? 0ull : st->prefix >> (shift + 8);
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const unsigned key = keys[i];
        if (key == sparse_detail::kIneligible) continue;
        const unsigned long long c = sparse_detail::composite(key, i);
        if (pass != 0 && (c >> (shift + 8)) != high) continue;
        atomicAdd(&bins[static_cast<int>((c >> shift) & 0xFFull)], 1u);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += blockDim.x)
        if (bins[b] != 0u) atomicAdd(&st->hist[pass * 256 + b], bins[b]);
}

// Picks the bin of pass `pass` that holds the remaining-th smallest, extends the prefix, and finishes the selection
// when that bin is taken whole (always by pass 7: composites are unique). Pass 0 also clamps k to the eligible
// count and settles k = 0 and k = all. One thread does the 256-bin scan: it is a few hundred additions.
extern "C" __global__ void sparse_select_scan_kernel(SparseSelectState* __restrict__ st, int pass)
{
    if (threadIdx.x != 0 || st->done) return;
    const unsigned int* h = st->hist + pass * 256;
    if (pass == 0)
    {
        unsigned long long total = 0;
        for (int b = 0; b < 256; ++b) total += h[b];
        st->eligible = total;
        if (st->k > total) st->k = total;
        st->remaining = st->k;
        if (st->k == 0 || st->k == total)
        {
            st->bound = st->k == 0 ? 0ull : sparse_detail::kAllEligible;
            st->done = 1;
            return;
        }
    }
    const unsigned long long want = st->remaining;
    unsigned long long below = 0;
    int bin = 0;
    for (; bin < 255; ++bin)
    {
        if (below + h[bin] >= want) break;
        below += h[bin];
    }
    const int shift = 56 - 8 * pass;
    const unsigned long long prefix = st->prefix | (static_cast<unsigned long long>(bin) << shift);
    const unsigned long long rest = want - below;
    st->prefix = prefix;
    st->remaining = rest;
    if (h[bin] == rest)
    {
        const unsigned long long low = shift == 0 ? 0ull : ((1ull << shift) - 1ull);
        st->bound = (prefix | low) + 1ull;
        st->done = 1;
    }
}

// keep[i] = 1 where the position was live (eligible prune key) and is not among the pruned, else 0.
extern "C" __global__ void sparse_prune_mark_kernel(float* __restrict__ keep, const unsigned* __restrict__ keys,
                                                    const SparseSelectState* __restrict__ st, long long n)
{
    const unsigned long long bound = st->bound;
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const unsigned key = keys[i];
        keep[i] = key != sparse_detail::kIneligible && sparse_detail::composite(key, i) >= bound ? 1.0f : 0.0f;
    }
}

// mask[i] = 1 where kept or selected for regrowth (grow keys below the bound), else 0.
extern "C" __global__ void sparse_grow_mark_kernel(float* __restrict__ mask, const float* __restrict__ keep,
                                                   const unsigned* __restrict__ keys,
                                                   const SparseSelectState* __restrict__ st, long long n)
{
    const unsigned long long bound = st->bound;
    SLAK_GRID_STRIDE_LOOP(i, n)
        mask[i] = keep[i] != 0.0f || sparse_detail::composite(keys[i], i) < bound ? 1.0f : 0.0f;
}

// The reference code's random regrowth: each inactive position grows with probability removed / inactive, decided
// by Uniform(random key) < q in double precision exactly as the host does (removed and the live count come from
// the prune selection's state).
extern "C" __global__ void sparse_grow_bernoulli_kernel(float* __restrict__ mask, const float* __restrict__ keep,
                                                        const SparseSelectState* __restrict__ prune,
                                                        unsigned long long seed, long long n)
{
    const unsigned long long removed = prune->k;
    const unsigned long long inactive = static_cast<unsigned long long>(n) - prune->eligible + removed;
    const double q = inactive == 0 ? 0.0 : static_cast<double>(removed) / static_cast<double>(inactive);
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        bool live = keep[i] != 0.0f;
        if (!live)
            live = static_cast<double>(sparse_detail::random_key(seed, i)) * (1.0 / 2147483648.0) < q;
        mask[i] = live ? 1.0f : 0.0f;
    }
}

// count[0] += number of nonzero elements of mask (count zeroed by the launcher).
extern "C" __global__ void __launch_bounds__(256) sparse_count_kernel(unsigned long long* __restrict__ count,
                                                                    const float* __restrict__ mask, long long n)
{
    __shared__ unsigned int block_count;
    if (threadIdx.x == 0) block_count = 0u;
    __syncthreads();
    unsigned int local = 0u;
    SLAK_GRID_STRIDE_LOOP(i, n) local += mask[i] != 0.0f ? 1u : 0u;
    if (local != 0u) atomicAdd(&block_count, local);
    __syncthreads();
    if (threadIdx.x == 0 && block_count != 0u) atomicAdd(count, static_cast<unsigned long long>(block_count));
}
