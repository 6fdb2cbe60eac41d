// capi_cuda_smoke.cpp: the GPU build of the C ABI (libslak_kernels.so) on a real device: SLaK-shaped decomposed
// convolution (31x5 + 5x31 sparse + 5x5 dense) forward, input gradient and sparse-aware weight gradient on a
// non-default stream, compared with a naive float64 reference. Built only with nvcc (SLAK_ENABLE_CUDA); exits 77
// (ctest: skipped) when no CUDA device is visible. Seed: argv[1] or the clock, printed.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "slak/slak.h"

namespace
{
int g_failures = 0;

#define CUDA_OK(call)                                                                                     \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_)); return 1; } \
    } while (0)
#define SLAK_OK(call)                                                                                     \
    do {                                                                                                  \
        slak_status s_ = (call);                                                                          \
        if (s_ != SLAK_STATUS_SUCCESS) {                                                                  \
            std::fprintf(stderr, "%s: %s: %s\n", #call, slak_status_string(s_), slak_last_error());      \
            return 1;                                                                                     \
        }                                                                                                 \
    } while (0)

void compare(const char* what, const std::vector<float>& got, const std::vector<double>& ref, unsigned seed)
{
    double scale = 0;
    for (double r : ref) scale = std::max(scale, std::abs(r));
    for (size_t i = 0; i < got.size(); ++i)
        if (!(std::abs(got[i] - ref[i]) <= 1e-5 * scale + 1e-4 * std::abs(ref[i])))
        {
            std::fprintf(stderr, "FAIL %s (seed %u): element %zu is %.8g, reference %.8g\n", what, seed, i, got[i],
                         ref[i]);
            ++g_failures;
            return;
        }
}
}  // namespace

int main(int argc, char** argv)
{
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    {
        std::printf("no CUDA device: skipped\n");
        return 77;
    }
    const unsigned seed = argc > 1 ? unsigned(std::strtoul(argv[1], nullptr, 10)) : unsigned(std::time(nullptr));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::bernoulli_distribution keep(0.5);
    const int n = 2, c = 6, h = 37, w = 45, k = 31, s = 5;
    const int kh[3] = {k, s, s}, kw[3] = {s, k, s};
    slak_decomposed_dwconv2d_params p{};
    p.n = n; p.c = c; p.h = h; p.w = w; p.num_branches = 3;
    const int64_t st[4] = {int64_t(c) * h * w, int64_t(h) * w, w, 1};
    for (int d = 0; d < 4; ++d) p.x_stride[d] = p.y_stride[d] = st[d];
    for (int b = 0; b < 3; ++b) { p.kh[b] = kh[b]; p.kw[b] = kw[b]; }

    const size_t numel = size_t(n) * c * h * w;
    std::vector<float> x(numel), dy(numel);
    for (auto& v : x) v = normal(rng);
    for (auto& v : dy) v = normal(rng);
    std::vector<std::vector<float>> wt(3), mk(3);
    for (int b = 0; b < 3; ++b)
    {
        wt[b].resize(size_t(c) * kh[b] * kw[b]);
        mk[b].resize(wt[b].size());
        for (auto& v : wt[b]) v = normal(rng);
        for (auto& v : mk[b]) v = (b == 2 || keep(rng)) ? 1.0f : 0.0f;
    }

    // Device buffers.
    float *d_x, *d_dy, *d_y, *d_w[3], *d_m[3], *d_dw[3];
    CUDA_OK(cudaMalloc(&d_x, numel * 4));
    CUDA_OK(cudaMalloc(&d_dy, numel * 4));
    CUDA_OK(cudaMalloc(&d_y, numel * 4));
    for (int b = 0; b < 3; ++b)
    {
        CUDA_OK(cudaMalloc(&d_w[b], wt[b].size() * 4));
        CUDA_OK(cudaMalloc(&d_m[b], wt[b].size() * 4));
        CUDA_OK(cudaMalloc(&d_dw[b], wt[b].size() * 4));
        CUDA_OK(cudaMemcpy(d_w[b], wt[b].data(), wt[b].size() * 4, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(d_m[b], mk[b].data(), wt[b].size() * 4, cudaMemcpyHostToDevice));
    }
    CUDA_OK(cudaMemcpy(d_x, x.data(), numel * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_dy, dy.data(), numel * 4, cudaMemcpyHostToDevice));
    size_t ws1 = 0, ws2 = 0;
    SLAK_OK(slak_decomposed_dwconv2d_workspace_size(&p, &ws1));
    SLAK_OK(slak_decomposed_dwconv2d_bwd_filter_workspace_size(&p, &ws2));
    void* d_ws;
    const size_t ws = std::max(ws1, ws2);
    CUDA_OK(cudaMalloc(&d_ws, ws));
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const float* cw[3] = {d_w[0], d_w[1], d_w[2]};
    const float* cm[3] = {d_m[0], d_m[1], d_m[2]};

    std::vector<float> got(numel);
    for (int flip = 0; flip <= 1; ++flip)
    {
        CUDA_OK(cudaMemsetAsync(d_y, 0xFF, numel * 4, stream)); // NaN poison
        if (flip) SLAK_OK(slak_decomposed_dwconv2d_bwd_data(&p, d_y, d_dy, cw, cm, d_ws, ws, stream));
        else SLAK_OK(slak_decomposed_dwconv2d_fwd(&p, d_y, d_x, cw, cm, d_ws, ws, stream));
        CUDA_OK(cudaMemcpyAsync(got.data(), d_y, numel * 4, cudaMemcpyDeviceToHost, stream));
        CUDA_OK(cudaStreamSynchronize(stream));
        const std::vector<float>& in = flip ? dy : x;
        std::vector<double> ref(numel, 0.0);
        for (int b = 0; b < 3; ++b)
            for (int img = 0; img < n * c; ++img)
                for (int r = 0; r < h; ++r)
                    for (int q = 0; q < w; ++q)
                        for (int i = 0; i < kh[b]; ++i)
                            for (int j = 0; j < kw[b]; ++j)
                            {
                                const int hi = r - kh[b] / 2 + i, wi = q - kw[b] / 2 + j;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                                const int ii = flip ? kh[b] - 1 - i : i, jj = flip ? kw[b] - 1 - j : j;
                                const size_t t = (size_t(img % c) * kh[b] + ii) * kw[b] + jj;
                                ref[(size_t(img) * h + r) * w + q] +=
                                    double(in[(size_t(img) * h + hi) * w + wi]) * wt[b][t] * mk[b][t];
                            }
        compare(flip ? "bwd_data" : "fwd", got, ref, seed);
    }
    float* dws[3] = {d_dw[0], d_dw[1], d_dw[2]};
    SLAK_OK(slak_decomposed_dwconv2d_bwd_filter(&p, dws, d_x, d_dy, cm, 1, d_ws, ws, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    for (int b = 0; b < 3; ++b)
    {
        std::vector<float> g(wt[b].size());
        CUDA_OK(cudaMemcpy(g.data(), d_dw[b], g.size() * 4, cudaMemcpyDeviceToHost));
        std::vector<double> ref(g.size(), 0.0);
        for (int ch = 0; ch < c; ++ch)
            for (int i = 0; i < kh[b]; ++i)
                for (int j = 0; j < kw[b]; ++j)
                {
                    const size_t t = (size_t(ch) * kh[b] + i) * kw[b] + j;
                    if (mk[b][t] == 0.0f) continue;
                    double acc = 0;
                    for (int img = 0; img < n; ++img)
                        for (int r = 0; r < h; ++r)
                            for (int q = 0; q < w; ++q)
                            {
                                const int hi = r - kh[b] / 2 + i, wi = q - kw[b] / 2 + j;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                                const size_t base = (size_t(img) * c + ch) * h;
                                acc += double(x[(base + hi) * w + wi]) * dy[(base + r) * w + q];
                            }
                    ref[t] = acc;
                }
        compare(b == 0 ? "bwd_filter long" : b == 1 ? "bwd_filter wide" : "bwd_filter small", g, ref, seed);
    }
    std::printf("%s backend on a GPU (seed %u): %s\n", slak_backend_name(), seed,
                g_failures ? "FAILED" : "all checks passed");
    return g_failures ? 1 : 0;
}
