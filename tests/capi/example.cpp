// example.cpp: the C++ example of docs/plug-in.md (kept compiling and passing as a ctest): one SLaK decomposed
// depthwise convolution (51x5 + 5x51 + 5x5, sparse long branches) forward and backward through the C ABI.
// With libslak_kernels_emu.so the buffers are host memory (as here); with libslak_kernels.so they would be
// cudaMalloc'ed device memory and `stream` a cudaStream_t.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "slak/slak.h"

#define SLAK_CHECK(call)                                                                                   \
    do {                                                                                                   \
        slak_status s_ = (call);                                                                           \
        if (s_ != SLAK_STATUS_SUCCESS) {                                                                   \
            std::fprintf(stderr, "%s: %s: %s\n", #call, slak_status_string(s_), slak_last_error());        \
            return 1;                                                                                      \
        }                                                                                                  \
    } while (0)

int main()
{
    const int64_t n = 2, c = 4, h = 14, w = 14;
    const int k = 51, s = 5; // SLaK stage-1 kernel and the small kernel
    slak_decomposed_dwconv2d_params p{};
    p.n = n; p.c = c; p.h = h; p.w = w;
    const int64_t strides[4] = {c * h * w, h * w, w, 1}; // packed NCHW (e.g. a contiguous torch tensor's strides)
    for (int d = 0; d < 4; ++d) p.x_stride[d] = p.y_stride[d] = strides[d];
    p.num_branches = 3;
    const int kh[3] = {k, s, s}, kw[3] = {s, k, s};
    for (int b = 0; b < 3; ++b) { p.kh[b] = kh[b]; p.kw[b] = kw[b]; }

    std::mt19937 rng(42);
    std::normal_distribution<float> normal;
    std::bernoulli_distribution keep(0.4); // 60% sparse long branches
    auto randn = [&](size_t count) { std::vector<float> v(count); for (auto& e : v) e = normal(rng); return v; };
    std::vector<float> x = randn(n * c * h * w), dy = randn(n * c * h * w), y(x.size()), dx(x.size());
    std::vector<std::vector<float>> wt, mask, dw;
    for (int b = 0; b < 3; ++b)
    {
        const size_t taps = size_t(c) * kh[b] * kw[b];
        wt.push_back(randn(taps));
        std::vector<float> m(taps, 1.0f);
        if (b < 2) for (auto& e : m) e = keep(rng) ? 1.0f : 0.0f;
        mask.push_back(m);
        dw.emplace_back(taps);
    }
    const float* w_ptr[3] = {wt[0].data(), wt[1].data(), wt[2].data()};
    const float* m_ptr[3] = {mask[0].data(), mask[1].data(), nullptr}; // small branch dense
    float* dw_ptr[3] = {dw[0].data(), dw[1].data(), dw[2].data()};

    // Workspaces: the caller allocates (no hidden allocation in the library); one buffer serves all three calls.
    size_t ws_conv = 0, ws_filter = 0;
    SLAK_CHECK(slak_decomposed_dwconv2d_workspace_size(&p, &ws_conv));
    SLAK_CHECK(slak_decomposed_dwconv2d_bwd_filter_workspace_size(&p, &ws_filter));
    std::vector<unsigned char> ws(std::max(ws_conv, ws_filter));
    void* stream = nullptr;

    SLAK_CHECK(slak_decomposed_dwconv2d_fwd(&p, y.data(), x.data(), w_ptr, m_ptr, ws.data(), ws.size(), stream));
    SLAK_CHECK(slak_decomposed_dwconv2d_bwd_data(&p, dx.data(), dy.data(), w_ptr, m_ptr, ws.data(), ws.size(), stream));
    // skip_masked needs every mask: pass the small branch's as all ones.
    const float* m_all[3] = {mask[0].data(), mask[1].data(), mask[2].data()};
    SLAK_CHECK(slak_decomposed_dwconv2d_bwd_filter(&p, dw_ptr, x.data(), dy.data(), m_all, /*skip_masked=*/1,
                                                   ws.data(), ws.size(), stream));

    // Spot check one output against the definition: y[0,0,7,7] = sum_b sum_ij x[0,0,7-kh/2+i,7-kw/2+j] * w*m.
    double ref = 0;
    for (int b = 0; b < 3; ++b)
        for (int i = 0; i < kh[b]; ++i)
            for (int j = 0; j < kw[b]; ++j)
            {
                const int r = 7 - kh[b] / 2 + i, q = 7 - kw[b] / 2 + j;
                if (r < 0 || r >= h || q < 0 || q >= w) continue;
                const size_t t = size_t(i) * kw[b] + j;
                ref += double(x[size_t(r) * w + q]) * wt[b][t] * mask[b][t];
            }
    const double got = y[7 * w + 7];
    std::printf("%s backend, ABI %d: y[0,0,7,7] = %.6f (reference %.6f), dw_long[0] = %.4f\n", slak_backend_name(),
                slak_abi_version(), got, ref, dw[0][0]);
    return std::abs(got - ref) <= 1e-4 * (1 + std::abs(ref)) ? 0 : 1;
}
