// The patchify path of the dense convolution (cuda/kernels/conv2d_patchify.cu + GEMMs): used by Conv2dKernels
// whenever the kernel equals the stride and there is no padding (SLaK's stem 4x4/4 and downsampling 2x2/2; Applies is
// the one predicate). The re-laid-out input P is (K, N*L), K = Cin*s*s, L = OutH*OutW (conv2d_patchify.cu's header):
//   forward     y_n (Cout, L) = W' (Cout, K') · P[:, n*L ..]          strided-batched GEMM, NCHW written directly
//   data grad   dP[:, n*L ..] (K, L) = W^T (K, Cout) · dy_n (Cout, L)  strided-batched GEMM, then un-patchify
//   weight grad dW (Cout, K) = dY' (Cout, N*L) · P^T                   one GEMM over N*L, dY' = dY permuted (C, N, L)
// GEMMs: cuBLAS on a GPU (the TF32 math mode the caller set), the emulator's host GEMM (one per image for the batched
// ones). Under bf16 the GEMMs take 16-bit operands (IGpuDevice.GemmBf16 / GemmBf16StridedBatched, float32 accumulation
// and output): the forward (ForwardBf16) packs P and reads W as a bf16 block, with no bias row (a bf16 GEMM would
// round the bias) but the float32 bias added after the GEMM (add_bias_kernel); the data gradient reads dy and W as
// bf16 blocks; the weight gradient packs P and dY'. The workspace (P, dP, dY', W') comes from the caching allocator
// and goes back before returning; each plan reports its size in WorkspaceBytes (the bf16 packed copies come on top).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>The dense convolution as patchify + GEMM, for kernel == stride, no padding
/// (<see cref="Applies"/>).</summary>
internal static class Conv2dPatchifyKernels
{
    /// <summary>The three passes of a convolution, for <see cref="Plan"/>.</summary>
    public enum Pass
    {
        /// <summary>y = conv(x, w) + bias.</summary>
        Forward,
        /// <summary>The input gradient.</summary>
        BackwardData,
        /// <summary>The weight gradient (the bias gradient is conv2d_bwd_bias_kernel's).</summary>
        BackwardFilter,
    }

    /// <summary>Off: every convolution takes the direct kernels of conv2d.cu (the "before" variant of the GPU check
    /// and of benchmarks). Not thread-safe; set it before launching.</summary>
    internal static bool Disabled { get; set; }

    /// <summary>True when the convolution <paramref name="p"/> takes the patchify path: a square kernel equal to both
    /// strides, no padding (dilation is always 1 here), and GEMM sizes that fit cuBLAS's 32-bit integers.</summary>
    public static bool Applies(in Conv2dParams p) =>
        !Disabled && p.Kh == p.Kw && p.StrideH == p.Kh && p.StrideW == p.Kw && p.PadH == 0 && p.PadW == 0
        && p.OutH > 0 && p.OutW > 0 && (long)p.N * p.OutH * p.OutW <= int.MaxValue
        && (long)p.Cin * p.Kh * p.Kw + 1 <= int.MaxValue;

    /// <summary>The plan of the pass's re-layout kernel (a grid-stride loop: 64-bit indices, at most
    /// <see cref="LaunchPlans.GridStrideMaxBlocks"/> blocks at any batch) with the pass's workspace in bytes.</summary>
    public static LaunchPlan Plan(DeviceLimits limits, in Conv2dParams p, Pass pass, bool bias = false)
    {
        long cols = Columns(p), k = K(p);
        long relaid = pass == Pass.BackwardData ? (long)p.N * p.Cin * p.H * p.W : (long)p.N * p.Cin * p.Kh * p.OutH * p.OutW;
        var plan = LaunchPlans.GridStride(relaid, limits);
        long floats = pass switch
        {
            Pass.Forward => (k + (bias ? 1 : 0)) * cols + (bias ? p.Cout * (k + 1) : 0),
            Pass.BackwardData => k * cols,
            _ => k * cols + p.Cout * cols,
        };
        plan.WorkspaceBytes = floats * sizeof(float);
        return plan;
    }

    /// <summary>y = conv(x, w) + bias (bias may be null), written NCHW.</summary>
    public static void Forward(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr w, DevicePtr bias, in Conv2dParams p)
    {
        bool hasBias = !bias.IsNull;
        var plan = Plan(DeviceLimits.For(dev), p, Pass.Forward, hasBias);
        int cols = Columns(p), k = K(p), kb = k + (hasBias ? 1 : 0), plane = p.OutH * p.OutW;
        var work = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            var pm = work;
            var wm = w;
            Patchify(dev, pm, x, p, hasBias, plan);
            if (hasBias)
            {
                wm = work.Offset((long)kb * cols * sizeof(float));
                var a = new KernelArgs();
                a.AddOutput(wm, (long)p.Cout * kb * sizeof(float)); a.Add(w); a.Add(bias); a.Add(p.Cout); a.Add(k);
                a.Launch(dev, "patchify_weight_bias_kernel", LaunchPlans.GridStride((long)p.Cout * kb, DeviceLimits.For(dev)));
            }
            // y_n (Cout, L) = W' (Cout, K') · P[:, n*L .. (n+1)*L] (K', L; row stride N*L).
            StridedBatched(dev, false, false, p.Cout, plane, kb, wm, kb, 0, pm, cols, plane,
                           y, plane, (long)p.Cout * plane, p.N);
        }
        finally
        {
            dev.Free(work);
        }
    }

    /// <summary>y = conv(x, w) + bias (bias may be null), written NCHW, under bf16: the GEMM reads the patches packed
    /// to bf16 (x float32, rounded by the packing) and <paramref name="w"/> as a 16-bit bf16 block, with float32
    /// accumulation and output; the float32 bias is added after it (add_bias_kernel), unrounded.</summary>
    public static void ForwardBf16(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr w, DevicePtr bias,
                                   in Conv2dParams p)
    {
        var plan = Plan(DeviceLimits.For(dev), p, Pass.Forward);
        int cols = Columns(p), k = K(p), plane = p.OutH * p.OutW;
        long count = (long)k * cols;
        var work = dev.Allocate(plan.WorkspaceBytes + Math.Max(1, count) * sizeof(ushort));
        try
        {
            var packed = work.Offset(plan.WorkspaceBytes);
            Patchify(dev, work, x, p, false, plan);
            PrecisionKernels.Float32ToBf16(dev, packed, work, count);
            // y_n (Cout, L) = W (Cout, K) · P[:, n*L .. (n+1)*L] (K, L; row stride N*L), then + bias[co].
            StridedBatched(dev, false, false, p.Cout, plane, k, w, k, 0, packed, cols, plane,
                           y, plane, (long)p.Cout * plane, p.N, bf16: true);
            if (!bias.IsNull) ActivationKernels.AddBias(dev, y, bias, p.Cout, plane, (long)p.N * p.Cout * plane);
        }
        finally
        {
            dev.Free(work);
        }
    }

    /// <summary>dx of the convolution: dP = W^T · dy per image, then un-patchified (every dx element written once,
    /// zeros where no output reads the input). bf16: dy and w are 16-bit bf16 blocks (GemmBf16; dx float32).</summary>
    public static void BackwardData(IGpuDevice dev, DevicePtr dx, DevicePtr dy, DevicePtr w, in Conv2dParams p,
                                    bool bf16 = false)
    {
        var plan = Plan(DeviceLimits.For(dev), p, Pass.BackwardData);
        int cols = Columns(p), k = K(p), plane = p.OutH * p.OutW;
        var dp = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            // dP[:, n*L ..] (K, L; row stride N*L) = W^T (K, Cout) · dy_n (Cout, L).
            StridedBatched(dev, true, false, k, plane, p.Cout, w, k, 0, dy, plane, (long)p.Cout * plane,
                           dp, cols, plane, p.N, bf16);
            var a = new KernelArgs();
            a.AddOutput(dx, (long)p.N * p.Cin * p.H * p.W * sizeof(float)); a.Add(dp);
            a.Add(p.N); a.Add(p.Cin); a.Add(p.H); a.Add(p.W); a.Add(p.Kh); a.Add(p.OutH); a.Add(p.OutW);
            a.Launch(dev, "unpatchify_kernel", plan);
        }
        finally
        {
            dev.Free(dp);
        }
    }

    /// <summary>dw (Cout, Cin, s, s) = dY' · P^T with dY' the output gradient as (Cout, N*L). bf16: the GEMM reads P
    /// and dY' packed to bf16 (GemmBf16; x, dy and dw float32).</summary>
    public static void BackwardFilter(IGpuDevice dev, DevicePtr dw, DevicePtr x, DevicePtr dy, in Conv2dParams p,
                                      bool bf16 = false)
    {
        var plan = Plan(DeviceLimits.For(dev), p, Pass.BackwardFilter);
        int cols = Columns(p), k = K(p), plane = p.OutH * p.OutW;
        var work = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            var pm = work;
            var dyc = work.Offset((long)k * cols * sizeof(float));
            Patchify(dev, pm, x, p, false, plan);
            ReduceKernels.Permute(dev, dyc, dy, [p.N, p.Cout, plane], [1, 0, 2]);
            // dW (Cout, K) = dY' (Cout, N*L) · P^T (P is (K, N*L)).
            if (bf16) PackedGemmBf16(dev, p.Cout, k, cols, dyc, pm, dw);
            else dev.Sgemm(false, true, p.Cout, k, cols, 1f, dyc, cols, pm, cols, 0f, dw, k);
        }
        finally
        {
            dev.Free(work);
        }
    }

    // c (m, n) = a (m, k) · b^T (b is (n, k)) with a and b packed to bf16 (round to nearest even) for GemmBf16.
    private static void PackedGemmBf16(IGpuDevice dev, int m, int n, int k, DevicePtr a, DevicePtr b, DevicePtr c)
    {
        long aCount = (long)m * k, bCount = (long)n * k;
        var packed = dev.Allocate(Math.Max(1, aCount + bCount) * sizeof(ushort));
        try
        {
            var bb = packed.Offset(aCount * sizeof(ushort));
            PrecisionKernels.Float32ToBf16(dev, packed, a, aCount);
            PrecisionKernels.Float32ToBf16(dev, bb, b, bCount);
            dev.GemmBf16(false, true, m, n, k, 1f, packed, k, bb, k, 0f, c, n);
        }
        finally
        {
            dev.Free(packed);
        }
    }

    private static int Columns(in Conv2dParams p) => p.N * p.OutH * p.OutW;

    private static int K(in Conv2dParams p) => p.Cin * p.Kh * p.Kw;

    private static void Patchify(IGpuDevice dev, DevicePtr pm, DevicePtr x, in Conv2dParams p, bool biasRow, in LaunchPlan plan)
    {
        var a = new KernelArgs();
        a.AddOutput(pm, ((long)K(p) + (biasRow ? 1 : 0)) * Columns(p) * sizeof(float)); a.Add(x);
        a.Add(p.N); a.Add(p.Cin); a.Add(p.H); a.Add(p.W); a.Add(p.Kh); a.Add(p.OutH); a.Add(p.OutW); a.Add(biasRow ? 1 : 0);
        a.Launch(dev, "patchify_kernel", plan);
    }

    /// <summary>Row-major C_i = op(A_i) · op(B_i) for i in [0, batch), A_i = a + i·strideA elements (likewise B, C):
    /// cublasSgemmStridedBatched on a GPU, one host GEMM per item on the emulator. bf16: A and B are 16-bit bf16
    /// blocks (GemmBf16StridedBatched: cublasGemmStridedBatchedEx on a GPU).</summary>
    private static void StridedBatched(IGpuDevice dev, bool transA, bool transB, int m, int n, int k,
                                       DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                       DevicePtr c, int ldc, long strideC, int batch, bool bf16 = false)
    {
        if (bf16)
        {
            dev.GemmBf16StridedBatched(transA, transB, m, n, k, 1f, a, lda, strideA, b, ldb, strideB, 0f, c, ldc, strideC,
                                       batch);
            return;
        }
        if (dev is CudaDriverDevice gpu)
        {
            gpu.SgemmStridedBatched(transA, transB, m, n, k, 1f, a, lda, strideA, b, ldb, strideB, 0f, c, ldc, strideC, batch);
            return;
        }
        for (int i = 0; i < batch; i++)
            dev.Sgemm(transA, transB, m, n, k, 1f, a.Offset(i * strideA * sizeof(float)), lda,
                      b.Offset(i * strideB * sizeof(float)), ldb, 0f, c.Offset(i * strideC * sizeof(float)), ldc);
    }
}
