// dwconv_live.cu: one branch of SLaK's decomposed depthwise convolution over its live taps only (issue 20's third
// body beside dwconv_fused.cu's zero-weight and tap-list bodies), "same" zero padding, stride 1, NCHW, odd kernels.
// y[n, c, r, q] = sum over live taps (i, j) of w[c, i, j] * x[n, c, r + i - kh/2, q + j - kw/2]; with flip != 0 the
// kernel is flipped (w[c, kh-1-i, kw-1-j]), which makes the same launch the input gradient (dx from dy).
//
// Grid (N*C planes, tiles of 64 x 64 outputs), block 128 = 4 warps. Per block:
// 1. Warp 0 compacts the channel's live taps (mask != 0, or every tap without a mask) into a list in shared memory,
//    in a fixed order sorted by the long axis (rows for a tall or square kernel, columns for a wide one): one record a
//    tap, its weight (times the mask) and a precomputed shared-memory offset. It also records where each long-axis
//    index starts in the list, so a thread can take the sub-range of taps that reach the image for its outputs.
// 2. The input tile with its halo is staged four times, shifted by 0..3 columns (copy s holds column cc + s at cc):
//    a tap of column j points into copy j & 3, where its 8-column reads start 16-byte aligned, so every input read of
//    the hot loop is a 128-bit shared load whatever j is.
// 3. Each thread owns a 4 x 8 register tile of outputs: rows 4ty..4ty+3 and columns 4tx..4tx+3, 32+4tx..32+4tx+3
//    (a quarter warp reads 128 contiguous bytes, no bank conflicts). Per live tap: one 64-bit record load, eight
//    128-bit input loads, 32 FFMAs.
// Deterministic: each output is one thread's sum in list order. The launcher builds nothing and needs no workspace.
// Launcher: src/Slak.Cuda/Kernels/DwConvLiveKernels.cs (not used by any production launch yet; see docs/gpu-kernels.md).
#include "slak_common.cuh"

#define SLAK_DWL_THREADS 128 // the __launch_bounds__ below (a literal kernel-model reads)
constexpr int kDwlTileH = 64;   // output rows of a block tile (16 thread rows x 4)
constexpr int kDwlTileW = 64;   // output columns of a block tile (8 threads x 8)
constexpr int kDwlRows = 4;     // rows of a thread's register tile
constexpr int kDwlShifts = 4;   // column-shifted copies of the input tile

// The row stride of a staged copy: the tile's columns plus the halo, rounded up to 4 floats (16-byte rows).
__host__ __device__ inline int dwl_stride(int kw) { return (kDwlTileW + kw - 1 + 3) & ~3; }

extern "C" __global__ void __launch_bounds__(SLAK_DWL_THREADS) dwconv_live_kernel(
    float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ wt, const float* __restrict__ mask,
    int c, int h, int w, int kh, int kw, int flip, int tiles_w)
{
    SLAK_DYNAMIC_SHARED(float, s_in); // 16-byte aligned
    const int sh = kDwlTileH + kh - 1, sw = dwl_stride(kw), copy = sh * sw;
    const int taps = kh * kw;
    float2* s_list = reinterpret_cast<float2*>(s_in + kDwlShifts * copy);
    int* s_start = reinterpret_cast<int*>(s_list + taps);    // list index of each long-axis index, then the count
    const bool tall = kh >= kw;
    const int longk = tall ? kh : kw, shortk = tall ? kw : kh;

    const long long plane = blockIdx.x;
    const int ch = static_cast<int>(plane % c);
    const int r0 = static_cast<int>(blockIdx.y) / tiles_w * kDwlTileH;
    const int q0 = static_cast<int>(blockIdx.y) % tiles_w * kDwlTileW;
    const int ph = kh / 2, pw = kw / 2;
    const float* xp = x + plane * h * w;

    // 1. The live-tap list (warp 0, 32 taps per ballot; order: long axis outer, short axis inner).
    if (threadIdx.x < 32)
    {
        const int lane = static_cast<int>(threadIdx.x);
        const float* wc = wt + static_cast<long long>(ch) * taps;
        const float* mc = mask != nullptr ? mask + static_cast<long long>(ch) * taps : nullptr;
        int base = 0;
        for (int t0 = 0; t0 < taps; t0 += 32)
        {
            const int t = t0 + lane;
            bool live = false;
            float wv = 0.0f;
            int off = 0, outer = 0, inner = 0;
            if (t < taps)
            {
                outer = t / shortk;
                inner = t - outer * shortk;
                const int i = tall ? outer : inner, j = tall ? inner : outer;
                const int src = flip != 0 ? (kh - 1 - i) * kw + (kw - 1 - j) : i * kw + j;
                const float m = mc != nullptr ? mc[src] : 1.0f;
                live = m != 0.0f;
                wv = wc[src] * m;
                const int shift = j & (kDwlShifts - 1);
                off = shift * copy + i * sw + (j - shift);
            }
            const unsigned ballot = __ballot_sync(0xffffffffu, live);
            const int before = base + __popc(ballot & ((1u << lane) - 1u));
            if (t < taps && inner == 0) s_start[outer] = before;
            if (live) s_list[before] = make_float2(wv, __int_as_float(off));
            base += __popc(ballot);
        }
        if (lane == 0) s_start[longk] = base;
    }

    // 2. The four column-shifted copies of the input tile (zeros outside the image): warps over rows, lanes over
    //    columns; each input read once feeds the (up to) four copies that hold it.
    {
        const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
        for (int rr = warp; rr < sh; rr += SLAK_DWL_THREADS / 32)
        {
            const int gr = r0 - ph + rr;
            const bool row_in = gr >= 0 && gr < h;
            for (int cc = lane; cc < sw + kDwlShifts - 1; cc += 32)
            {
                const int gc = q0 - pw + cc;
                const float v = row_in && gc >= 0 && gc < w ? xp[static_cast<long long>(gr) * w + gc] : 0.0f;
#pragma unroll
                for (int shift = 0; shift < kDwlShifts; ++shift)
                {
                    const int d = cc - shift;
                    if (d >= 0 && d < sw) s_in[shift * copy + rr * sw + d] = v;
                }
            }
        }
    }
    __syncthreads();

    // 3. The register tile over the live taps that reach the image for this thread's outputs.
    const int tx = static_cast<int>(threadIdx.x) & 7, ty = static_cast<int>(threadIdx.x) >> 3;
    const int tr = ty * kDwlRows, tc = tx * 4;
    const int orow = r0 + tr;
    if (orow >= h || q0 + tc >= w) return;
    // Long-axis taps whose input index lies in the image for some output of the thread: span outputs from pos.
    const int pos = tall ? orow : q0 + tc, span = tall ? kDwlRows : 32 + 4, extent = tall ? h : w;
    const int pad = tall ? ph : pw;
    const int lo = max(0, pad - pos - span + 1), hi = min(longk - 1, extent - 1 + pad - pos);
    const int begin = lo <= hi ? s_start[lo] : 0, end = lo <= hi ? s_start[hi + 1] : 0;

    float acc[kDwlRows][8];
#pragma unroll
    for (int r = 0; r < kDwlRows; ++r)
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[r][k] = 0.0f;
    const float* sb = s_in + tr * sw + tc;
#pragma unroll 2
    for (int k = begin; k < end; ++k)
    {
        const float2 rec = s_list[k];
        const float* p = sb + __float_as_int(rec.y);
#pragma unroll
        for (int r = 0; r < kDwlRows; ++r)
        {
            const float4 a = *reinterpret_cast<const float4*>(p + r * sw);
            const float4 b = *reinterpret_cast<const float4*>(p + r * sw + 32);
            acc[r][0] = fmaf(rec.x, a.x, acc[r][0]);
            acc[r][1] = fmaf(rec.x, a.y, acc[r][1]);
            acc[r][2] = fmaf(rec.x, a.z, acc[r][2]);
            acc[r][3] = fmaf(rec.x, a.w, acc[r][3]);
            acc[r][4] = fmaf(rec.x, b.x, acc[r][4]);
            acc[r][5] = fmaf(rec.x, b.y, acc[r][5]);
            acc[r][6] = fmaf(rec.x, b.z, acc[r][6]);
            acc[r][7] = fmaf(rec.x, b.w, acc[r][7]);
        }
    }

    float* yp = y + plane * h * w;
#pragma unroll
    for (int r = 0; r < kDwlRows; ++r)
    {
        const int gr = orow + r;
        if (gr >= h) break;
#pragma unroll
        for (int k = 0; k < 8; ++k)
        {
            const int gc = q0 + tc + (k < 4 ? k : 28 + k);
            if (gc < w) yp[static_cast<long long>(gr) * w + gc] = acc[r][k];
        }
    }
}
