/* capi_smoke.c: smoke test of the SLaK C ABI (include/slak/slak.h) over the host emulator (libslak_kernels_emu.so)
 * and over the C# CPU engine (libslak_kernels_cpu.so, which needs no workspace: its *_workspace_size answer 0, so the
 * workspace checks below apply to the emulator only).
 * Parity of forward, input gradient and weight gradient (dense, masked, skip-masked; single branch and decomposed;
 * tiled and direct kernels) against a naive float64 reference, outputs poisoned with NaN before each call, and the
 * statuses of invalid arguments (which must leave the outputs untouched). Seed: argv[1] or the clock, printed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slak/slak.h"

static int g_failures = 0;
static unsigned g_seed;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            ++g_failures;                                                         \
            fprintf(stderr, "FAIL %s:%d (seed %u): ", __FILE__, __LINE__, g_seed); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
        }                                                                         \
    } while (0)

static float frand(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static float* alloc_random(size_t n)
{
    float* p = (float*)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; ++i) p[i] = frand();
    return p;
}

static float* alloc_mask(size_t n, double density)
{
    float* p = (float*)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; ++i) p[i] = ((double)rand() / RAND_MAX) < density ? 1.0f : 0.0f;
    return p;
}

static float* alloc_nan(size_t n)
{
    float* p = (float*)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; ++i) p[i] = NAN;
    return p;
}

/* out[n,c,r,q] (+)= sum_{i,j} in[n,c,r-ph+i,q-pw+j] * w'[c,i,j], w' = w*mask, rotated when flip. */
static void ref_conv(double* out, const float* in, const float* w, const float* mask, int n, int c, int h, int wd,
                     int kh, int kw, int flip)
{
    int ph = kh / 2, pw = kw / 2;
    for (int b = 0; b < n; ++b)
        for (int ch = 0; ch < c; ++ch)
            for (int r = 0; r < h; ++r)
                for (int q = 0; q < wd; ++q)
                {
                    double acc = 0;
                    for (int i = 0; i < kh; ++i)
                        for (int j = 0; j < kw; ++j)
                        {
                            int hi = r - ph + i, wi = q - pw + j;
                            if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
                            int ii = flip ? kh - 1 - i : i, jj = flip ? kw - 1 - j : j;
                            size_t k = ((size_t)ch * kh + ii) * kw + jj;
                            double wt = mask ? (double)w[k] * mask[k] : w[k];
                            acc += wt * in[(((size_t)b * c + ch) * h + hi) * wd + wi];
                        }
                    out[(((size_t)b * c + ch) * h + r) * wd + q] += acc;
                }
}

/* dw[c,i,j] = sum_{n,r,q} x[n,c,r-ph+i,q-pw+j] * dy[n,c,r,q] (0 where skip and mask == 0). */
static void ref_wgrad(double* dw, const float* x, const float* dy, const float* mask, int skip, int n, int c, int h,
                      int wd, int kh, int kw)
{
    int ph = kh / 2, pw = kw / 2;
    for (int ch = 0; ch < c; ++ch)
        for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j)
            {
                size_t k = ((size_t)ch * kh + i) * kw + j;
                double acc = 0;
                if (!(skip && mask[k] == 0.0f))
                    for (int b = 0; b < n; ++b)
                        for (int r = 0; r < h; ++r)
                            for (int q = 0; q < wd; ++q)
                            {
                                int hi = r - ph + i, wi = q - pw + j;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
                                size_t base = ((size_t)b * c + ch) * h;
                                acc += (double)x[(base + hi) * wd + wi] * dy[(base + r) * wd + q];
                            }
                dw[k] = acc;
            }
}

static void compare(const char* what, const float* got, const double* ref, size_t n)
{
    const double atol = 1e-5, rtol = 1e-4;
    for (size_t i = 0; i < n; ++i)
    {
        double err = fabs((double)got[i] - ref[i]);
        if (!(err <= atol + rtol * fabs(ref[i])))
        {
            CHECK(0, "%s: element %zu is %.8g, reference %.8g (atol %g + rtol %g)", what, i, got[i], ref[i], atol,
                  rtol);
            return;
        }
    }
}

static void check_ok(slak_status s, const char* what)
{
    CHECK(s == SLAK_STATUS_SUCCESS, "%s returned %s: %s", what, slak_status_string(s), slak_last_error());
}

/* One branch: forward, input gradient, weight gradient (dense, masked, skip-masked). */
static void test_single(int n, int c, int h, int wd, int kh, int kw)
{
    char tag[96];
    snprintf(tag, sizeof tag, "single n=%d c=%d h=%d w=%d k=%dx%d", n, c, h, wd, kh, kw);
    size_t numel = (size_t)n * c * h * wd, taps = (size_t)c * kh * kw;
    float *x = alloc_random(numel), *dy = alloc_random(numel), *w = alloc_random(taps), *m = alloc_mask(taps, 0.5);
    float *y = alloc_nan(numel), *dw = alloc_nan(taps);
    double* ref = (double*)calloc(numel > taps ? numel : taps, sizeof(double));
    slak_dwconv2d_params p;
    check_ok(slak_dwconv2d_params_init(&p, n, c, h, wd, kh, kw), "params_init");

    for (int masked = 0; masked <= 1; ++masked)
    {
        const float* mask = masked ? m : NULL;
        char what[160];
        snprintf(what, sizeof what, "%s fwd mask=%d", tag, masked);
        check_ok(slak_dwconv2d_fwd(&p, y, x, w, mask, NULL), what);
        memset(ref, 0, numel * sizeof(double));
        ref_conv(ref, x, w, mask, n, c, h, wd, kh, kw, 0);
        compare(what, y, ref, numel);

        for (size_t i = 0; i < numel; ++i) y[i] = NAN;
        snprintf(what, sizeof what, "%s bwd_data mask=%d", tag, masked);
        check_ok(slak_dwconv2d_bwd_data(&p, y, dy, w, mask, NULL), what);
        memset(ref, 0, numel * sizeof(double));
        ref_conv(ref, dy, w, mask, n, c, h, wd, kh, kw, 1);
        compare(what, y, ref, numel);
        for (size_t i = 0; i < numel; ++i) y[i] = NAN;
    }

    size_t ws_bytes = 0;
    check_ok(slak_dwconv2d_bwd_filter_workspace_size(&p, &ws_bytes), "workspace_size");
    void* ws = alloc_nan(ws_bytes / sizeof(float) + 1);
    for (int mode = 0; mode < 3; ++mode) /* dense, masked (not skipped), skip-masked */
    {
        char what[160];
        snprintf(what, sizeof what, "%s bwd_filter mode=%d", tag, mode);
        for (size_t i = 0; i < taps; ++i) dw[i] = NAN;
        check_ok(slak_dwconv2d_bwd_filter(&p, dw, x, dy, mode ? m : NULL, mode == 2, ws, ws_bytes, NULL), what);
        ref_wgrad(ref, x, dy, m, mode == 2, n, c, h, wd, kh, kw);
        compare(what, dw, ref, taps);
    }
    free(ws); free(x); free(dy); free(w); free(m); free(y); free(dw); free(ref);
}

/* Decomposed: 3 branches (long, wide, small) summed; masks on two of them. */
static void test_decomposed(int n, int c, int h, int wd, int kl, int ks)
{
    char tag[96];
    snprintf(tag, sizeof tag, "decomposed n=%d c=%d h=%d w=%d kl=%d ks=%d", n, c, h, wd, kl, ks);
    slak_decomposed_dwconv2d_params p;
    memset(&p, 0, sizeof p);
    p.n = n; p.c = c; p.h = h; p.w = wd;
    int64_t st[4] = {(int64_t)c * h * wd, (int64_t)h * wd, wd, 1};
    memcpy(p.x_stride, st, sizeof st); memcpy(p.y_stride, st, sizeof st);
    p.num_branches = 3;
    int kh[3] = {kl, ks, ks}, kw[3] = {ks, kl, ks};
    size_t numel = (size_t)n * c * h * wd;
    float *x = alloc_random(numel), *dy = alloc_random(numel), *y = alloc_nan(numel);
    const float* w[3]; const float* masks[3]; float* dw[3]; float* wb[3]; float* mb[3];
    for (int b = 0; b < 3; ++b)
    {
        p.kh[b] = kh[b]; p.kw[b] = kw[b];
        size_t taps = (size_t)c * kh[b] * kw[b];
        wb[b] = alloc_random(taps); mb[b] = alloc_mask(taps, 0.6); dw[b] = alloc_nan(taps);
        w[b] = wb[b]; masks[b] = b == 2 ? NULL : mb[b];
    }
    size_t ws_bytes = 0, wg_bytes = 0;
    check_ok(slak_decomposed_dwconv2d_workspace_size(&p, &ws_bytes), "decomposed workspace_size");
    /* 0 when the fused kernel runs, one output-sized buffer when the per-branch fallback sums through it. */
    CHECK(ws_bytes == 0 || ws_bytes == numel * sizeof(float), "decomposed workspace %zu bytes, expected 0 or %zu",
          ws_bytes, numel * sizeof(float));
    check_ok(slak_decomposed_dwconv2d_bwd_filter_workspace_size(&p, &wg_bytes), "decomposed wgrad workspace_size");
    size_t ws_max = ws_bytes > wg_bytes ? ws_bytes : wg_bytes;
    void* ws = alloc_nan(ws_max / sizeof(float) + 1);
    double* ref = (double*)calloc(numel, sizeof(double));
    char what[160];

    for (int flip = 0; flip <= 1; ++flip)
    {
        snprintf(what, sizeof what, "%s %s", tag, flip ? "bwd_data" : "fwd");
        for (size_t i = 0; i < numel; ++i) y[i] = NAN;
        slak_status s = flip ? slak_decomposed_dwconv2d_bwd_data(&p, y, dy, w, masks, ws, ws_bytes, NULL)
                             : slak_decomposed_dwconv2d_fwd(&p, y, x, w, masks, ws, ws_bytes, NULL);
        check_ok(s, what);
        memset(ref, 0, numel * sizeof(double));
        for (int b = 0; b < 3; ++b) ref_conv(ref, flip ? dy : x, w[b], masks[b], n, c, h, wd, kh[b], kw[b], flip);
        compare(what, y, ref, numel);
    }
    for (int skip = 0; skip <= 1; ++skip)
    {
        const float* all_masks[3] = {mb[0], mb[1], mb[2]};
        snprintf(what, sizeof what, "%s bwd_filter skip=%d", tag, skip);
        check_ok(slak_decomposed_dwconv2d_bwd_filter(&p, dw, x, dy, all_masks, skip, ws, wg_bytes, NULL), what);
        for (int b = 0; b < 3; ++b)
        {
            size_t taps = (size_t)c * kh[b] * kw[b];
            double* r = (double*)calloc(taps, sizeof(double));
            ref_wgrad(r, x, dy, mb[b], skip, n, c, h, wd, kh[b], kw[b]);
            compare(what, dw[b], r, taps);
            free(r);
        }
    }
    for (int b = 0; b < 3; ++b) { free(wb[b]); free(mb[b]); free(dw[b]); }
    free(x); free(dy); free(y); free(ws); free(ref);
}

/* More than 65535 (image, channel) planes: grid.z would overflow, so the forward is launched in groups of images. */
static void test_many_planes(void)
{
    const int n = 65537, c = 1, h = 1, wd = 2, k = 3;
    size_t numel = (size_t)n * c * h * wd;
    float *x = alloc_random(numel), *w = alloc_random((size_t)c * k * k), *y = alloc_nan(numel);
    double* ref = (double*)calloc(numel, sizeof(double));
    slak_dwconv2d_params p;
    slak_dwconv2d_params_init(&p, n, c, h, wd, k, k);
    check_ok(slak_dwconv2d_fwd(&p, y, x, w, NULL, NULL), "fwd with 65537 planes");
    ref_conv(ref, x, w, NULL, n, c, h, wd, k, k, 0);
    compare("fwd with 65537 planes", y, ref, numel);
    free(x); free(w); free(y); free(ref);
}

static int all_nan(const float* p, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (!isnan(p[i])) return 0;
    return 1;
}

#define EXPECT_STATUS(call, expected)                                                                      \
    do {                                                                                                   \
        slak_status s_ = (call);                                                                           \
        CHECK(s_ == (expected), "%s returned %s, expected %s", #call, slak_status_string(s_),              \
              slak_status_string(expected));                                                               \
        CHECK(strlen(slak_last_error()) > 0, "%s: slak_last_error() is empty after a failure", #call);    \
    } while (0)

static void test_bad_arguments(void)
{
    enum { N = 1, C = 2, H = 5, W = 6, K = 3 };
    size_t numel = (size_t)N * C * H * W, taps = (size_t)C * K * K;
    float *x = alloc_random(numel), *w = alloc_random(taps), *y = alloc_nan(numel), *dw = alloc_nan(taps);
    slak_dwconv2d_params p, q;
    slak_dwconv2d_params_init(&p, N, C, H, W, K, K);
    size_t ws_bytes = 0;
    check_ok(slak_dwconv2d_bwd_filter_workspace_size(&p, &ws_bytes), "workspace_size");
    const int uses_workspace = strcmp(slak_backend_name(), "cpu") != 0;
    CHECK(uses_workspace ? ws_bytes > 0 : ws_bytes == 0, "workspace size is %zu", ws_bytes);
    float* ws = alloc_nan(ws_bytes / sizeof(float) + 1);

    EXPECT_STATUS(slak_dwconv2d_fwd(NULL, y, x, w, NULL, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_fwd(&p, NULL, x, w, NULL, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_fwd(&p, y, NULL, w, NULL, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_fwd(&p, y, x, NULL, NULL, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_fwd(&p, x, x, w, NULL, NULL), SLAK_STATUS_INVALID_ARGUMENT);
    q = p; q.kh = 4;
    EXPECT_STATUS(slak_dwconv2d_fwd(&q, y, x, w, NULL, NULL), SLAK_STATUS_INVALID_ARGUMENT);
    q = p; q.kw = 0;
    EXPECT_STATUS(slak_dwconv2d_bwd_data(&q, y, x, w, NULL, NULL), SLAK_STATUS_INVALID_ARGUMENT);
    q = p; q.n = -1;
    EXPECT_STATUS(slak_dwconv2d_fwd(&q, y, x, w, NULL, NULL), SLAK_STATUS_INVALID_ARGUMENT);
    q = p; q.h = (int64_t)1 << 40;
    EXPECT_STATUS(slak_dwconv2d_fwd(&q, y, x, w, NULL, NULL), SLAK_STATUS_PROBLEM_TOO_LARGE);
    q = p; q.x_stride[3] = 2; /* a strided view */
    EXPECT_STATUS(slak_dwconv2d_fwd(&q, y, x, w, NULL, NULL), SLAK_STATUS_UNSUPPORTED_LAYOUT);
    q = p; q.y_stride[1] = 1; q.y_stride[3] = C; /* channels-last */
    EXPECT_STATUS(slak_dwconv2d_fwd(&q, y, x, w, NULL, NULL), SLAK_STATUS_UNSUPPORTED_LAYOUT);
    CHECK(all_nan(y, numel), "a rejected call wrote to y");

    size_t bytes = 0;
    EXPECT_STATUS(slak_dwconv2d_bwd_filter_workspace_size(&p, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_bwd_filter_workspace_size(NULL, &bytes), SLAK_STATUS_NULL_POINTER);
    if (uses_workspace)
    {
        EXPECT_STATUS(slak_dwconv2d_bwd_filter(&p, dw, x, x, NULL, 0, ws, ws_bytes - 4, NULL),
                      SLAK_STATUS_WORKSPACE_TOO_SMALL);
        EXPECT_STATUS(slak_dwconv2d_bwd_filter(&p, dw, x, x, NULL, 0, NULL, ws_bytes, NULL), SLAK_STATUS_NULL_POINTER);
    }
    EXPECT_STATUS(slak_dwconv2d_bwd_filter(&p, dw, x, x, NULL, 1, ws, ws_bytes, NULL), SLAK_STATUS_NULL_POINTER);
    EXPECT_STATUS(slak_dwconv2d_bwd_filter(&p, NULL, x, x, NULL, 0, ws, ws_bytes, NULL), SLAK_STATUS_NULL_POINTER);
    CHECK(all_nan(dw, taps), "a rejected call wrote to dw");

    slak_decomposed_dwconv2d_params d;
    memset(&d, 0, sizeof d);
    d.n = N; d.c = C; d.h = H; d.w = W;
    memcpy(d.x_stride, p.x_stride, sizeof d.x_stride); memcpy(d.y_stride, p.y_stride, sizeof d.y_stride);
    d.num_branches = 4;
    EXPECT_STATUS(slak_decomposed_dwconv2d_workspace_size(&d, &bytes), SLAK_STATUS_INVALID_ARGUMENT);
    d.num_branches = 2; d.kh[0] = 3; d.kw[0] = 3; d.kh[1] = 5; d.kw[1] = 2;
    EXPECT_STATUS(slak_decomposed_dwconv2d_workspace_size(&d, &bytes), SLAK_STATUS_INVALID_ARGUMENT);
    d.kh[1] = 151; d.kw[1] = 151; /* a fused tile over 48 KB: the per-branch path, which needs a workspace */
    check_ok(slak_decomposed_dwconv2d_workspace_size(&d, &bytes), "decomposed workspace_size");
    CHECK(bytes == (uses_workspace ? numel * sizeof(float) : 0), "per-branch decomposed workspace %zu bytes, expected %zu",
          bytes, uses_workspace ? numel * sizeof(float) : 0);
    const float* ws2[2] = {w, NULL};
    EXPECT_STATUS(slak_decomposed_dwconv2d_fwd(&d, y, x, ws2, NULL, ws, bytes, NULL), SLAK_STATUS_NULL_POINTER);
    const float* wv[2] = {w, w};
    if (uses_workspace)
        EXPECT_STATUS(slak_decomposed_dwconv2d_fwd(&d, y, x, wv, NULL, ws, bytes - 1, NULL),
                      SLAK_STATUS_WORKSPACE_TOO_SMALL);
    CHECK(all_nan(y, numel), "a rejected decomposed call wrote to y");

    /* Empty problems succeed without touching anything; an empty batch gives a zero weight gradient. */
    slak_dwconv2d_params e;
    slak_dwconv2d_params_init(&e, 0, C, H, W, K, K);
    check_ok(slak_dwconv2d_fwd(&e, NULL, NULL, w, NULL, NULL), "empty fwd");
    check_ok(slak_dwconv2d_bwd_filter_workspace_size(&e, &bytes), "empty workspace_size");
    check_ok(slak_dwconv2d_bwd_filter(&e, dw, NULL, NULL, NULL, 0, NULL, bytes, NULL), "empty bwd_filter");
    for (size_t i = 0; i < taps; ++i) CHECK(dw[i] == 0.0f, "empty-batch dw[%zu] = %g, expected 0", i, dw[i]);

    CHECK(strcmp(slak_status_string(SLAK_STATUS_SUCCESS), "SLAK_STATUS_SUCCESS") == 0, "status string");
    CHECK(strcmp(slak_status_string((slak_status)99), "unknown slak_status") == 0, "unknown status string");
    check_ok(slak_dwconv2d_fwd(&p, y, x, w, NULL, NULL), "fwd after failures");
    CHECK(slak_last_error()[0] == '\0', "slak_last_error() not cleared by a success: '%s'", slak_last_error());
    free(x); free(w); free(y); free(dw); free(ws);
}

int main(int argc, char** argv)
{
    g_seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : (unsigned)time(NULL);
    srand(g_seed);
    printf("slak C ABI smoke test: backend %s, ABI %d, seed %u\n", slak_backend_name(), slak_abi_version(), g_seed);
    CHECK(slak_abi_version() == SLAK_ABI_VERSION, "abi %d, header %d", slak_abi_version(), SLAK_ABI_VERSION);

    test_single(2, 3, 9, 11, 7, 3);    /* tiled forward, tiled weight gradient */
    test_single(1, 2, 40, 37, 1, 5);   /* more than one 32x32 tile, kh = 1 */
    test_single(2, 2, 6, 5, 13, 13);   /* filter larger than the image */
    test_single(1, 1, 4, 5, 85, 85);   /* direct forward (tile > 48 KB) and direct weight gradient */
    test_many_planes();
    test_decomposed(2, 3, 12, 10, 9, 3);     /* fused kernels */
    test_decomposed(1, 2, 6, 7, 151, 5);     /* fused tile over 48 KB: the per-branch fallback */
    test_bad_arguments();

    if (g_failures) { fprintf(stderr, "%d check(s) failed (seed %u)\n", g_failures, g_seed); return 1; }
    printf("all checks passed\n");
    return 0;
}
