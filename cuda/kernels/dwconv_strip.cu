// dwconv_strip.cu: one branch of SLaK's decomposed depthwise convolution ("same" zero padding, stride 1, NCHW, odd
// kernels of at most 64 taps along their long axis) computed over its LIVE taps only, for the large maps of stages
// 1-2. y[n, c, r, q] = sum over live taps (i, j) of w[c, i, j] * x[n, c, r + i - kh/2, q + j - kw/2]; flip != 0 rotates
// the kernel by 180 degrees (the input gradient: x is dy, y is dx); accumulate != 0 adds to y instead of writing it
// (the launcher runs a fused call's branches one after another: branch 0 writes, the others add, so a sum is
// deterministic).
//
// Why (docs/gpu-kernels.md, "Live taps in compile-time strips"): dwconv_fused_kernel multiplies masked taps as zero
// weights, so at SLaK's density 0.6 it cannot pass 60 % of the FMA floor over live taps. Here the mask costs a
// warp-uniform branch per tap: a block is ONE channel (a tap's weight and mask are the same for every thread), a lane
// is one line along the branch's long axis (a column of a tall branch, a row of a wide one) of one of the block's
// images, and a thread owns its whole line (up to 64 outputs; longer lines in strips of 32). For each short-axis tap
// the long-axis taps run fully unrolled (the map and the kernel are compile-time: SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH0,
// SLAK_DW_KW0); the strip's inputs slide through registers (one 128-bit shared load per 4 taps, register renaming by
// the unrolling, no moves), the weights come as broadcast 128-bit loads of 4 taps, and a tap is either its in-image
// products (exactly those: the strip's position is a constant too, so products whose input lies in the padding are
// never issued) or, when masked, a predicate test and a branch over them. The per-channel live-tap bits sit in shared
// memory, one 64-bit word per short-axis tap.
//
// Grid x = channel, y = group of G images; block (G / P) x S threads (S: lines of the map across the long axis; P = 2
// images per thread where a line has at most 32 outputs, else 1: dwr_images_per_thread; the launcher picks G). Shared
// memory: the weights (short-axis tap major, KLP floats each, flipped for the input gradient), the live bits, then per
// image the input plane transposed so that the long axis is contiguous: S + KS - 1 lines (zero lines for the
// short-axis padding) of SL floats (SL = 4 mod 8 groups of 16 bytes: each quarter warp's 128-bit loads hit 8
// different bank groups; planes padded likewise, dwr_plane_floats).
// Without the defines (the emulator's generic instance, a shape nobody specialised) the same staging feeds a plain
// per-output loop over the live taps. Launcher: src/Slak.Cuda/Kernels/DwConvStripKernels.cs.
#include "slak_common.cuh"

#define SLAK_DWR_THREADS 256 // the largest block of the plan (a literal kernel-model reads)

// The sizes of the staged planes, the same on the host (DwConvStripKernels.SharedBytes).
__host__ __device__ constexpr int dwr_klp(int kl) { return (kl + 3) / 4 * 4; }
__host__ __device__ constexpr int dwr_line_stride(int l) { return ((l + 3) / 4) % 2 == 1 ? (l + 3) / 4 * 4 : (l + 3) / 4 * 4 + 4; }
// Floats of one image's staged plane: lines + ks - 1 lines of dwr_line_stride(len), padded to 4 mod 8 groups of 16
// bytes, so that a quarter warp whose lanes span two images still hits 8 different bank groups.
__host__ __device__ constexpr int dwr_plane_floats(int lines, int ks, int len)
{
    return ((lines + ks - 1) * dwr_line_stride(len) / 4 + (12 - (lines + ks - 1) * dwr_line_stride(len) / 4 % 8) % 8) * 4;
}
// Images per thread: a line of at most 32 outputs takes the same line of two images (the block is one channel, so
// both see the same live taps): each tap's test, branch and weight load then feed twice the products.
__host__ __device__ constexpr int dwr_images_per_thread(int l) { return 2 * l <= 64 ? 2 : 1; }

// The channel's live bits, one 64-bit word per short-axis tap j (bit i: long-axis tap i; flipped for the input
// gradient): warp j % warps takes short-axis tap j, one ballot per 32 long-axis taps. Without a mask every tap is live.
__device__ __forceinline__ void dwr_live_bits(unsigned long long* __restrict__ s_bits, const float* __restrict__ mask,
                                              int ch, int kkh, int kkw, bool flip, int t, int threads)
{
    const bool tall = kkh >= kkw;
    const int kl = tall ? kkh : kkw, ks = tall ? kkw : kkh;
    const long long taps = static_cast<long long>(kkh) * kkw;
    const int lane = t & 31, warp = t >> 5, warps = (threads + 31) >> 5;
    for (int j = warp; j < ks; j += warps)
    {
        unsigned long long b = 0;
        for (int i0 = 0; i0 < kl; i0 += 32)
        {
            const int i = i0 + lane;
            bool live = false;
            if (i < kl)
            {
                const int ti = tall ? i : j, tj = tall ? j : i;
                const long long src = ch * taps + (flip ? (kkh - 1 - ti) * kkw + (kkw - 1 - tj) : ti * kkw + tj);
                live = mask == nullptr || mask[src] != 0.0f;
            }
            b |= static_cast<unsigned long long>(__ballot_sync(0xffffffffu, live)) << i0;
        }
        if (lane == 0) s_bits[j] = b;
    }
}

// The block's planes (images img0..img0 + group - 1 of channel ch), long axis contiguous: zeros first (padding lines,
// line tails, images past n; 128-bit stores), then the inputs (coalesced loads; a tall branch's planes are transposed
// on the way). Ends with a barrier (so does the zeroing: a caller may zero more of shared memory before calling).
__device__ __forceinline__ void dwr_stage_planes(float* __restrict__ s_x, const float* __restrict__ x, long long img0,
                                                 int n, int c, int ch, int hh, int ww, bool tall, int ks, int group,
                                                 int t, int threads)
{
    const int len = tall ? hh : ww, lines = tall ? ww : hh, pads = ks / 2, sl = dwr_line_stride(len);
    const int plane_floats = dwr_plane_floats(lines, ks, len), hw = hh * ww;
    for (int u = t; u < group * plane_floats / 4; u += threads)
        reinterpret_cast<float4*>(s_x)[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    __syncthreads();
    // Per image, a thread takes 4 consecutive inputs of a row (one 128-bit global load where the rows allow it).
    const int images = static_cast<int>(n - img0 < group ? n - img0 : group);
    const bool vec = ww % 4 == 0;
    const int per_row = vec ? ww / 4 : ww, per_image = hh * per_row;
    for (int g = 0; g < images; ++g)
    {
        const float* xp = x + ((img0 + g) * c + ch) * hw;
        float* sp = s_x + g * plane_floats + pads * sl;
        for (int u = t; u < per_image; u += threads)
        {
            const int r = u / per_row, q0 = (u - r * per_row) * (vec ? 4 : 1);
            if (vec)
            {
                const float4 v = *reinterpret_cast<const float4*>(xp + r * ww + q0);
                const float vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                for (int e = 0; e < 4; ++e) sp[tall ? (q0 + e) * sl + r : r * sl + q0 + e] = vs[e];
            }
            else
                sp[tall ? q0 * sl + r : r * sl + q0] = xp[r * ww + q0];
        }
    }
    __syncthreads();
}

#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
constexpr int kDwrH = SLAK_DWS_H, kDwrW = SLAK_DWS_W, kDwrKh = SLAK_DW_KH0, kDwrKw = SLAK_DW_KW0;
constexpr bool kDwrTall = kDwrKh >= kDwrKw;
constexpr int kDwrL = kDwrTall ? kDwrH : kDwrW;          // outputs along the long axis
constexpr int kDwrKL = kDwrTall ? kDwrKh : kDwrKw;       // long-axis taps
constexpr int kDwrKS = kDwrTall ? kDwrKw : kDwrKh;       // short-axis taps
constexpr int kDwrPad = kDwrKL / 2;
constexpr int kDwrSL = dwr_line_stride(kDwrL);
constexpr int kDwrNG = (kDwrL + 3) / 4;                  // 128-bit groups of a line
// The strip length: the whole line up to 64 outputs (a longer strip costs registers, not issue slots: the products
// are exact and every tap's test and loads are paid once per strip), else 32-output strips.
constexpr int dwr_strip_len(int l) { return l <= 64 ? l : 32; }
constexpr int kDwrR = dwr_strip_len(kDwrL);
constexpr int kDwrP = dwr_images_per_thread(kDwrL);
static_assert(kDwrKL <= 64, "the live bits of a short-axis tap are one 64-bit word");
static_assert((kDwrKh & 1) == 1 && (kDwrKw & 1) == 1, "odd kernels only");

__device__ __forceinline__ float dwr_part(const float4& v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }

// One short-axis tap of the strip of outputs A0..A0 + KMAX: every long-axis tap whose inputs reach the line, unrolled.
// line: the input line of this short-axis tap in the thread's first image (long axis contiguous, 16-byte aligned; the
// p-th image's is p * img_step floats further); wj: its KLP weights; bits: its live taps (bit i: long-axis tap i).
template <int A0>
__device__ __forceinline__ void dwr_taps(float (&acc)[kDwrP][kDwrR], const float* __restrict__ line, int img_step,
                                         const float* __restrict__ wj, unsigned long long bits)
{
    constexpr int KMAX = (kDwrL - A0 < kDwrR ? kDwrL - A0 : kDwrR) - 1;   // the strip's last output
    constexpr int LO = kDwrPad - A0 - KMAX > 0 ? kDwrPad - A0 - KMAX : 0;  // first tap reaching the line
    constexpr int HI = kDwrL - 1 + kDwrPad - A0 < kDwrKL - 1 ? kDwrL - 1 + kDwrPad - A0 : kDwrKL - 1;
    const unsigned lo_bits = static_cast<unsigned>(bits), hi_bits = static_cast<unsigned>(bits >> 32);
    float4 v[kDwrP][kDwrNG];          // v[p][m]: inputs 4m..4m+3 of image p's line, loaded when a tap first needs them
    float4 wq = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int i = LO; i <= HI; ++i)
    {
        // Inputs g of tap i: output A0 + k reads g = A0 + k + i - pad; those in the line are [glo, ghi].
        const int glo = A0 + i - kDwrPad > 0 ? A0 + i - kDwrPad : 0;
        const int ghi = A0 + KMAX + i - kDwrPad < kDwrL - 1 ? A0 + KMAX + i - kDwrPad : kDwrL - 1;
        const int prev = A0 + KMAX + i - 1 - kDwrPad < kDwrL - 1 ? A0 + KMAX + i - 1 - kDwrPad : kDwrL - 1;
#pragma unroll
        for (int m = 0; m < kDwrNG; ++m)
        {
            const bool first = i == LO ? (m >= glo / 4 && m <= ghi / 4) : (m == ghi / 4 && (prev < 0 || prev / 4 != m));
#pragma unroll
            for (int p = 0; p < kDwrP; ++p)
                if (first) v[p][m] = *reinterpret_cast<const float4*>(line + p * img_step + 4 * m);
        }
        if (i == LO || i % 4 == 0) wq = *reinterpret_cast<const float4*>(wj + i / 4 * 4);
        const bool live = ((i < 32 ? lo_bits >> i : hi_bits >> (i - 32)) & 1u) != 0;
        if (live)
        {
            const float wv = dwr_part(wq, i % 4);
#pragma unroll
            for (int p = 0; p < kDwrP; ++p)
            {
#pragma unroll
                for (int k = 0; k <= KMAX; ++k)
                {
                    const int g = A0 + k + i - kDwrPad;
                    if (g >= 0 && g < kDwrL) acc[p][k] = fmaf(wv, dwr_part(v[p][g / 4], g % 4), acc[p][k]);
                }
            }
        }
    }
}

// The strip A0..A0 + R - 1 of the thread's lines, then the following strips (each compiled with its start). out: the
// first image's output line (outputs out_step apart; the p-th image's is p * out_img_step further), images: how many
// of the thread's kDwrP images exist.
template <int A0>
__device__ __forceinline__ void dwr_strips(float* __restrict__ out, int out_step, long long out_img_step, int images,
                                           const float* __restrict__ xline, int img_step, const float* __restrict__ s_w,
                                           const unsigned long long* __restrict__ s_bits, bool accumulate)
{
    if constexpr (A0 < kDwrL)
    {
        constexpr int KMAX = (kDwrL - A0 < kDwrR ? kDwrL - A0 : kDwrR) - 1;
        float acc[kDwrP][kDwrR];
#pragma unroll
        for (int p = 0; p < kDwrP; ++p)
#pragma unroll
            for (int k = 0; k < kDwrR; ++k) acc[p][k] = 0.0f;
#pragma unroll 1
        for (int j = 0; j < kDwrKS; ++j)
            dwr_taps<A0>(acc, xline + j * kDwrSL, img_step, s_w + j * dwr_klp(kDwrKL), s_bits[j]);
#pragma unroll
        for (int p = 0; p < kDwrP; ++p)
        {
            if (p >= images) break;
#pragma unroll
            for (int k = 0; k <= KMAX; ++k)
            {
                float* o = out + p * out_img_step + static_cast<long long>(A0 + k) * out_step;
                *o = accumulate ? *o + acc[p][k] : acc[p][k];
            }
        }
        dwr_strips<A0 + kDwrR>(out, out_step, out_img_step, images, xline, img_step, s_w, s_bits, accumulate);
    }
}
#endif

extern "C" __global__ void __launch_bounds__(SLAK_DWR_THREADS, 1) dwconv_strip_kernel(
    float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ wt, const float* __restrict__ mask,
    int n, int c, int h, int w, int kh, int kw, int flip, int accumulate)
{
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
    // A specialised module serves only its own shape (the launcher passes the sizes it was compiled for).
    SLAK_DEVICE_ASSERT(h == kDwrH && w == kDwrW && kh == kDwrKh && kw == kDwrKw);
#endif
    SLAK_DYNAMIC_SHARED(float, s_w);
    // The sizes: constants in a specialised module (its staging divides by constants), the arguments otherwise.
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
    constexpr int hh = kDwrH, ww = kDwrW, kkh = kDwrKh, kkw = kDwrKw;
#else
    const int hh = h, ww = w, kkh = kh, kkw = kw;
#endif
    const bool tall = kkh >= kkw;
    const int len = tall ? hh : ww, lines = tall ? ww : hh;
    const int kl = tall ? kkh : kkw, ks = tall ? kkw : kkh;
    const int klp = dwr_klp(kl), sl = dwr_line_stride(len);
    const int threads = static_cast<int>(blockDim.x), t = static_cast<int>(threadIdx.x);
    // The block's images: threads / lines thread groups of dwr_images_per_thread images each; thread group gt takes
    // images gt, gt + groups, ...
    const int groups = threads / lines, per_thread = dwr_images_per_thread(len), group = groups * per_thread;
    unsigned long long* s_bits = reinterpret_cast<unsigned long long*>(s_w + ks * klp);
    float* s_x = reinterpret_cast<float*>(s_bits + ((ks + 1) & ~1));   // 16-byte aligned
    const int ch = static_cast<int>(blockIdx.x);
    const long long img0 = static_cast<long long>(blockIdx.y) * group;
    const long long taps = static_cast<long long>(kkh) * kkw;

    // The weights (times the mask) and the live bits, in (short-axis tap, long-axis tap) order; flipped for dx.
    for (int u = t; u < ks * klp; u += threads)
    {
        const int j = u / klp, i = u - j * klp;
        float v = 0.0f;
        if (i < kl)
        {
            const int ti = tall ? i : j, tj = tall ? j : i;
            const long long src = ch * taps + (flip != 0 ? (kkh - 1 - ti) * kkw + (kkw - 1 - tj) : ti * kkw + tj);
            v = mask != nullptr ? wt[src] * mask[src] : wt[src];
        }
        s_w[u] = v;
    }
    dwr_live_bits(s_bits, mask, ch, kkh, kkw, flip != 0, t, threads);
    // The planes, long axis contiguous (zeros around them).
    const int plane_floats = dwr_plane_floats(lines, ks, len), hw = hh * ww;
    dwr_stage_planes(s_x, x, img0, n, c, ch, hh, ww, tall, ks, group, t, threads);

    const int gt = t / lines, q = t - gt * lines;
    if (gt >= groups || img0 + gt >= n) return;
    const long long images_left = (n - img0 - gt + groups - 1) / groups;
    const int mine = static_cast<int>(images_left < per_thread ? images_left : per_thread);
    float* yp = y + ((img0 + gt) * c + ch) * hw + (tall ? q : static_cast<long long>(q) * ww);
    const int out_step = tall ? ww : 1;
    const long long out_img_step = static_cast<long long>(groups) * c * hw;
    const float* xline = s_x + gt * plane_floats + q * sl;   // the line of short-axis tap 0 (q - pads + pads)
    const int img_step = groups * plane_floats;
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
    dwr_strips<0>(yp, out_step, out_img_step, mine, xline, img_step, s_w, s_bits, accumulate != 0);
#else
    const int pad = kl / 2;
    for (int p = 0; p < mine; ++p)
        for (int a = 0; a < len; ++a)
        {
            float acc = 0.0f;
            for (int j = 0; j < ks; ++j)
            {
                const unsigned long long b = s_bits[j];
                for (int i = 0; i < kl; ++i)
                {
                    const int src = a + i - pad;
                    if (((b >> i) & 1ull) != 0 && src >= 0 && src < len)
                        acc = fmaf(s_w[j * klp + i], xline[p * img_step + j * sl + src], acc);
                }
            }
            float* o = yp + p * out_img_step + static_cast<long long>(a) * out_step;
            *o = accumulate != 0 ? *o + acc : acc;
        }
#endif
}

// ---- The weight gradient: dwconv_strip_wgrad_kernel ----
// dw[c, i, j] = sum over images n and outputs (r, q) of x[n, c, r + i - kh/2, q + j - kw/2] * dy[n, c, r, q], over the
// live taps only (a masked tap's gradient is exactly 0: the contract of dwconv_fused_wgrad_kernel, which this kernel
// replaces at stages 1-2; without a mask every tap is live). Why (docs/gpu-kernels.md, "Weight gradient in
// compile-time strips"): the outer-product body of dwconv_fused_wgrad_kernel computes the masked taps of a kept 8-tap
// strip and the clipped edge steps of its 28-output lines, which holds stage 2 at ~36 % of the FMA floor.
// Grid and block as dwconv_strip_kernel's (x = channel, y = group of images; a thread owns one line along the long
// axis of each of its images) and the same staged x planes. A thread keeps its dy lines in registers (read once from
// global memory: consecutive lanes read consecutive columns of a tall branch). For each short-axis tap j the long-axis
// taps run fully unrolled as in the forward (x slides through registers, one 128-bit shared load per 4 taps): a live
// tap is exactly its in-image products, summed in two chains and stored to the block's reduction row of the tap (one
// float per thread), a masked tap is its test and a warp-uniform branch. After a barrier thread i (< kl) adds row i
// of a live tap in thread order (four fixed chains of 128-bit loads) and writes the block's partial sum of tap (i, j);
// column_sum_finalize_kernel (reduce.cu) adds the blocks' partials in block order, so the result is deterministic.
// Shared memory: the reduction rows (kl rows of dwr_line_stride(threads) floats: a quarter warp's 128-bit loads of
// 8 rows hit 8 bank groups), the live bits, the planes. Launcher: DwConvStripKernels.LaunchWeightGrad.

// Thread groups of a block (one thread per line each, DwConvStripKernels.ThreadGroups): as many as fit
// SLAK_DWR_THREADS threads, preferring a count whose threads fill whole warps.
__host__ __device__ constexpr int dwr_thread_groups(int lines)
{
    const int most = SLAK_DWR_THREADS / lines > 1 ? SLAK_DWR_THREADS / lines : 1;
    for (int g = most; g >= 1; --g)
        if (g * lines % 32 == 0) return g;
    return most;
}

#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
constexpr int kDwrLines = kDwrTall ? kDwrW : kDwrH;
constexpr int kDwrThreads = dwr_thread_groups(kDwrLines) * kDwrLines;
constexpr int kDwrRS = dwr_line_stride(kDwrThreads);    // floats of a reduction row

// One short-axis tap of the thread's whole lines (the weight-gradient plan takes lines of at most 64 outputs): every
// long-axis tap whose inputs reach the line, unrolled. d: the thread's dy lines; line: the input line of this
// short-axis tap in its first image (the p-th image's is p * img_step floats further); bits: its live taps; red: the
// thread's entry of reduction row 0 (row i is i * kDwrRS floats further).
__device__ __forceinline__ void dwr_wg_taps(const float (&d)[kDwrP][kDwrL], const float* __restrict__ line,
                                            int img_step, unsigned long long bits, float* __restrict__ red)
{
    constexpr int LO = kDwrPad - (kDwrL - 1) > 0 ? kDwrPad - (kDwrL - 1) : 0;           // first tap reaching the line
    constexpr int HI = kDwrL - 1 + kDwrPad < kDwrKL - 1 ? kDwrL - 1 + kDwrPad : kDwrKL - 1;
    const unsigned lo_bits = static_cast<unsigned>(bits), hi_bits = static_cast<unsigned>(bits >> 32);
    float4 v[kDwrP][kDwrNG];          // v[p][m]: inputs 4m..4m+3 of image p's line, loaded when a tap first needs them
#pragma unroll
    for (int i = LO; i <= HI; ++i)
    {
        // Inputs g of tap i: output k reads g = k + i - pad; those in the line are [glo, ghi].
        const int glo = i - kDwrPad > 0 ? i - kDwrPad : 0;
        const int ghi = kDwrL - 1 + i - kDwrPad < kDwrL - 1 ? kDwrL - 1 + i - kDwrPad : kDwrL - 1;
        const int prev = kDwrL - 2 + i - kDwrPad < kDwrL - 1 ? kDwrL - 2 + i - kDwrPad : kDwrL - 1;
#pragma unroll
        for (int m = 0; m < kDwrNG; ++m)
        {
            const bool first = i == LO ? (m >= glo / 4 && m <= ghi / 4) : (m == ghi / 4 && (prev < 0 || prev / 4 != m));
#pragma unroll
            for (int p = 0; p < kDwrP; ++p)
                if (first) v[p][m] = *reinterpret_cast<const float4*>(line + p * img_step + 4 * m);
        }
        const bool live = ((i < 32 ? lo_bits >> i : hi_bits >> (i - 32)) & 1u) != 0;
        if (live)
        {
            // Two independent chains (the two images, or even and odd outputs of one): half the dependent latency.
            float s[2] = {0.0f, 0.0f};
#pragma unroll
            for (int p = 0; p < kDwrP; ++p)
            {
#pragma unroll
                for (int k = 0; k < kDwrL; ++k)
                {
                    const int g = k + i - kDwrPad;
                    const int chain = kDwrP == 2 ? p : k & 1;
                    if (g >= 0 && g < kDwrL) s[chain] = fmaf(d[p][k], dwr_part(v[p][g / 4], g % 4), s[chain]);
                }
            }
            red[i * kDwrRS] = s[0] + s[1];
        }
    }
}
#endif

extern "C" __global__ void __launch_bounds__(SLAK_DWR_THREADS, 1) dwconv_strip_wgrad_kernel(
    float* __restrict__ part, const float* __restrict__ x, const float* __restrict__ dy, const float* __restrict__ mask,
    int n, int c, int h, int w, int kh, int kw)
{
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
    static_assert(kDwrL <= 64, "the weight-gradient plan takes lines of at most 64 outputs (one register strip)");
    SLAK_DEVICE_ASSERT(h == kDwrH && w == kDwrW && kh == kDwrKh && kw == kDwrKw && blockDim.x == kDwrThreads);
    constexpr int hh = kDwrH, ww = kDwrW, kkh = kDwrKh, kkw = kDwrKw;
#else
    const int hh = h, ww = w, kkh = kh, kkw = kw;
#endif
    SLAK_DYNAMIC_SHARED(float, s_red);
    const bool tall = kkh >= kkw;
    const int len = tall ? hh : ww, lines = tall ? ww : hh;
    const int kl = tall ? kkh : kkw, ks = tall ? kkw : kkh, sl = dwr_line_stride(len);
    const int threads = static_cast<int>(blockDim.x), t = static_cast<int>(threadIdx.x);
    const int groups = threads / lines, per_thread = dwr_images_per_thread(len), group = groups * per_thread;
    const int rs = dwr_line_stride(threads);
    unsigned long long* s_bits = reinterpret_cast<unsigned long long*>(s_red + kl * rs);
    float* s_x = reinterpret_cast<float*>(s_bits + ((ks + 1) & ~1));   // 16-byte aligned
    const int ch = static_cast<int>(blockIdx.x);
    const long long img0 = static_cast<long long>(blockIdx.y) * group;
    const long long hw = static_cast<long long>(hh) * ww, taps = static_cast<long long>(kkh) * kkw;

    // Reduction rows start at zero: entries of taps that do not reach a thread's line and of the row padding are
    // never written (nor, in the generic body, those of threads without an image).
    for (int u = t; u < kl * rs; u += threads) s_red[u] = 0.0f;
    dwr_live_bits(s_bits, mask, ch, kkh, kkw, false, t, threads);
    dwr_stage_planes(s_x, x, img0, n, c, ch, hh, ww, tall, ks, group, t, threads);

    const int gt = t / lines, q = t - gt * lines;   // the block is groups x lines threads
    const long long images_left = n - img0 - gt > 0 ? (n - img0 - gt + groups - 1) / groups : 0;
    const int mine = static_cast<int>(images_left < per_thread ? images_left : per_thread);
    const float* xline = s_x + gt * dwr_plane_floats(lines, ks, len) + q * sl;   // short-axis tap 0's line
    const int img_step = groups * dwr_plane_floats(lines, ks, len);
    const long long line_off = tall ? q : static_cast<long long>(q) * ww;
    const int along = tall ? ww : 1;                 // dy's stride along the long axis
    float* out = part + (static_cast<long long>(blockIdx.y) * c + ch) * taps;
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
    float d[kDwrP][kDwrL];
#pragma unroll
    for (int p = 0; p < kDwrP; ++p)
    {
        const float* dp = dy + (p < mine ? ((img0 + gt + p * groups) * c + ch) * hw + line_off : 0);
#pragma unroll
        for (int k = 0; k < kDwrL; ++k) d[p][k] = p < mine ? dp[k * along] : 0.0f;
    }
#endif
#pragma unroll 1
    for (int j = 0; j < ks; ++j)
    {
        const unsigned long long bits = s_bits[j];
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
        // (Threads without an image run too, on zero lines: a branch around the taps would make every tap's test
        // conditional, and kernel-model reads the taps' live-tap branches as the only ones inside this loop.)
        dwr_wg_taps(d, xline + j * sl, img_step, bits, s_red + t);
#else
        const int pad = kl / 2;
        for (int i = 0; i < kl && mine > 0; ++i)
        {
            if (((bits >> i) & 1ull) == 0) continue;
            float s = 0.0f;
            for (int p = 0; p < mine; ++p)
            {
                const float* dp = dy + ((img0 + gt + p * groups) * c + ch) * hw + line_off;
                for (int k = 0; k < len; ++k)
                {
                    const int g = k + i - pad;
                    if (g >= 0 && g < len) s = fmaf(dp[k * along], xline[p * img_step + j * sl + g], s);
                }
            }
            s_red[i * rs + t] = s;
        }
#endif
        __syncthreads();
        if (t < kl)
        {
            // Row t: this block's threads in order, four fixed chains.
            float sum = 0.0f;
            if (((bits >> t) & 1ull) != 0)
            {
                const float4* row = reinterpret_cast<const float4*>(s_red + t * rs);
                float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#if defined(SLAK_DWS_H) && defined(SLAK_DW_KH0)
#pragma unroll
                for (int u = 0; u < kDwrRS / 4; ++u)
#else
                for (int u = 0; u < rs / 4; ++u)
#endif
                {
                    const float4 v = row[u];
                    a.x += v.x;
                    a.y += v.y;
                    a.z += v.z;
                    a.w += v.w;
                }
                sum = (a.x + a.y) + (a.z + a.w);
            }
            out[tall ? t * kkw + j : j * kkw + t] = sum;
        }
        __syncthreads();
    }
}
