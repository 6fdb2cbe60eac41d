// A backend with kernels that really read and write 16-bit bf16 buffers (the CUDA backend: the bf16 instantiations of
// dwconv_fused.cu and dwconv_small.cu, GEMMs with bf16 operands through cublasGemmEx) and that holds stored
// activations as 16-bit blocks. Bf16Backend calls these in place of rounding around the float32 kernels where they
// apply; the numbers are those of the rounding path (same rounding points: operands rounded to bf16, float32
// accumulation, stored activations rounded to bf16), see docs/mixed-precision.md.
namespace Slak.Backends;

/// <summary>Operations a backend runs with real bf16 storage; each returns false (and does nothing) where it has no
/// bf16 path for the call, and the caller then runs the rounding path.</summary>
internal interface IBf16KernelBackend
{
    /// <summary>Stores the activation <paramref name="y"/> as bf16: its values rounded to nearest even and, where it
    /// owns its whole storage, held as 16-bit values (half the bytes) until a float32 kernel writes it.</summary>
    void StoreBf16(Tensor y);

    /// <summary>True when <paramref name="t"/>'s storage is held as 16-bit bf16 values (a float32 kernel reading it
    /// directly would widen it back for good: readers that only read take a widened copy instead).</summary>
    bool HoldsBf16(Tensor t);

    /// <summary>ys[b] = round_bf16(depthwise conv of round_bf16(x) with round_bf16(weights[b]) * masks[b]), float32
    /// accumulation: <see cref="IBackend.DecomposedDwConvForward"/> under bf16.</summary>
    bool TryDecomposedDwConvForwardBf16(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                        IReadOnlyList<Tensor> ys);

    /// <summary>y = round_bf16(sum over branches of the same convolutions):
    /// <see cref="IBackend.DecomposedDwConvForwardSum"/> under bf16.</summary>
    bool TryDecomposedDwConvForwardSumBf16(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor y);

    /// <summary>c = alpha * op(round_bf16(a)) * op(round_bf16(b)) + beta * c in float32: <see cref="IBackend.Gemm"/>
    /// under bf16.</summary>
    bool TryGemmBf16(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /// <summary>y = round_bf16(x) · round_bf16(w)^T + bias in float32 (the GEMM with bf16 operands, the bias added in
    /// float32 after it, unrounded): <see cref="IBackend.LinearBias"/> under bf16, y not yet stored (the caller
    /// stores it).</summary>
    bool TryLinearBiasBf16(Tensor x, Tensor w, Tensor bias, Tensor y);

    /// <summary>pre = the same as <see cref="TryLinearBiasBf16"/>, y = GELU(pre), both float32 and not yet stored:
    /// <see cref="IBackend.LinearBiasGelu"/> under bf16.</summary>
    bool TryLinearBiasGeluBf16(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y);

    /// <summary><see cref="IBackend.LinearBackwardDataGelu"/> under bf16: its GEMM round_bf16(dy) · round_bf16(w) with
    /// bf16 operands, the GELU derivative at <paramref name="pre"/> (float32: the caller widens a held block) and the
    /// bias gradient in float32.</summary>
    bool TryLinearBackwardDataGeluBf16(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias);

    /// <summary>y = conv(round_bf16(x), round_bf16(w)) + bias (x float32: the caller widens a held block; bias float32,
    /// unrounded, added after the GEMM), float32 accumulation and output (the caller stores y):
    /// <see cref="IBackend.Conv2dForward"/> under bf16; false (nothing done) where no GEMM with bf16 operands computes
    /// the shape.</summary>
    bool TryConv2dForwardBf16(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW);

    /// <summary>dx = input gradient of the dense convolution given round_bf16(dy) and round_bf16(w), float32
    /// accumulation and output: <see cref="IBackend.Conv2dBackwardData"/> under bf16; false (nothing done) where no
    /// GEMM with bf16 operands computes the shape.</summary>
    bool TryConv2dBackwardDataBf16(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW);

    /// <summary>dw (and dbias) of the dense convolution given round_bf16(x) (x float32: the caller widens a held block)
    /// and dy (float32, already rounded by the caller: the bias gradient reads it), float32 accumulation and outputs:
    /// <see cref="IBackend.Conv2dBackwardFilter"/> under bf16; false (nothing done) where no GEMM with bf16 operands
    /// computes the shape.</summary>
    bool TryConv2dBackwardFilterBf16(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH,
                                     int padW);

    /// <summary>dws[b] = weight gradient of branch b given round_bf16(x) (read as 16-bit: x's own block where it is
    /// held as bf16, no widened copy; else a packed copy) and dys[b] (float32, already rounded by the caller), float32
    /// accumulation and outputs: <see cref="IBackend.DecomposedDwConvBackwardFilter"/> under bf16; false (nothing done)
    /// where no kernel with a bf16 x takes the shape.</summary>
    bool TryDecomposedDwConvBackwardFilterBf16(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks,
                                               IReadOnlyList<Tensor?> dws);
}
