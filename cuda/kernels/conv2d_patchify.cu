// conv2d_patchify.cu: the re-layout kernels of the patchify path of SLaK's stem (4x4 stride 4) and downsampling (2x2
// stride 2) convolutions. When the kernel equals the stride and there is no padding, every output pixel reads its own
// s x s patch of every input channel (the patches are disjoint), so the convolution is a GEMM on re-laid-out input:
//     P[k, n*L + p] = x[n, ci, r*s + i, q*s + j],  k = (ci*s + i)*s + j,  p = r*Wo + q,  L = Ho*Wo,
// a (K, N*L) row-major matrix with K = Cin*s*s; the weight (Cout, Cin, s, s) is already the (Cout, K) matrix.
//     forward        y_n = W' · P[:, n*L : (n+1)*L]  (one strided-batched GEMM over the images, written NCHW)
//     weight grad    dW  = dY^T-as-(Cout, N*L) · P^T (one GEMM; dY permuted to (Cout, N, L) first)
//     input grad     dP[:, n*L : (n+1)*L] = W^T · dy_n (strided-batched), then un-patchify (each dx element once)
// With a bias, P gets one more row of ones and W' = [W | bias] one more column, so the GEMM adds the bias.
// Launchers: src/Slak.Cuda/Kernels/Conv2dPatchifyKernels.cs; the path and its choice: docs/gpu-kernels.md.
#include "slak_common.cuh"

// P[(ci*s + i)*s + j, n*L + r*out_w + q] = x[n, ci, r*s + i, q*s + j] for j in [0, s); with bias_row, also
// P[cin*s*s, n*L + r*out_w + q] = 1 (written by the (ci, i) = (0, 0) thread of each output pixel).
// One thread per (n, ci, i, r, q): consecutive threads take consecutive q, so every store of a warp is one
// contiguous run of a P row (coalesced), and the s loads of a thread are s neighbours of one x row (the warp's
// loads of the s iterations together cover a contiguous span of 32*s floats).
extern "C" __global__ void __launch_bounds__(256) patchify_kernel(
    float* __restrict__ p, const float* __restrict__ x, int n, int cin, int h, int w, int s, int out_h, int out_w,
    int bias_row)
{
    const long long plane = static_cast<long long>(out_h) * out_w;
    const long long cols = n * plane;
    const long long total = static_cast<long long>(n) * cin * s * plane;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int q = static_cast<int>(o % out_w);
        long long t = o / out_w;
        const int r = static_cast<int>(t % out_h);
        t /= out_h;
        const int i = static_cast<int>(t % s);
        t /= s;
        const int ci = static_cast<int>(t % cin);
        const long long img = t / cin;
        const long long col = img * plane + static_cast<long long>(r) * out_w + q;
        const float* xr = x + ((img * cin + ci) * h + (static_cast<long long>(r) * s + i)) * w
                        + static_cast<long long>(q) * s;
        float* pr = p + (static_cast<long long>(ci * s + i) * s) * cols + col;
        for (int j = 0; j < s; ++j) pr[j * cols] = xr[j];
        if (bias_row != 0 && ci == 0 && i == 0) p[static_cast<long long>(cin) * s * s * cols + col] = 1.0f;
    }
}

// dx[n, ci, hi, wi] = dP[(ci*s + hi % s)*s + wi % s, n*L + (hi / s)*out_w + wi / s] inside the patched area,
// 0 in the rows and columns past out_h*s, out_w*s (no output reads them). One thread per dx element: coalesced
// stores; the loads of a warp cover s rows of dP, each in a contiguous run.
extern "C" __global__ void __launch_bounds__(256) unpatchify_kernel(
    float* __restrict__ dx, const float* __restrict__ dp, int n, int cin, int h, int w, int s, int out_h, int out_w)
{
    const long long plane = static_cast<long long>(out_h) * out_w;
    const long long cols = n * plane;
    const long long total = static_cast<long long>(n) * cin * h * w;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int wi = static_cast<int>(o % w);
        long long t = o / w;
        const int hi = static_cast<int>(t % h);
        t /= h;
        const int ci = static_cast<int>(t % cin);
        const long long img = t / cin;
        const int r = hi / s, q = wi / s;
        float v = 0.0f;
        if (r < out_h && q < out_w)
        {
            const int k = (ci * s + (hi - r * s)) * s + (wi - q * s);
            v = dp[static_cast<long long>(k) * cols + img * plane + static_cast<long long>(r) * out_w + q];
        }
        dx[o] = v;
    }
}

// wb[co, kk] = w[co, kk] for kk < k, wb[co, k] = bias[co]: the (Cout, K + 1) weight whose last column meets the
// ones row of P, so that the forward GEMM adds the bias.
extern "C" __global__ void __launch_bounds__(256) patchify_weight_bias_kernel(
    float* __restrict__ wb, const float* __restrict__ w, const float* __restrict__ bias, int cout, int k)
{
    const long long total = static_cast<long long>(cout) * (k + 1);
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const long long co = o / (k + 1);
        const int kk = static_cast<int>(o - co * (k + 1));
        wb[o] = kk < k ? w[co * k + kk] : bias[co];
    }
}
