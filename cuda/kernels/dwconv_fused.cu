// dwconv_fused.cu: the fused decomposed depthwise convolution (SLaK's large kernel: up to three branches such as
// 51x5 + 5x51 + 5x5, or a dense MxM + NxN), "same" zero padding per branch, stride 1, NCHW, fp32 accumulation.
//
// Grid: x = plane n*C + c (no 65535 limit), y = tile row, z = tile column; block (32, 4). One kernel serves two
// passes:
//   forward (sum = 0): one block per (32 x 32 output tile, plane n*C + c) reads the input tile plus the union halo
//     of all branches into shared memory ONCE and computes every branch from it, writing each branch output
//     separately (each feeds its own training BatchNorm);
//   input gradient (sum = 1, flip = 1): the same block reads the tile of each branch's output gradient in turn and
//     accumulates the correlations with the flipped filters in registers, writing dx once (no per-branch dx, no
//     extra add pass). Inference uses the same summing mode without flip (every branch reading x, one output).
// Two bodies of dwconv_fused_kernel, chosen at compile time:
//   - sliding window (default; dw_fused_sliding): masked taps are zero weights, each branch is computed along its
//     long axis with register strips of kFusedRows outputs and unrolled kFusedChunk-tap steps (two steps per loop
//     iteration: 27 shared loads per 128 FFMAs), specialised per branch (Kh, Kw) through NVRTC defines by the
//     launcher;
//   - live-tap list (SLAK_DW_FUSED_TAPLIST=1; dw_fused_taplist): each block compacts its channel's live taps into a
//     shared list grouped by kernel column and slides a window of kFusedRows inputs down each column, so pruned taps
//     cost nothing but every tap costs ~13 instructions besides its kFusedRows FFMAs. Kept as the benchmark variant
//     (kernel-model --variant taplist): by the model it is faster only below a mask density of about 0.19-0.25
//     (docs/gpu-kernels.md), below anything SLaK trains with.
// Storage type: dw_store_t (float; bfloat16 when compiled with SLAK_DW_BF16=1); loads/stores go through
// dw_load/dw_store, so bf16 storage with fp32 accumulation is a typedef and two helpers.
// Weight gradient: dwconv_fused_wgrad_kernel below (per-tile partial sums of all branches' live taps in shared
// memory from one x tile, one partial per (chunk, channel, tap), reduced deterministically by reduce.cu).
// Launchers: src/Slak.Cuda/Kernels/DwConvFusedKernels.cs. CPU counterpart: src/Slak/Backends/Cpu/CpuDwConv*.cs.
// Params structs (DwFusedParams, DwFusedWgradParams), tile constants and launch plans: slak/slak_params.h,
// slak/slak_plan.h.
#include "slak_common.cuh"
#include "slak/slak_params.h"

#if defined(SLAK_DW_BF16) && SLAK_DW_BF16
// The bf16 instantiation (mixed precision, docs/mixed-precision.md): activations and gradients read and written as
// bfloat16 (slak_bf16.cuh: cvt.rn.bf16.f32 on the GPU), weights, masks and every accumulation in fp32.
#include "slak_bf16.cuh"
typedef slak_bf16 dw_store_t;
__device__ __forceinline__ float dw_load(const dw_store_t* p) { return slak_bf16_to_float(*p); }
__device__ __forceinline__ void dw_store(dw_store_t* p, float v) { *p = slak_float_to_bf16(v); }
#else
typedef float dw_store_t;
__device__ __forceinline__ float dw_load(const dw_store_t* p) { return *p; }
__device__ __forceinline__ void dw_store(dw_store_t* p, float v) { *p = v; }
#endif
// The weight gradient's incoming gradients (dy) are float32 in every instantiation: gradients stay float32 under bf16,
// so the bf16 instance of dwconv_fused_wgrad_kernel reads x as bf16 (widened exactly on load) and dy as float32; only
// x's type follows dw_store_t there. In the float32 instantiation both are float (the same code as before).
typedef float dw_grad_t;

static_assert(kFusedThreads == 128, "dwconv_fused_kernel's __launch_bounds__ is the block of its plan");
static_assert(kFusedWgradThreads == 256, "dwconv_fused_wgrad_kernel's __launch_bounds__ is the block of its plan");
static_assert(sizeof(int) * kFusedMaxBranches <= kFusedWgradStaticSmem,
              "dwconv_fused_wgrad_kernel's static shared memory is budgeted by its plan");

// Shared layout: [tile (kFusedTileH + 2 halo_h) x (kFusedTileW + 2 halo_w)] [per branch: tap list of kh*kw
// (packed (i << 16) | j, weight bits) int2, column-major] [per branch: kw + 1 column starts].
struct DwBranchView
{
    const dw_store_t* in;
    dw_store_t* out;
    const float* wt;
    const float* mask;
    int kh, kw;
    int2* taps;
    int* col_start;
};

// Warp-cooperative compaction of channel ch's live taps of one branch into shared memory, column by column (taps of
// one kernel column in ascending rows), so that consecutive taps of a column reuse all but one of a thread's
// kFusedRows input rows (see the sliding window in dwconv_fused_kernel).
__device__ __forceinline__ void dw_compact_taps(const DwBranchView& b, int ch, int flip, int lane)
{
    const int taps = b.kh * b.kw;
    const long long base = static_cast<long long>(ch) * taps;
    int count = 0;
    for (int t0 = 0; t0 < taps; t0 += 32)
    {
        const int u = t0 + lane;                  // column-major position: u = j * kh + i
        const int i = u % b.kh, j = u / b.kh;
        const int t = i * b.kw + j;               // row-major tap index in the weight
        float wv = 0.0f;
        bool live = false;
        if (u < taps)
        {
            // Flipped filter: tap (i, j) reads the weight at (kh-1-i, kw-1-j).
            const long long k = flip ? base + (taps - 1 - t) : base + t;
            live = b.mask == nullptr || b.mask[k] != 0.0f;
            wv = b.mask == nullptr ? b.wt[k] : b.wt[k] * b.mask[k];
        }
        const unsigned ballot = __ballot_sync(0xffffffffu, live ? 1 : 0);
        const int before = count + __popc(ballot & ((1u << lane) - 1u));
        if (u < taps)
        {
            if (i == 0) b.col_start[j] = before;
            if (live) b.taps[before] = make_int2((i << 16) | j, __float_as_int(wv));
        }
        count += __popc(ballot);
    }
    if (lane == 0) b.col_start[b.kw] = count;
}

// The live-tap-list body (the kernel before the sliding-window rewrite; compiled in with SLAK_DW_FUSED_TAPLIST=1,
// kept so that kernel-model reproduces the before/after comparison; see the crossover in docs/gpu-kernels.md).
__device__ __forceinline__ void dw_fused_taplist(
    dw_store_t* __restrict__ out0, dw_store_t* __restrict__ out1, dw_store_t* __restrict__ out2,
    const dw_store_t* __restrict__ in0, const dw_store_t* __restrict__ in1, const dw_store_t* __restrict__ in2,
    const float* __restrict__ w0, const float* __restrict__ w1, const float* __restrict__ w2,
    const float* __restrict__ m0, const float* __restrict__ m1, const float* __restrict__ m2, const DwFusedParams& p,
    float* smem)
{
    const int tile_x = blockIdx.z * kFusedTileW, tile_y = blockIdx.y * kFusedTileH;
    const long long plane = blockIdx.x;
    const long long plane_off = plane * p.h * p.w;
    const int ch = static_cast<int>(plane % p.c);
    const int sw = kFusedTileW + 2 * p.halo_w, sh = kFusedTileH + 2 * p.halo_h;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
    const int warp = tid >> 5, lane = tid & 31;
    float* s_x = smem;

    DwBranchView br[kFusedMaxBranches];
    {
        // The tap lists hold int2, so they start at an even float offset.
        int* cursor = reinterpret_cast<int*>(smem + ((sh * sw + 1) & ~1));
        const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
        const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
#pragma unroll
        for (int b = 0; b < kFusedMaxBranches; ++b)
        {
            br[b].in = b == 0 ? in0 : b == 1 ? in1 : in2;
            br[b].out = b == 0 ? out0 : b == 1 ? out1 : out2;
            br[b].wt = b == 0 ? w0 : b == 1 ? w1 : w2;
            br[b].mask = b == 0 ? m0 : b == 1 ? m1 : m2;
            br[b].kh = b < p.branches ? khs[b] : 0;
            br[b].kw = b < p.branches ? kws[b] : 0;
            br[b].taps = reinterpret_cast<int2*>(cursor);
            cursor += 2 * br[b].kh * br[b].kw;
            br[b].col_start = cursor;
            cursor += b < p.branches ? br[b].kw + 1 : 0;
        }
    }
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
        if (b < p.branches && warp == b) dw_compact_taps(br[b], ch, p.flip, lane);

    const int q = tile_x + threadIdx.x;
    const int ly0 = threadIdx.y * kFusedRows;
    const int r0 = tile_y + ly0;
    float acc[kFusedRows];
#pragma unroll
    for (int k = 0; k < kFusedRows; ++k) acc[k] = 0.0f;
    const dw_store_t* prev_in = nullptr;

#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        // A tile is loaded when the branch's input differs from the previous one: once for the forward and the
        // inference sum (every branch reads x), once per branch for the input gradient (own output gradients).
        if (b == 0 || br[b].in != prev_in)
        {
            if (b > 0) __syncthreads(); // every thread finished reading the previous branch's tile
            prev_in = br[b].in;
            const dw_store_t* src = br[b].in + plane_off;
            for (int k = tid; k < sh * sw; k += nthreads)
            {
                const int hi = tile_y - p.halo_h + k / sw, wi = tile_x - p.halo_w + k % sw;
                s_x[k] = (hi >= 0 && hi < p.h && wi >= 0 && wi < p.w)
                             ? dw_load(src + static_cast<long long>(hi) * p.w + wi) : 0.0f;
            }
        }
        __syncthreads(); // tile and tap lists are ready
        if (q < p.w && r0 < p.h)
        {
            const int kh = br[b].kh, kw = br[b].kw, ph = kh / 2, pw = kw / 2;
            const int ilo = max(0, ph - (r0 + kFusedRows - 1)), ihi = min(kh, p.h + ph - r0);
            const int j0 = max(0, pw - q), j1 = min(kw, p.w + pw - q);
            // The branch's window starts (halo - pad) inside the union halo.
            const float* base = s_x + (ly0 + p.halo_h - ph) * sw + threadIdx.x + p.halo_w - pw;
            if (!p.sum)
            {
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k) acc[k] = 0.0f;
            }
            // Columns whose input lies in the padding for this thread are skipped through the column index, rows
            // by a test. Sliding window: the next live tap one row down the same column needs one new input row.
            float win[kFusedRows];
#pragma unroll
            for (int k = 0; k < kFusedRows; ++k) win[k] = 0.0f;
            int last = -2; // packed (i << 16) | j of the tap the window holds
            const int t1 = j0 < j1 ? br[b].col_start[j1] : 0;
            for (int t = j0 < j1 ? br[b].col_start[j0] : 0; t < t1; ++t)
            {
                const int2 e = br[b].taps[t];
                const int i = e.x >> 16, j = e.x & 0xffff;
                if (i < ilo || i >= ihi) continue;
                const float* s = base + i * sw + j;
                if (e.x == last + (1 << 16))
                {
#pragma unroll
                    for (int k = 0; k < kFusedRows - 1; ++k) win[k] = win[k + 1];
                    win[kFusedRows - 1] = s[(kFusedRows - 1) * sw];
                }
                else
                {
#pragma unroll
                    for (int k = 0; k < kFusedRows; ++k) win[k] = s[k * sw];
                }
                last = e.x;
                const float wv = __int_as_float(e.y);
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k) acc[k] = fmaf(win[k], wv, acc[k]);
            }
            if (!p.sum || b == p.branches - 1)
            {
                dw_store_t* dst = (p.sum ? out0 : br[b].out) + plane_off;
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k)
                    if (r0 + k < p.h) dw_store(dst + static_cast<long long>(r0 + k) * p.w + q, acc[k]);
            }
        }
    }
}

// ---- the sliding-window body (default) ----
// Every branch is computed along its long axis (rows for kh >= kw, "tall"; columns otherwise, "wide"). A thread owns
// kFusedRows consecutive outputs along that axis: tall, warp w owns rows 8w..8w+7 of the tile and lane l column l;
// wide, warp w owns columns 8w..8w+7 and lane l row l (the tile row stride is odd, so lanes 32 rows apart hit 32
// different banks). For each tap of the short axis the long-axis taps run in unrolled steps of kFusedChunk: one step
// loads kFusedChunk + kFusedRows - 1 inputs and kFusedChunk weights (two broadcast 128-bit loads) and issues
// kFusedChunk x kFusedRows FFMAs. Masked taps are zero weights (dense), the weight rows are zero-padded to a
// multiple of kFusedChunk, and the steps run only over the long-axis taps that reach the image for some output of
// the warp's strip (warp-uniform). Per-(Kh, Kw) specialisation: the launcher compiles the module with
// SLAK_DW_KH<b>/SLAK_DW_KW<b> defined for branch b (part of the kernel-cache key), which turns the short-axis loop and
// every stride into constants; without them (the emulator, a shape nobody specialised) the same code runs with the
// sizes from the params.
#include "slak_dw_branches.cuh"

// The tile row stride of a specialised module (all its branches known at compile time), else 0 (from the params).
constexpr int dw_spec_max(int a, int b) { return a > b ? a : b; }
constexpr int kSpecHaloW = dw_spec_max(SLAK_DW_KW0 / 2, dw_spec_max(SLAK_DW_KW1 / 2, SLAK_DW_KW2 / 2));
constexpr int kSpecStride = SLAK_DW_KH0 > 0 ? (kFusedTileW + 2 * kSpecHaloW + kFusedChunk - 1) | 1 : 0;

static_assert(kFusedTileW == 32 && kFusedTileH == 32 && kFusedRows * kFusedThreadsY == kFusedTileW,
              "the sliding-window body maps lanes to one tile axis and warps x kFusedRows to the other");
static_assert(kFusedChunk == 8 && kFusedRows == 8, "the chunk step loads its weights as two float4");

// Long-axis length, short-axis length and zero-padded weight row of a branch (matches slak_plan.h).
__device__ __forceinline__ int dw_long(int kh, int kw) { return kh >= kw ? kh : kw; }
__device__ __forceinline__ int dw_short(int kh, int kw) { return kh >= kw ? kw : kh; }
__device__ __forceinline__ int dw_row(int kh, int kw)
{
    return (dw_long(kh, kw) + kFusedChunk - 1) / kFusedChunk * kFusedChunk;
}

// The image-edge steps (default; SLAK_DW_EDGE_STEPS=0 compiles the loop without them, the benchmark variant
// kernel-model --variant noedge): a step reads the kFusedChunk + kFusedRows - 1 inputs m = 0..14 along the long axis
// (input m feeds the products u + k = m), and at the image's edges a prefix or a suffix of them lies in the padding
// (zeros). Such a step is compiled for its in-image inputs m in [LO, HI] only, so it issues only the products that
// meet the image (the rest of the strip's steps are the unchanged hot loop). The first and last steps of a strip are
// the only ones that can be clipped (at most two at each end; both ends clip one step only on maps shorter than the
// window, where the full step runs).
#ifndef SLAK_DW_EDGE_STEPS
#define SLAK_DW_EDGE_STEPS 1
#endif
constexpr int kFusedWindow = kFusedChunk + kFusedRows - 1;

// One step of the sliding window for every short-axis tap s < ks, restricted to the inputs m in [LO, HI].
template <int LO, int HI>
__device__ __forceinline__ void dw_clipped_steps(float (&acc)[kFusedRows], const float* xc, int sk, int sl,
                                                 const float* wc, int row, int ks)
{
#pragma unroll 1
    for (int s = 0; s < ks; ++s)
    {
        const float* xr = xc + s * sk;
        float xv[kFusedWindow];
#pragma unroll
        for (int m = 0; m < kFusedWindow; ++m) xv[m] = m >= LO && m <= HI ? xr[m * sl] : 0.0f;
        const float4 wa = reinterpret_cast<const float4*>(wc + s * row)[0];
        const float4 wb = reinterpret_cast<const float4*>(wc + s * row)[1];
        const float wv[kFusedChunk] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
        for (int u = 0; u < kFusedChunk; ++u)
        {
#pragma unroll
            for (int k = 0; k < kFusedRows; ++k)
                if (u + k >= LO && u + k <= HI) acc[k] = fmaf(xv[u + k], wv[u], acc[k]);
        }
    }
}

// Step c of a strip whose first d inputs (d > 0) or last e inputs (e > 0) lie outside the image (warp-uniform).
__device__ __forceinline__ void dw_edge_step(float (&acc)[kFusedRows], const float* xc, int sk, int sl,
                                             const float* wc, int row, int ks, int d, int e)
{
    static_assert(kFusedWindow == 15, "the cases below cover a window of 15 inputs");
#define SLAK_DW_LEAD(D) case D: dw_clipped_steps<D, kFusedWindow - 1>(acc, xc, sk, sl, wc, row, ks); return;
#define SLAK_DW_TRAIL(E) case E: dw_clipped_steps<0, kFusedWindow - 1 - E>(acc, xc, sk, sl, wc, row, ks); return;
    if (d > 0 && e <= 0)
    {
        switch (d)
        {
            SLAK_DW_LEAD(1) SLAK_DW_LEAD(2) SLAK_DW_LEAD(3) SLAK_DW_LEAD(4) SLAK_DW_LEAD(5) SLAK_DW_LEAD(6)
            SLAK_DW_LEAD(7) SLAK_DW_LEAD(8) SLAK_DW_LEAD(9) SLAK_DW_LEAD(10) SLAK_DW_LEAD(11) SLAK_DW_LEAD(12)
            SLAK_DW_LEAD(13) SLAK_DW_LEAD(14)
            default: break;
        }
    }
    else if (e > 0 && d <= 0)
    {
        switch (e)
        {
            SLAK_DW_TRAIL(1) SLAK_DW_TRAIL(2) SLAK_DW_TRAIL(3) SLAK_DW_TRAIL(4) SLAK_DW_TRAIL(5) SLAK_DW_TRAIL(6)
            SLAK_DW_TRAIL(7) SLAK_DW_TRAIL(8) SLAK_DW_TRAIL(9) SLAK_DW_TRAIL(10) SLAK_DW_TRAIL(11) SLAK_DW_TRAIL(12)
            SLAK_DW_TRAIL(13) SLAK_DW_TRAIL(14)
            default: break;
        }
    }
#undef SLAK_DW_LEAD
#undef SLAK_DW_TRAIL
    // Clipped at both ends (a map shorter than the window), or nothing clipped: the full step (padding is zeros).
    dw_clipped_steps<0, kFusedWindow - 1>(acc, xc, sk, sl, wc, row, ks);
}

// acc[k] = sum over taps of branch (KH, KW) (0: the runtime sizes kh_rt, kw_rt) of w * x for the thread's kFusedRows
// outputs. s_w: the branch's weights, row s (short-axis tap) holding the long-axis taps l = 0..row-1 (zero beyond).
template <int KH_C, int KW_C>
__device__ __forceinline__ void dw_branch_sliding(float (&acc)[kFusedRows], const float* s_x, int sw, const float* s_w,
                                                  int kh_rt, int kw_rt, const DwFusedParams& p, int tile_y, int tile_x,
                                                  int warp, int lane)
{
    constexpr bool kSpecialised = KH_C > 0 && KW_C > 0;
    constexpr int kShortC = KH_C >= KW_C ? KW_C : KH_C;
    constexpr int kShortUnroll = kSpecialised && kShortC <= kFusedChunk ? kShortC : 1;
    (void)kShortUnroll;  // read only by the #pragma unroll below, which host compilers (the emulator) ignore
    const int kh = kSpecialised ? KH_C : kh_rt, kw = kSpecialised ? KW_C : kw_rt;
    const bool tall = kh >= kw;
    const int kl = dw_long(kh, kw), ks = dw_short(kh, kw), row = dw_row(kh, kw);
    const int ph = kh / 2, pw = kw / 2;
    // Strip start and image extent along the long axis, and the long-axis padding.
    const int a0 = (tall ? tile_y : tile_x) + warp * kFusedRows, extent = tall ? p.h : p.w, pl = tall ? ph : pw;
    const int a1 = min(extent, a0 + kFusedRows) - 1;
    // Long-axis taps l that reach the image for some output a in [a0, a1]: a + l - pl in [0, extent).
    const int lo = max(0, pl - a1), hi = min(kl - 1, extent - 1 + pl - a0);
    const int c_lo = lo / kFusedChunk, c_hi = hi / kFusedChunk;
    // Strides in the tile: along the long axis (sl), along the short axis (sk).
    if (kSpecStride > 0) sw = kSpecStride;
    const int sl = tall ? sw : 1, sk = tall ? 1 : sw;
    const int ly = tall ? warp * kFusedRows : lane, lx = tall ? lane : warp * kFusedRows;
    const float* xs = s_x + (ly + p.halo_h - ph) * sw + lx + p.halo_w - pw;
    // Step c's input m lies at a0 + c kFusedChunk + m - pl along the long axis. Steps with every input inside the
    // image ("full" steps) are c_full0..c_full1; the ones before and after are clipped by the image's edges.
#if SLAK_DW_EDGE_STEPS
    const int lead = pl - a0;                                  // step c's first lead - c kFusedChunk inputs are out
    const int c_full0 = max(c_lo, lead > 0 ? (lead + kFusedChunk - 1) / kFusedChunk : 0);
    const int trail = extent - kFusedWindow + pl - a0;         // last full step: c kFusedChunk <= trail
    const int c_full1 = min(c_hi, trail >= 0 ? trail / kFusedChunk : -1);
    for (int c = c_lo; c <= c_hi && c < c_full0; ++c)
        dw_edge_step(acc, xs + c * kFusedChunk * sl, sk, sl, s_w + c * kFusedChunk, row, ks,
                     lead - c * kFusedChunk, c * kFusedChunk - trail);
#else
    const int c_full0 = c_lo, c_full1 = c_hi;
#endif
#pragma unroll kShortUnroll
    for (int s = 0; s < ks; ++s)
    {
        const float* xr = xs + s * sk;
        const float* wr = s_w + s * row;
        // Two steps per iteration: the second reuses kFusedRows - 1 of the first's inputs (27 shared loads per
        // 128 FFMAs instead of 34); an odd step count ends with one single step.
#pragma unroll 2
        for (int c = c_full0; c <= c_full1; ++c)
        {
            const float* xc = xr + c * kFusedChunk * sl;
            float xv[kFusedChunk + kFusedRows - 1];
#pragma unroll
            for (int m = 0; m < kFusedChunk + kFusedRows - 1; ++m) xv[m] = xc[m * sl];
            const float4 wa = reinterpret_cast<const float4*>(wr + c * kFusedChunk)[0];
            const float4 wb = reinterpret_cast<const float4*>(wr + c * kFusedChunk)[1];
            const float wv[kFusedChunk] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
            for (int u = 0; u < kFusedChunk; ++u)
            {
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k) acc[k] = fmaf(xv[u + k], wv[u], acc[k]);
            }
        }
    }
#if SLAK_DW_EDGE_STEPS
    for (int c = max(c_full0, c_full1 + 1); c <= c_hi; ++c)
        dw_edge_step(acc, xs + c * kFusedChunk * sl, sk, sl, s_w + c * kFusedChunk, row, ks,
                     lead - c * kFusedChunk, c * kFusedChunk - trail);
#endif
}

// Offset of branch b's weights (the rows of the branches before it) in the weight area; b = 3: the area's size.
__device__ __forceinline__ int dw_weight_offset(const DwFusedParams& p, int b)
{
    const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
    const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
    int off = 0;
#pragma unroll
    for (int i = 0; i < kFusedMaxBranches; ++i)
        if (i < b && i < p.branches) off += dw_short(khs[i], kws[i]) * dw_row(khs[i], kws[i]);
    return off;
}

__device__ __forceinline__ void dw_fused_sliding(
    dw_store_t* __restrict__ out0, dw_store_t* __restrict__ out1, dw_store_t* __restrict__ out2,
    const dw_store_t* __restrict__ in0, const dw_store_t* __restrict__ in1, const dw_store_t* __restrict__ in2,
    const float* __restrict__ w0, const float* __restrict__ w1, const float* __restrict__ w2,
    const float* __restrict__ m0, const float* __restrict__ m1, const float* __restrict__ m2, const DwFusedParams& p,
    float* smem)
{
    // A module specialised for some (Kh, Kw) must be launched with exactly those branches.
    SLAK_DEVICE_ASSERT((SLAK_DW_KH0 == 0 || (p.kh0 == SLAK_DW_KH0 && p.kw0 == SLAK_DW_KW0)) &&
                       (SLAK_DW_KH1 == 0 || p.branches < 2 || (p.kh1 == SLAK_DW_KH1 && p.kw1 == SLAK_DW_KW1)) &&
                       (SLAK_DW_KH2 == 0 || p.branches < 3 || (p.kh2 == SLAK_DW_KH2 && p.kw2 == SLAK_DW_KW2)) &&
                       (kSpecStride == 0 || ((kFusedTileW + 2 * p.halo_w + kFusedChunk - 1) | 1) == kSpecStride));
    const int tile_x = blockIdx.z * kFusedTileW, tile_y = blockIdx.y * kFusedTileH;
    const long long plane_off = static_cast<long long>(blockIdx.x) * p.h * p.w;
    const int ch = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.c));
    const int sh = kFusedTileH + 2 * p.halo_h + kFusedChunk - 1;
    const int sw = (kFusedTileW + 2 * p.halo_w + kFusedChunk - 1) | 1;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
    const int warp = tid >> 5, lane = tid & 31;
    const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
    const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
    float* s_x = smem;
    // Weights of branch b at s_w + dw_weight_offset(p, b) (recomputed from the params where used: keeping three
    // offsets live through the whole kernel made ptxas spill them on sm_80), then the shared output tile.
    float* s_w = smem + ((sh * sw + 3) & ~3);
    float* s_out = s_w + dw_weight_offset(p, kFusedMaxBranches);

    // Weights (flipped for the input gradient, masked taps as zeros), row s = short-axis tap, zero-padded.
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const int kh = khs[b], kw = kws[b], taps = kh * kw, row = dw_row(kh, kw);
        const bool tall = kh >= kw;
        const float* wt = b == 0 ? w0 : b == 1 ? w1 : w2;
        const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
        const long long base = static_cast<long long>(ch) * taps;
        for (int e = tid; e < dw_short(kh, kw) * row; e += nthreads)
        {
            const int s = e / row, l = e - s * row;
            float v = 0.0f;
            if (l < dw_long(kh, kw))
            {
                const int t = tall ? l * kw + s : s * kw + l;
                const long long k = base + (p.flip ? taps - 1 - t : t);
                v = mask == nullptr ? wt[k] : mask[k] != 0.0f ? wt[k] * mask[k] : 0.0f;
            }
            s_w[dw_weight_offset(p, b) + e] = v;
        }
    }

    float acc[kFusedRows];
    // Not unrolled: a specialised module dispatches each branch to its own instantiation below (its own constants);
    // unrolling the branches as well made ptxas spill 4 bytes on sm_80 (stage 4's 13x5 specialisation).
#pragma unroll 1
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        // The tile is loaded when the branch's input differs from the previous one: once for the forward and the
        // inference sum (every branch reads x), once per branch for the input gradient (own output gradients).
        if (b == 0 || (b == 1 ? in1 != in0 : in2 != in1))
        {
            if (b > 0) __syncthreads(); // every thread finished reading the previous branch's tile
            // Row by row (a warp per row, lanes along it): no division per element.
            const dw_store_t* src = (b == 0 ? in0 : b == 1 ? in1 : in2) + plane_off;
            for (int r = warp; r < sh; r += nthreads / 32)
            {
                const int hi = tile_y - p.halo_h + r;
                const bool row_in = hi >= 0 && hi < p.h;
                const dw_store_t* src_row = src + static_cast<long long>(row_in ? hi : 0) * p.w;
                for (int q = lane; q < sw; q += 32)
                {
                    const int wi = tile_x - p.halo_w + q;
                    s_x[r * sw + q] = row_in && wi >= 0 && wi < p.w ? dw_load(src_row + wi) : 0.0f;
                }
            }
        }
        __syncthreads(); // tile and weights ready; the previous branch's shared outputs are written
#pragma unroll
        for (int k = 0; k < kFusedRows; ++k) acc[k] = 0.0f;
        const int kh = khs[b], kw = kws[b];
        const bool tall = kh >= kw;
        // Warps whose strip lies wholly outside the image own no output: they skip the work (not the barriers).
        if ((tall ? tile_y : tile_x) + warp * kFusedRows < (tall ? p.h : p.w))
        {
            // (The weight offset is computed at each call: hoisted into one variable, ptxas spilled it on sm_90.)
            if (kSpecStride == 0)
                dw_branch_sliding<0, 0>(acc, s_x, sw, s_w + dw_weight_offset(p, b), kh, kw, p, tile_y, tile_x,
                                        warp, lane);
            else if (b == 0)
                dw_branch_sliding<SLAK_DW_KH0, SLAK_DW_KW0>(acc, s_x, sw, s_w + dw_weight_offset(p, 0), kh, kw, p,
                                                            tile_y, tile_x, warp, lane);
            else if (b == 1)
                dw_branch_sliding<SLAK_DW_KH1, SLAK_DW_KW1>(acc, s_x, sw, s_w + dw_weight_offset(p, 1), kh, kw, p,
                                                            tile_y, tile_x, warp, lane);
            else
                dw_branch_sliding<SLAK_DW_KH2, SLAK_DW_KW2>(acc, s_x, sw, s_w + dw_weight_offset(p, 2), kh, kw, p,
                                                            tile_y, tile_x, warp, lane);
            // Output k of this thread: tall (row 8 warp + k, column lane), wide (row lane, column 8 warp + k).
            const int oy = tall ? warp * kFusedRows : lane, ox = tall ? lane : warp * kFusedRows;
            const int dy = tall ? 1 : 0, dx = tall ? 0 : 1;
            if (!p.sum)
            {
                dw_store_t* dst = (b == 0 ? out0 : b == 1 ? out1 : out2) + plane_off;
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k)
                {
                    const int r = tile_y + oy + k * dy, q = tile_x + ox + k * dx;
                    if (r < p.h && q < p.w) dw_store(dst + static_cast<long long>(r) * p.w + q, acc[k]);
                }
            }
            else
            {
#pragma unroll
                for (int k = 0; k < kFusedRows; ++k)
                {
                    float* o = s_out + (oy + k * dy) * kFusedOutStride + ox + k * dx;
                    *o = b == 0 ? acc[k] : *o + acc[k];
                }
            }
        }
    }
    if (p.sum)
    {
        __syncthreads(); // every branch has added its outputs
        dw_store_t* dst = out0 + plane_off;
        for (int k = tid; k < kFusedTileH * kFusedTileW; k += nthreads)
        {
            const int r = tile_y + k / kFusedTileW, q = tile_x + k % kFusedTileW;
            if (r < p.h && q < p.w)
                dw_store(dst + static_cast<long long>(r) * p.w + q,
                         s_out[(k / kFusedTileW) * kFusedOutStride + k % kFusedTileW]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(128) dwconv_fused_kernel(
    dw_store_t* __restrict__ out0, dw_store_t* __restrict__ out1, dw_store_t* __restrict__ out2,
    const dw_store_t* __restrict__ in0, const dw_store_t* __restrict__ in1, const dw_store_t* __restrict__ in2,
    const float* __restrict__ w0, const float* __restrict__ w1, const float* __restrict__ w2,
    const float* __restrict__ m0, const float* __restrict__ m1, const float* __restrict__ m2, DwFusedParams p)
{
    SLAK_DYNAMIC_SHARED(float, smem);
#if defined(SLAK_DW_FUSED_TAPLIST) && SLAK_DW_FUSED_TAPLIST
    dw_fused_taplist(out0, out1, out2, in0, in1, in2, w0, w1, w2, m0, m1, m2, p, smem);
#else
    dw_fused_sliding(out0, out1, out2, in0, in1, in2, w0, w1, w2, m0, m1, m2, p, smem);
#endif
}

// ---- weight gradient ----
#if defined(SLAK_DW_WGRAD_TAPS) && SLAK_DW_WGRAD_TAPS
// The live-tap body (the kernel before the outer-product rewrite; compiled in with SLAK_DW_WGRAD_TAPS=1 for
// kernel-model --variant taps only: it was planned with dy tiles of up to 64 columns and as many rows as fit 48 KB,
// tile_h x tile_w, which DwConvModel.TapsPlan reproduces; the current plan's tiles mean something else, so this body
// is never launched).
// dw_b[c, t] = sum over images n and output pixels p of x[n, c, p + t - pad_b] * dy_b[n, c, p]. Block (channel,
// chunk of images) walks the planes tile by tile: the x tile with the union halo is staged once for all branches,
// then each branch's dy tile; each thread owns entries e, e + blockDim, ... of the branch's compacted live-tap list
// and accumulates them over the tile in shared memory (one owner per entry: no atomics). The block writes one
// partial per (chunk, channel, tap), pruned taps as 0 (skip masks non-null); column_sum_finalize_kernel (reduce.cu)
// sums the chunks deterministically. So x and dy are read from global memory once per block, never per tap.

// Warp-cooperative compaction of the live taps (mask != 0, or all when mask is null) of one branch: list[k] = tap.
__device__ __forceinline__ int dw_compact_live(int* list, const float* mask, long long base, int taps, int lane)
{
    int count = 0;
    for (int t0 = 0; t0 < taps; t0 += 32)
    {
        const int t = t0 + lane;
        const bool live = t < taps && (mask == nullptr || mask[base + t] != 0.0f);
        const unsigned ballot = __ballot_sync(0xffffffffu, live ? 1 : 0);
        if (live) list[count + __popc(ballot & ((1u << lane) - 1u))] = t;
        count += __popc(ballot);
    }
    return count;
}

__device__ __forceinline__ void dw_wgrad_taps(
    float* __restrict__ part0, float* __restrict__ part1, float* __restrict__ part2,
    const dw_store_t* __restrict__ x, const dw_grad_t* __restrict__ dy0, const dw_grad_t* __restrict__ dy1,
    const dw_grad_t* __restrict__ dy2, const float* __restrict__ m0, const float* __restrict__ m1,
    const float* __restrict__ m2, const DwFusedWgradParams& p, float* smem)
{
    const int ch = blockIdx.x, chunk = blockIdx.y;
    const int tid = threadIdx.x, nthreads = blockDim.x, warp = tid >> 5, lane = tid & 31;
    const int xw = p.tile_w + 2 * p.halo_w, xh = p.tile_h + 2 * p.halo_h;
    float* s_x = smem;
    float* s_dy = s_x + xh * xw;
    float* s_acc = s_dy + p.tile_h * p.tile_w;       // dense per branch: kh*kw accumulators
    const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
    const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
    int acc_off[kFusedMaxBranches], list_off[kFusedMaxBranches];
    int total = 0;
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        acc_off[b] = total;
        total += b < p.branches ? khs[b] * kws[b] : 0;
    }
    int* s_list = reinterpret_cast<int*>(s_acc + total);
    __shared__ int s_count[kFusedMaxBranches];
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b) list_off[b] = acc_off[b];
    for (int k = tid; k < total; k += nthreads) s_acc[k] = 0.0f;
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
        if (b < p.branches && warp == b)
        {
            const int taps = khs[b] * kws[b];
            const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
            const int count = dw_compact_live(s_list + list_off[b], mask, static_cast<long long>(ch) * taps, taps, lane);
            if (lane == 0) s_count[b] = count;
        }

    const int img0 = chunk * p.images_per_chunk;
    const int img1 = min(p.n, img0 + p.images_per_chunk);
    for (int img = img0; img < img1; ++img)
    {
        const long long plane = (static_cast<long long>(img) * p.c + ch) * p.h * p.w;
        for (int ty = 0; ty < p.h; ty += p.tile_h)
            for (int tx = 0; tx < p.w; tx += p.tile_w)
            {
                __syncthreads(); // the previous tile is no longer read
                for (int k = tid; k < xh * xw; k += nthreads)
                {
                    const int hi = ty - p.halo_h + k / xw, wi = tx - p.halo_w + k % xw;
                    s_x[k] = (hi >= 0 && hi < p.h && wi >= 0 && wi < p.w)
                                 ? dw_load(x + plane + static_cast<long long>(hi) * p.w + wi) : 0.0f;
                }
                // Rows and columns of the tile that exist in the image (the rest of s_dy is zero-padded).
                const int th = min(p.tile_h, p.h - ty), tw = min(p.tile_w, p.w - tx);
#pragma unroll
                for (int b = 0; b < kFusedMaxBranches; ++b)
                {
                    if (b >= p.branches) break;
                    if (b > 0) __syncthreads(); // the previous branch's dy tile is no longer read
                    const dw_grad_t* dy = b == 0 ? dy0 : b == 1 ? dy1 : dy2;
                    for (int k = tid; k < p.tile_h * p.tile_w; k += nthreads)
                    {
                        const int r = k / p.tile_w, q = k % p.tile_w;
                        s_dy[k] = (r < th && q < tw) ? dy[plane + static_cast<long long>(ty + r) * p.w + tx + q]
                                                     : 0.0f;
                    }
                    __syncthreads();
                    const int kw = kws[b], ph = khs[b] / 2, pw = kw / 2;
                    const int* list = s_list + list_off[b];
                    float* acc_b = s_acc + acc_off[b];
                    for (int e = tid; e < s_count[b]; e += nthreads)
                    {
                        const int t = list[e];
                        const int i = t / kw, j = t - i * kw;
                        const float* xs = s_x + (i + p.halo_h - ph) * xw + j + p.halo_w - pw;
                        float acc = 0.0f;
                        for (int r = 0; r < th; ++r)
                        {
                            const float* g = s_dy + r * p.tile_w;
                            const float* xr = xs + r * xw;
                            for (int q = 0; q < tw; ++q) acc = fmaf(g[q], xr[q], acc);
                        }
                        acc_b[t] += acc;
                    }
                }
            }
    }
    __syncthreads();
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const int taps = khs[b] * kws[b];
        float* out = (b == 0 ? part0 : b == 1 ? part1 : part2) + (static_cast<long long>(chunk) * p.c + ch) * taps;
        for (int t = tid; t < taps; t += nthreads) out[t] = s_acc[acc_off[b] + t];
    }
}

#endif

// The default body: register-tiled outer products along each branch's long axis.
// dw_b[i, j] = sum over images n and outputs (r, q) of x[n, c, r + i - ph, q + j - pw] * dy_b[n, c, r, q]. Block
// (channel, chunk of images), 8 warps. The branches are grouped by orientation into two phases, tall (kh >= kw: the
// long axis is the rows) and wide (the columns); each phase walks its own tiles of up to tile_h outputs along the long
// axis by tile_w across it (slak_dw_wgrad_phase in slak_params.h, shared with the plan) and stages them so that the
// long axis is contiguous in shared memory: x with the phase's halos as one "line" per position across the long axis,
// and each branch's dy likewise (tall phases transpose while staging). Small maps stack several images' planes across
// (planes x tile_short <= 32 lanes), so that a warp's lanes are (plane, position) pairs.
// A warp task is (branch, short-axis tap j, strip of kFusedWgradLags consecutive long-axis taps). Each lane holds
// kFusedWgradLags accumulators and walks its line in steps of 8 outputs: two 128-bit dy loads and four 128-bit x
// loads feed 64 FFMAs (each dy value feeds 8 taps, x slides along the line; the second step of an iteration reuses
// half of the first's x). Only outputs where some tap of the strip reaches the image are visited. Line strides are
// 4 mod 8 floats, so the 8 lanes of a quarter warp's 128-bit request hit 8 different 16-byte bank groups. The sums are
// reduced across the warp by a transposing butterfly (fixed order) and one lane per tap adds its sum to the block's
// accumulator: one writer per tap per tile, tiles in a fixed order, so the result is deterministic. Strips whose taps
// are all masked are skipped; with masks, pruned taps get exactly 0. The block writes one partial per (chunk,
// channel, tap); column_sum_finalize_kernel (reduce.cu) sums the chunks in order.
static_assert(kFusedWgradLags == 8, "a task step loads 8 dy values and 16 x values as float4");
static_assert(kFusedWgradTileShort == 32, "the lanes of a warp are the positions across a tile");

// Staging of one phase tile: x (planes x lines_plane lines of sx floats; line l of plane g is position s0 - hs + l
// across, element e position l0 - hl + e along; zeros outside the image) and each phase branch's dy (planes x
// tile_short lines of sd floats; zeros outside the tile, so no output is counted twice).
__device__ __forceinline__ void dw_wg_stage_x(float* s_x, const DwWgradPhase& g, const dw_store_t* x, int img, int img1,
                                              long long plane_stride, long long ch_off, int w, int l0, int s0, int tid,
                                              int nthreads)
{
    const int xlines = g.planes * g.lines_plane;
    const int xtotal = xlines * g.sx;
    for (int k = tid; k < xtotal; k += nthreads)
    {
        // Consecutive threads read consecutive image columns: lines in a tall phase, elements in a wide one.
        int line, e;
        if (g.tall)
        {
            e = k / xlines;
            line = k - e * xlines;
        }
        else
        {
            line = k / g.sx;
            e = k - line * g.sx;
        }
        const int pg = line / g.lines_plane, l = line - pg * g.lines_plane;
        const int along = l0 - g.hl + e, across = s0 - g.hs + l;
        const int row = g.tall ? along : across, col = g.tall ? across : along;
        const bool in = img + pg < img1 && along >= 0 && along < g.ext_long && across >= 0 && across < g.ext_short;
        s_x[line * g.sx + e] =
            in ? dw_load(x + (img + pg) * plane_stride + ch_off + static_cast<long long>(row) * w + col) : 0.0f;
    }
}

__device__ __forceinline__ void dw_wg_stage_dy(float* dst, const DwWgradPhase& g, const dw_grad_t* dy, int img,
                                               int img1, long long plane_stride, long long ch_off, int w, int l0,
                                               int s0, int tid, int nthreads)
{
    const int tlen = min(g.tile_long, g.ext_long - l0), tshort = min(g.tile_short, g.ext_short - s0);
    const int dlines = g.planes * g.tile_short;
    const int dtotal = dlines * g.sd;
    for (int k = tid; k < dtotal; k += nthreads)
    {
        int line, e;
        if (g.tall)
        {
            e = k / dlines;
            line = k - e * dlines;
        }
        else
        {
            line = k / g.sd;
            e = k - line * g.sd;
        }
        const int pg = line / g.tile_short, l = line - pg * g.tile_short;
        const int row = g.tall ? l0 + e : s0 + l, col = g.tall ? s0 + l : l0 + e;
        const bool in = img + pg < img1 && e < tlen && l < tshort;
        dst[line * g.sd + e] =
            in ? dy[(img + pg) * plane_stride + ch_off + static_cast<long long>(row) * w + col] : 0.0f;
    }
}

// The weight gradient's image-edge steps (default; SLAK_DW_EDGE_STEPS=0 compiles the task loop without them, the
// benchmark variant kernel-model --variant noedge): a step of dw_wg_task forms the products d[m] x[m + k] (output m,
// tap k of the strip, x input n = m + k); at the image's edges a prefix of the inputs n lies in the padding (zeros)
// and, at the end of a tile, a suffix of the inputs n or of the outputs m does (zeros past the tile). Such a step is
// compiled for n in [NLO, NHI] and m <= MHI only.
template <int NLO, int NHI, int MHI>
__device__ __forceinline__ void dw_wg_clipped_step(float (&acc)[kFusedWgradLags], const float* dl, const float* xl)
{
    const float4 d0 = reinterpret_cast<const float4*>(dl)[0], d1 = reinterpret_cast<const float4*>(dl)[1];
    const float4 x0 = reinterpret_cast<const float4*>(xl)[0], x1 = reinterpret_cast<const float4*>(xl)[1];
    const float4 x2 = reinterpret_cast<const float4*>(xl)[2], x3 = reinterpret_cast<const float4*>(xl)[3];
    const float d[8] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
    const float xv[16] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w,
                          x2.x, x2.y, x2.z, x2.w, x3.x, x3.y, x3.z, x3.w};
#pragma unroll
    for (int m = 0; m < 8; ++m)
    {
#pragma unroll
        for (int k = 0; k < kFusedWgradLags; ++k)
            if (m + k >= NLO && m + k <= NHI && m <= MHI) acc[k] = fmaf(d[m], xv[m + k], acc[k]);
    }
}

// Products of a step clipped to inputs n <= nhi (0 <= nhi <= 14): the model's and the dispatch's count.
__host__ __device__ constexpr int dw_wg_products_upto(int nhi)
{
    return nhi <= 7 ? (nhi + 1) * (nhi + 2) / 2 : 64 - (14 - nhi) * (15 - nhi) / 2;
}

// One step whose first `lead` inputs lie before the image, or whose inputs past nhi or outputs past mhi lie past the
// image or the tile (warp-uniform). Clipped at both ends (tiny maps): the full step (the padding is zeros). Clipped
// at the end both ways: the one of the two cuts that leaves fewer products.
__device__ __forceinline__ void dw_wg_edge_step(float (&acc)[kFusedWgradLags], const float* dl, const float* xl,
                                                int lead, int nhi, int mhi)
{
#define SLAK_DW_WG_LEAD(L) case L: dw_wg_clipped_step<L, 14, 7>(acc, dl, xl); return;
#define SLAK_DW_WG_NHI(N) case N: dw_wg_clipped_step<0, N, 7>(acc, dl, xl); return;
#define SLAK_DW_WG_MHI(M) case M: dw_wg_clipped_step<0, 14, M>(acc, dl, xl); return;
    const bool tail = nhi < 14 || mhi < 7;
    if (lead > 0 && !tail)
    {
        switch (lead)
        {
            SLAK_DW_WG_LEAD(1) SLAK_DW_WG_LEAD(2) SLAK_DW_WG_LEAD(3) SLAK_DW_WG_LEAD(4) SLAK_DW_WG_LEAD(5)
            SLAK_DW_WG_LEAD(6) SLAK_DW_WG_LEAD(7) SLAK_DW_WG_LEAD(8) SLAK_DW_WG_LEAD(9) SLAK_DW_WG_LEAD(10)
            SLAK_DW_WG_LEAD(11) SLAK_DW_WG_LEAD(12) SLAK_DW_WG_LEAD(13) SLAK_DW_WG_LEAD(14)
            default: break;
        }
    }
    else if (lead <= 0 && tail)
    {
        const int by_n = nhi < 14 ? dw_wg_products_upto(nhi) : 64, by_m = mhi < 7 ? 8 * (mhi + 1) : 64;
        if (by_n <= by_m)
        {
            switch (nhi)
            {
                SLAK_DW_WG_NHI(0) SLAK_DW_WG_NHI(1) SLAK_DW_WG_NHI(2) SLAK_DW_WG_NHI(3) SLAK_DW_WG_NHI(4)
                SLAK_DW_WG_NHI(5) SLAK_DW_WG_NHI(6) SLAK_DW_WG_NHI(7) SLAK_DW_WG_NHI(8) SLAK_DW_WG_NHI(9)
                SLAK_DW_WG_NHI(10) SLAK_DW_WG_NHI(11) SLAK_DW_WG_NHI(12) SLAK_DW_WG_NHI(13)
                default: break;
            }
        }
        else
        {
            switch (mhi)
            {
                SLAK_DW_WG_MHI(0) SLAK_DW_WG_MHI(1) SLAK_DW_WG_MHI(2) SLAK_DW_WG_MHI(3) SLAK_DW_WG_MHI(4)
                SLAK_DW_WG_MHI(5) SLAK_DW_WG_MHI(6)
                default: break;
            }
        }
    }
#undef SLAK_DW_WG_LEAD
#undef SLAK_DW_WG_NHI
#undef SLAK_DW_WG_MHI
    dw_wg_clipped_step<0, 14, 7>(acc, dl, xl);
}

// Trimmed strips (default; SLAK_DW_WGRAD_TRIM=0 compiles the whole strips before them, the benchmark variant
// kernel-model --variant fullstrips, which is also what SLAK_DW_EDGE_STEPS=0 gets): a task computes only the taps of
// its strip up to its last live tap inside the kernel (the remainder strip of 51 = 6 x 8 + 3 taps issues 3 taps'
// FFMAs; a strip's trailing masked taps are not computed: with a mask, a masked tap's gradient is exactly 0 anyway),
// and a strip whose first 4 taps are all masked or before the kernel starts 4 taps later (x stays 16-byte aligned).
// The full steps run a loop compiled for the strip's tap count (dw_wg_short_steps<KN>); the clipped edge steps still
// compute 8 taps, whose extra sums are discarded. Each task is described by dw_wg_task_code (0: no live tap).
#ifndef SLAK_DW_WGRAD_TRIM
#define SLAK_DW_WGRAD_TRIM SLAK_DW_EDGE_STEPS
#endif

// A task's code: shift << 8 | first << 4 | count. The strip starts shift taps after its place (0 or 4); it keeps the
// sums of taps first..count - 1 (first: its first live tap inside the kernel), and its full steps compute taps
// 0..count - 1. first and last are the strip's first and last live taps inside the kernel (-1: none).
__device__ __forceinline__ int dw_wg_task_code(int first, int last)
{
    if (first < 0) return 0;
#if SLAK_DW_WGRAD_TRIM
    const int shift = first >= 4 ? 4 : 0;
    return shift << 8 | (first - shift) << 4 | (last - shift + 1);
#else
    return kFusedWgradLags;
#endif
}

// One full step (8 outputs, every input in the image) for taps 0..KN - 1 of the strip: 8 KN FFMAs.
template <int KN>
__device__ __forceinline__ void dw_wg_full_step(float (&acc)[kFusedWgradLags], const float* dl, const float* xl)
{
    const float4 d0 = reinterpret_cast<const float4*>(dl)[0], d1 = reinterpret_cast<const float4*>(dl)[1];
    const float4 x0 = reinterpret_cast<const float4*>(xl)[0], x1 = reinterpret_cast<const float4*>(xl)[1];
    const float4 x2 = reinterpret_cast<const float4*>(xl)[2], x3 = reinterpret_cast<const float4*>(xl)[3];
    const float d[8] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
    const float xv[16] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w,
                          x2.x, x2.y, x2.z, x2.w, x3.x, x3.y, x3.z, x3.w};
#pragma unroll
    for (int m = 0; m < 8; ++m)
    {
#pragma unroll
        for (int k = 0; k < KN; ++k) acc[k] = fmaf(d[m], xv[m + k], acc[k]);
    }
}

// The full steps of a whole strip from output a while a <= a_last, two per iteration (the hot loop).
__device__ __forceinline__ int dw_wg_full_steps(float (&acc)[kFusedWgradLags], const float*& dl, const float*& xl, int a,
                                                int a_last)
{
#pragma unroll 2
    for (; a <= a_last; a += 8)
    {
        dw_wg_full_step<kFusedWgradLags>(acc, dl, xl);
        dl += 8;
        xl += 8;
    }
    return a;
}

// The full steps of a strip of KN < 8 taps (a remainder strip, trailing masked taps), one per iteration: eight
// two-step loops make ptxas cap the kernel's registers and spill on sm_80.
template <int KN>
__device__ __forceinline__ int dw_wg_short_steps(float (&acc)[kFusedWgradLags], const float*& dl, const float*& xl,
                                                 int a, int a_last)
{
#pragma unroll 1
    for (; a <= a_last; a += 8)
    {
        dw_wg_full_step<KN>(acc, dl, xl);
        dl += 8;
        xl += 8;
    }
    return a;
}

// One warp task: branch (kh, kw), short-axis tap j, strip s described by code (dw_wg_task_code), on the staged tile
// starting at l0 along the long axis. Adds the strip's sums over the tile to s_acc_b (the branch's kh x kw
// accumulators, row-major).
__device__ __forceinline__ void dw_wg_task(float* s_acc_b, const float* s_x, const float* s_dy_b, const DwWgradPhase& g,
                                           int kh, int kw, int j, int s, int code, int l0, int lane)
{
    const int kl = g.tall ? kh : kw, ks = g.tall ? kw : kh, pl = kl / 2, ps = ks / 2;
    const int shift = code >> 8, first = (code >> 4) & 15, count = code & 15;
    // The strip starts delta taps before a multiple of 8, so that every lane's x reads are 16-byte aligned.
    const int delta = (g.hl - pl) & 3;
    const int i0 = s * kFusedWgradLags - delta + shift;
    const int imin = max(0, i0 + first), imax = min(kl - 1, i0 + count - 1);
    // Outputs a (tile-local) where some tap i of the strip reaches the image: l0 + a + i - pl in [0, ext_long).
    const int tlen = min(g.tile_long, g.ext_long - l0);
    const int a_hi = min(tlen, g.ext_long + pl - imin - l0);
    const int a_lo = max(0, pl - imax - l0) & ~3;
    if (a_lo >= a_hi) return; // warp-uniform
    // Lane = plane * tile_short + position; a lane past the tile's planes reads (and discards) the line of an active
    // lane 8k below it: the same 16-byte bank group, so its quarter warp stays conflict-free.
    const int used = g.planes * g.tile_short;
    const bool active = lane < used;
    int src = lane;
    if (!active)
    {
        src -= (lane - used + 8) / 8 * 8;
        if (src < 0) src = lane % used;
    }
    const int pg = src / g.tile_short, qq = src - pg * g.tile_short;
    const float* xl = s_x + (pg * g.lines_plane + qq + j - ps + g.hs) * g.sx + (i0 + g.hl - pl) + a_lo;
    const float* dl = s_dy_b + (pg * g.tile_short + qq) * g.sd + a_lo;
    float acc[kFusedWgradLags];
#pragma unroll
    for (int k = 0; k < kFusedWgradLags; ++k) acc[k] = 0.0f;
    // Step a's input n lies at l0 + a + i0 - pl + n along the long axis, its output m at a + m in the tile.
#if SLAK_DW_EDGE_STEPS
    const int lead_end = pl - l0 - i0;                        // steps a < lead_end start before the image
    const int nhi0 = g.ext_long - 1 - l0 - i0 + pl;           // step a's last input in the image: nhi0 - a
    // Full steps: every input in the image and every output in the tile.
    const int a_full1 = min(a_hi - 1, min(nhi0 - 14, tlen - 8));
    // At most two steps start before the image (lead_end - a_lo <= 7 + 3) and at most two end past it or past the
    // tile (a_hi <= nhi0 + 1 and a_hi <= tlen): both edge loops are unrolled (no backward branch around the clipped
    // steps, so the hot loop stays the innermost loop with the most FFMAs in the machine code).
    int a = a_lo;
#pragma unroll
    for (int t = 0; t < 2; ++t)
        if (a < a_hi && a < lead_end)
        {
            dw_wg_edge_step(acc, dl + (a - a_lo), xl + (a - a_lo), lead_end - a, nhi0 - a, tlen - 1 - a);
            a += 8;
        }
    SLAK_DEVICE_ASSERT(a >= a_hi || a >= lead_end);
    dl += a - a_lo;
    xl += a - a_lo;
#if SLAK_DW_WGRAD_TRIM
    // An if chain, not a switch (a jump table makes ptxas spill); whole strips first, the common case.
    if (count == kFusedWgradLags) a = dw_wg_full_steps(acc, dl, xl, a, a_full1);
    else if (count == 7) a = dw_wg_short_steps<7>(acc, dl, xl, a, a_full1);
    else if (count == 6) a = dw_wg_short_steps<6>(acc, dl, xl, a, a_full1);
    else if (count == 5) a = dw_wg_short_steps<5>(acc, dl, xl, a, a_full1);
    else if (count == 4) a = dw_wg_short_steps<4>(acc, dl, xl, a, a_full1);
    else if (count == 3) a = dw_wg_short_steps<3>(acc, dl, xl, a, a_full1);
    else if (count == 2) a = dw_wg_short_steps<2>(acc, dl, xl, a, a_full1);
    else a = dw_wg_short_steps<1>(acc, dl, xl, a, a_full1);
#else
    a = dw_wg_full_steps(acc, dl, xl, a, a_full1);
#endif
#else
    dw_wg_full_steps(acc, dl, xl, a_lo, a_hi - 1);
#endif
#if SLAK_DW_EDGE_STEPS
#pragma unroll
    for (int t = 0; t < 2; ++t)
        if (a < a_hi)
        {
            dw_wg_edge_step(acc, dl, xl, lead_end - a, nhi0 - a, tlen - 1 - a);
            a += 8;
            dl += 8;
            xl += 8;
        }
    SLAK_DEVICE_ASSERT(a >= a_hi);
#endif
    // Transposing butterfly: afterwards lane L with L % 4 == 0 holds the warp's sum of acc[L / 4].
    float v[kFusedWgradLags];
#pragma unroll
    for (int k = 0; k < kFusedWgradLags; ++k) v[k] = active ? acc[k] : 0.0f;
#pragma unroll
    for (int half = kFusedWgradLags / 2, bit = 16; half >= 1; half /= 2, bit /= 2)
    {
        const bool up = (lane & bit) != 0;
#pragma unroll
        for (int k = 0; k < half; ++k)
        {
            const float send = up ? v[k] : v[k + half];
            const float keep = up ? v[k + half] : v[k];
            v[k] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
        }
    }
    v[0] += __shfl_xor_sync(0xffffffffu, v[0], 2);
    v[0] += __shfl_xor_sync(0xffffffffu, v[0], 1);
    const int k = lane >> 2, i = i0 + k;
    if ((lane & 3) == 0 && k >= first && k < count && i >= 0 && i < kl) s_acc_b[g.tall ? i * kw + j : j * kw + i] += v[0];
}

__device__ __forceinline__ void dw_wgrad_outer(
    float* __restrict__ part0, float* __restrict__ part1, float* __restrict__ part2,
    const dw_store_t* __restrict__ x, const dw_grad_t* __restrict__ dy0, const dw_grad_t* __restrict__ dy1,
    const dw_grad_t* __restrict__ dy2, const float* __restrict__ m0, const float* __restrict__ m1,
    const float* __restrict__ m2, const DwFusedWgradParams& p, float* smem)
{
    const int ch = blockIdx.x, chunk = blockIdx.y;
    const int tid = threadIdx.x, nthreads = blockDim.x, warp = tid >> 5, lane = tid & 31, nwarps = nthreads >> 5;
    const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
    const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
    const DwWgradLayout lay = slak_dw_wgrad_layout(p);
    float* s_acc = smem;
    int* s_live = reinterpret_cast<int*>(smem + lay.live_offset);
    float* s_area = smem + lay.area_offset;
    // (Per-branch values are picked by constant indices or selects: an array indexed at run time would live in local
    // memory.)
    const DwWgradPhase tall_phase = slak_dw_wgrad_phase(p, 1), wide_phase = slak_dw_wgrad_phase(p, 0);

    // Accumulators, and per task its code (dw_wg_task_code: 0 when no tap of its strip is live).
    for (int k = tid; k < lay.taps; k += nthreads) s_acc[k] = 0.0f;
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const int kh = khs[b], kw = kws[b], taps = kh * kw;
        const bool tall = kh >= kw;
        const int kl = tall ? kh : kw, ks = tall ? kw : kh;
        const int delta = ((tall ? tall_phase.hl : wide_phase.hl) - kl / 2) & 3;
        const int strips = slak_dw_wgrad_strips(kl, delta);
        const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
        for (int t = tid; t < ks * strips; t += nthreads)
        {
            const int j = t / strips, s = t - j * strips;
            int first = -1, last = -1;
            for (int k = 0; k < kFusedWgradLags; ++k)
            {
                const int i = s * kFusedWgradLags - delta + k;
                if (i >= 0 && i < kl &&
                    (mask == nullptr ||
                     mask[static_cast<long long>(ch) * taps + (tall ? i * kw + j : j * kw + i)] != 0.0f))
                {
                    if (first < 0) first = k;
                    last = k;
                }
            }
            s_live[lay.task_offset[b] + t] = dw_wg_task_code(first, last);
        }
    }

    const int img0 = chunk * p.images_per_chunk;
    const int img1 = min(p.n, img0 + p.images_per_chunk);
    const long long plane_stride = static_cast<long long>(p.c) * p.h * p.w;
    const long long ch_off = static_cast<long long>(ch) * p.h * p.w;
    for (int phase = 0; phase < 2; ++phase)
    {
        const bool tall = phase == 0;
        const DwWgradPhase g = tall ? tall_phase : wide_phase;
        if (g.branches == 0) continue;
        float* s_x = s_area;
        float* s_dy = s_x + g.planes * g.lines_plane * g.sx;
        const int dtotal = g.planes * g.tile_short * g.sd;
        for (int img = img0; img < img1; img += g.planes)
            for (int l0 = 0; l0 < g.ext_long; l0 += g.tile_long)
                for (int s0 = 0; s0 < g.ext_short; s0 += g.tile_short)
                {
                    __syncthreads(); // the previous tile is no longer read; accumulators and flags are ready
                    dw_wg_stage_x(s_x, g, x, img, img1, plane_stride, ch_off, p.w, l0, s0, tid, nthreads);
                    int bi = 0, first = 0;
#pragma unroll
                    for (int b = 0; b < kFusedMaxBranches; ++b)
                    {
                        if (b >= p.branches || (khs[b] >= kws[b]) != tall) continue;
                        dw_wg_stage_dy(s_dy + bi * dtotal, g, b == 0 ? dy0 : b == 1 ? dy1 : dy2, img, img1,
                                       plane_stride, ch_off, p.w, l0, s0, tid, nthreads);
                        ++bi;
                    }
                    __syncthreads();
                    bi = 0;
                    // With trimmed strips not unrolled, so that the task body (its per-count loops and edge steps)
                    // is compiled once; the branch's values are picked by selects (an array indexed at run time would
                    // be local memory). The whole-strip body stays unrolled, as before (not unrolled it spills on sm_80).
#if SLAK_DW_WGRAD_TRIM
#pragma unroll 1
#else
#pragma unroll
#endif
                    for (int b = 0; b < kFusedMaxBranches; ++b)
                    {
                        if (b >= p.branches) break;
                        const int kh = b == 0 ? p.kh0 : b == 1 ? p.kh1 : p.kh2;
                        const int kw = b == 0 ? p.kw0 : b == 1 ? p.kw1 : p.kw2;
                        if ((kh >= kw) != tall) continue;
                        const int kl = tall ? kh : kw, ks = tall ? kw : kh;
                        const int strips = slak_dw_wgrad_strips(kl, (g.hl - kl / 2) & 3);
                        const int count = ks * strips;
                        const int* live = s_live + (b == 0   ? lay.task_offset[0]
                                                    : b == 1 ? lay.task_offset[1] : lay.task_offset[2]);
                        float* acc_b = s_acc + (b == 0 ? lay.tap_offset[0] : b == 1 ? lay.tap_offset[1] : lay.tap_offset[2]);
                        const float* dy_b = s_dy + bi * dtotal;
                        // Warp w takes the phase's tasks w, w + 8, ... (numbered across its branches).
                        for (int t = (warp - first % nwarps + nwarps) % nwarps; t < count; t += nwarps)
                        {
                            const int code = live[t];
                            if (code == 0) continue;
                            const int j = t / strips, s = t - j * strips;
                            dw_wg_task(acc_b, s_x, dy_b, g, kh, kw, j, s, code, l0, lane);
                        }
                        first += count;
                        ++bi;
                    }
                }
    }
    __syncthreads();
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const int taps = khs[b] * kws[b];
        const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
        float* out = (b == 0 ? part0 : b == 1 ? part1 : part2) + (static_cast<long long>(chunk) * p.c + ch) * taps;
        for (int t = tid; t < taps; t += nthreads)
            out[t] = mask != nullptr && mask[static_cast<long long>(ch) * taps + t] == 0.0f
                         ? 0.0f : s_acc[lay.tap_offset[b] + t];
    }
}
extern "C" __global__ void __launch_bounds__(256) dwconv_fused_wgrad_kernel(
    float* __restrict__ part0, float* __restrict__ part1, float* __restrict__ part2,
    const dw_store_t* __restrict__ x, const dw_grad_t* __restrict__ dy0, const dw_grad_t* __restrict__ dy1,
    const dw_grad_t* __restrict__ dy2, const float* __restrict__ m0, const float* __restrict__ m1,
    const float* __restrict__ m2, DwFusedWgradParams p)
{
    SLAK_DYNAMIC_SHARED(float, smem);
#if defined(SLAK_DW_WGRAD_TAPS) && SLAK_DW_WGRAD_TAPS
    dw_wgrad_taps(part0, part1, part2, x, dy0, dy1, dy2, m0, m1, m2, p, smem);
#else
    dw_wgrad_outer(part0, part1, part2, x, dy0, dy1, dy2, m0, m1, m2, p, smem);
#endif
}
