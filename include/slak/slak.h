/* slak.h: the C ABI of the SLaK kernel library (libslak_kernels.so on the GPU, libslak_kernels_emu.so on the host).
 *
 * Depthwise "same" convolution, stride 1, float32, channels-first (N, C, H, W), odd rectangular filters (SLaK's
 * 51x5 + 5x51 + 5x5 branches and any other odd kh x kw), with an optional 0/1 weight mask per filter: forward, input
 * gradient and weight gradient, one branch at a time or decomposed (the sum of up to SLAK_MAX_BRANCHES branches).
 *
 * Conventions (every function):
 *   - Pointers are device pointers for libslak_kernels.so and host pointers for libslak_kernels_emu.so (the same
 *     kernels run by the CUDA emulator on the calling thread).
 *   - `stream` is a cudaStream_t (NULL = the legacy default stream); ignored by the emulated build, which runs
 *     synchronously. No function synchronises the device or allocates memory: temporaries live in a workspace the
 *     caller provides, sized by the matching *_workspace_size query.
 *   - Filters and masks are contiguous (C, 1, kh, kw) (the PyTorch depthwise weight layout). Activations are
 *     described by sizes and strides in elements; the kernels need the packed NCHW layout (strides of size-1
 *     dimensions are ignored, as in torch's is_contiguous): any other layout returns SLAK_STATUS_UNSUPPORTED_LAYOUT.
 *   - Outputs must not overlap inputs or the workspace (an output equal to its input is rejected; partial overlaps
 *     are not detected).
 *   - Every function returns a slak_status; on failure slak_last_error() (thread-local) names the argument and the
 *     values. Invalid arguments never crash; nothing is written on a failed validation.
 */
#ifndef SLAK_SLAK_H
#define SLAK_SLAK_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(SLAK_BUILDING_LIBRARY)
#    define SLAK_API __declspec(dllexport)
#  else
#    define SLAK_API __declspec(dllimport)
#  endif
#else
#  define SLAK_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this ABI: bumped whenever a struct or signature below changes. Compare with slak_abi_version(). */
#define SLAK_ABI_VERSION 1
/** Branches of a decomposed convolution (SLaK: long kh x k_small, wide k_small x kw, small k_small x k_small). */
#define SLAK_MAX_BRANCHES 3

typedef enum slak_status {
    SLAK_STATUS_SUCCESS = 0,
    SLAK_STATUS_NULL_POINTER = 1,          /* a required pointer is NULL */
    SLAK_STATUS_INVALID_ARGUMENT = 2,      /* a size is negative, a filter extent is even, ... */
    SLAK_STATUS_UNSUPPORTED_LAYOUT = 3,    /* strides other than packed NCHW */
    SLAK_STATUS_WORKSPACE_TOO_SMALL = 4,   /* workspace_bytes below the *_workspace_size answer */
    SLAK_STATUS_PROBLEM_TOO_LARGE = 5,     /* a size or product beyond what the kernels index (see slak_last_error) */
    SLAK_STATUS_LAUNCH_FAILED = 6,         /* the CUDA runtime (or the emulator) refused or failed a launch */
    SLAK_STATUS_INTERNAL_ERROR = 7
} slak_status;

/** One convolution branch's geometry. x describes the input-side tensor (x for the forward and the weight gradient,
 *  dx for the input gradient), y the output-side tensor (y for the forward, dy for both gradients). Both have sizes
 *  (n, c, h, w); strides are in elements, in the order (N, C, H, W). */
typedef struct slak_dwconv2d_params {
    int64_t n, c, h, w;
    int64_t x_stride[4];
    int64_t y_stride[4];
    int32_t kh, kw; /* odd, >= 1 */
} slak_dwconv2d_params;

/** A decomposed convolution: y = sum over branches b of dwconv(x, w[b] * mask[b]). */
typedef struct slak_decomposed_dwconv2d_params {
    int64_t n, c, h, w;
    int64_t x_stride[4];
    int64_t y_stride[4];
    int32_t num_branches; /* 1 .. SLAK_MAX_BRANCHES */
    int32_t kh[SLAK_MAX_BRANCHES];
    int32_t kw[SLAK_MAX_BRANCHES];
} slak_decomposed_dwconv2d_params;

/** SLAK_ABI_VERSION of the loaded library. */
SLAK_API int slak_abi_version(void);
/** "emulator" or "cuda": which build of the ABI this library is. */
SLAK_API const char* slak_backend_name(void);
/** Static name of a status ("SLAK_STATUS_SUCCESS", ...; "unknown slak_status" for other values). */
SLAK_API const char* slak_status_string(slak_status status);
/** Message of the last failed call on this thread ("" after a success). Valid until the next call on this thread. */
SLAK_API const char* slak_last_error(void);

/** Fills p->x_stride and p->y_stride with the packed NCHW strides of its sizes (a convenience for C callers). */
SLAK_API slak_status slak_dwconv2d_params_init(slak_dwconv2d_params* p, int64_t n, int64_t c, int64_t h, int64_t w,
                                               int32_t kh, int32_t kw);

/* ---- one branch (the decomposed functions below with num_branches = 1: the same kernels and workspace sizes) ---- */

/** y = dwconv(x, w * mask); mask may be NULL (dense). */
SLAK_API slak_status slak_dwconv2d_fwd(const slak_dwconv2d_params* p, float* y, const float* x, const float* w,
                                       const float* mask, void* stream);
/** dx = input gradient for dy (the convolution with the filter rotated by 180 degrees); dx is overwritten. */
SLAK_API slak_status slak_dwconv2d_bwd_data(const slak_dwconv2d_params* p, float* dx, const float* dy,
                                            const float* w, const float* mask, void* stream);
/** Bytes of workspace slak_dwconv2d_bwd_filter needs for these sizes. */
SLAK_API slak_status slak_dwconv2d_bwd_filter_workspace_size(const slak_dwconv2d_params* p, size_t* bytes);
/** dw = weight gradient, (C, 1, kh, kw), overwritten. It is the gradient with respect to the effective filter
 *  w * mask, not yet multiplied by the mask; with skip_masked != 0 (mask required) taps whose mask is 0 are not
 *  computed and are written as 0 (the sparse-aware path: cost proportional to the density). */
SLAK_API slak_status slak_dwconv2d_bwd_filter(const slak_dwconv2d_params* p, float* dw, const float* x,
                                              const float* dy, const float* mask, int skip_masked, void* workspace,
                                              size_t workspace_bytes, void* stream);

/* ---- decomposed: several branches summed ---- */
/* w, masks and dw are arrays of num_branches pointers; masks itself or any of its entries may be NULL (dense). */

/** Bytes of workspace the decomposed forward and input gradient need (0 when the fused kernel runs or for one
 * branch; one output-sized buffer when the per-branch fallback sums through it). */
SLAK_API slak_status slak_decomposed_dwconv2d_workspace_size(const slak_decomposed_dwconv2d_params* p,
                                                             size_t* bytes);
SLAK_API slak_status slak_decomposed_dwconv2d_fwd(const slak_decomposed_dwconv2d_params* p, float* y,
                                                  const float* x, const float* const* w, const float* const* masks,
                                                  void* workspace, size_t workspace_bytes, void* stream);
SLAK_API slak_status slak_decomposed_dwconv2d_bwd_data(const slak_decomposed_dwconv2d_params* p, float* dx,
                                                       const float* dy, const float* const* w,
                                                       const float* const* masks, void* workspace,
                                                       size_t workspace_bytes, void* stream);
/** Bytes of workspace the decomposed weight gradient needs (the fused kernel's partials of all branches, or the
 * largest branch's when the per-branch fallback runs them in turn). */
SLAK_API slak_status slak_decomposed_dwconv2d_bwd_filter_workspace_size(const slak_decomposed_dwconv2d_params* p,
                                                                        size_t* bytes);
SLAK_API slak_status slak_decomposed_dwconv2d_bwd_filter(const slak_decomposed_dwconv2d_params* p,
                                                         float* const* dw, const float* x, const float* dy,
                                                         const float* const* masks, int skip_masked,
                                                         void* workspace, size_t workspace_bytes, void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLAK_SLAK_H */
