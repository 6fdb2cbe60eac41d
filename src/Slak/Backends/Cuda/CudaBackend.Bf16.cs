// Real bf16 storage on the CUDA backend (IBf16KernelBackend, called by Bf16Backend under --precision bf16): the
// operands are packed into 16-bit buffers (f32_to_bf16_kernel), the depthwise forward runs the bf16 instantiation of
// dwconv_fused.cu, or of dwconv_small.cu where the plan takes the small-map kernel (bf16 input and outputs, float32
// weights rounded to bf16 values, masks and accumulation), the depthwise weight gradient runs the bf16-x instance of
// the fused or small-map kernel (x 16-bit, dy and outputs float32), and GEMMs (IBackend.Gemm, LinearBias, the fused
// MLP's forward and input gradient, the patchify convolutions' forward and gradients) run through IGpuDevice.GemmBf16
// or GemmBf16StridedBatched (cublasGemmEx / cublasGemmStridedBatchedEx, bf16 operands, float32 accumulation and
// output; epilogues, the convolution's bias included, float32). The activations
// Bf16Backend stores as bf16 are held as 16-bit blocks (CudaStorage.StoreAsBf16: half the bytes) from the forward pass
// to the backward: the bf16 kernels read them directly, the depthwise forward writes its outputs straight into them,
// and a float32 kernel gets a widened copy (Bf16Backend) or widens the block back (CudaStorage.Pointer).
// docs/mixed-precision.md says which tensors are 16-bit and what this saves.
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

internal sealed partial class CudaBackend : IBf16KernelBackend
{
    /// <summary>Tests only: called with (source tensor, the bits of its bf16 copy) for every bf16 operand copy made
    /// here (16-bit buffers, and the rounded weights the depthwise kernel reads; downloaded only while it is
    /// set).</summary>
    internal static Action<Tensor, ushort[]>? Bf16BufferObserver { get; set; }

    /// <summary>Tests only: false keeps every stored activation float32 (rounded in place, the rounding path's
    /// storage), to compare the 16-bit storage against it.</summary>
    internal static bool HoldBf16Storage { get; set; } = true;

    /// <inheritdoc />
    public void StoreBf16(Tensor y)
    {
        var storage = (CudaStorage)y.Storage;
        if (HoldBf16Storage && y.Offset == 0 && y.Numel == storage.Length) storage.StoreAsBf16();
        else if (!storage.IsBf16) RoundToBf16(y, y); // a view of a larger storage: round in place, keep float32
    }

    /// <inheritdoc />
    public bool HoldsBf16(Tensor t) => ((CudaStorage)t.Storage).IsBf16;

    // The bf16 address of t's first element (t's storage is a bf16 block).
    private static DevicePtr PBf16(Tensor t) => ((CudaStorage)t.Storage).Bf16Pointer.Offset(t.Offset * sizeof(ushort));

    // y = x where x is held as bf16 (exact widening; nothing to do when y is x itself); false where x is float32.
    private bool TryWidenInto(Tensor x, Tensor y)
    {
        if (!HoldsBf16(x)) return false;
        // The same storage: at the same place its values are bf16 already; elsewhere the float32 path widens it first.
        if (ReferenceEquals(x.Storage, y.Storage)) return x.Offset == y.Offset;
        PrecisionKernels.Bf16ToFloat32(Gpu, P(y), PBf16(x), y.Numel);
        return true;
    }

    // The float32 values of t on the host, without widening a bf16 block on the device.
    private bool TryCopyBf16ToHost(Tensor t, Span<float> destination)
    {
        if (!HoldsBf16(t)) return false;
        var bits = new ushort[t.Numel];
        Gpu.CopyToHost(PBf16(t), System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()));
        for (int i = 0; i < bits.Length; i++) destination[i] = BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
        return true;
    }

    /// <inheritdoc />
    public bool TryDecomposedDwConvForwardBf16(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                               IReadOnlyList<Tensor> ys) =>
        DwConvBf16(x, weights, masks, ys, sum: false);

    /// <inheritdoc />
    public bool TryDecomposedDwConvForwardSumBf16(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                                  Tensor y) =>
        DwConvBf16(x, weights, masks, [y], sum: true);

    /// <inheritdoc />
    public bool TryGemmBf16(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta,
                            Tensor c)
    {
        var temps = new List<DevicePtr>(2);
        try
        {
            var cp = P(c); // first: c's float32 address (widening c, were it held as bf16) before a's and b's are taken
            var ab = Bf16Operand(a, temps);
            var bb = Bf16Operand(b, temps);
            Gpu.GemmBf16(transA, transB, m, n, k, alpha, ab, transA ? m : k, bb, transB ? k : n, beta, cp, n);
            return true;
        }
        finally { foreach (var t in temps) Gpu.Free(t); }
    }

    /// <inheritdoc />
    public bool TryConv2dForwardBf16(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH,
                                     int padW)
    {
        var p = ConvParams(x, w, y.Size(2), y.Size(3), strideH, strideW, padH, padW);
        if (!Conv2dPatchifyKernels.Applies(p)) return false; // the direct kernels of conv2d.cu are float32 only
        var temps = new List<DevicePtr>(1);
        try
        {
            var yp = P(y); // first, as in TryGemmBf16
            // The patchify kernel reads x as float32; the GEMM packs the patches (rounding them) and reads w as bf16.
            Conv2dPatchifyKernels.ForwardBf16(Gpu, yp, P(x), Bf16Operand(w, temps), PorNull(bias), p);
            return true;
        }
        finally { foreach (var t in temps) Gpu.Free(t); }
    }

    /// <inheritdoc />
    public bool TryConv2dBackwardDataBf16(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW)
    {
        var p = ConvParams(dx, w, dy.Size(2), dy.Size(3), strideH, strideW, padH, padW);
        if (!Conv2dPatchifyKernels.Applies(p)) return false; // the direct kernels of conv2d.cu are float32 only
        var temps = new List<DevicePtr>(2);
        try
        {
            var dxp = P(dx); // first, as in TryGemmBf16
            Conv2dPatchifyKernels.BackwardData(Gpu, dxp, Bf16Operand(dy, temps), Bf16Operand(w, temps), p, bf16: true);
            return true;
        }
        finally { foreach (var t in temps) Gpu.Free(t); }
    }

    /// <inheritdoc />
    public bool TryConv2dBackwardFilterBf16(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW,
                                            int padH, int padW)
    {
        var p = ConvParams(x, dw, dy.Size(2), dy.Size(3), strideH, strideW, padH, padW);
        if (!Conv2dPatchifyKernels.Applies(p)) return false;
        // The patchify kernel reads x as float32; the GEMM packs the patches (rounding them) and dy's permutation.
        Conv2dKernels.BackwardFilter(Gpu, P(dw), PorNull(dbias), P(x), P(dy), p, bf16: true);
        return true;
    }

    /// <inheritdoc />
    public bool TryLinearBiasBf16(Tensor x, Tensor w, Tensor bias, Tensor y)
    {
        LinearBias(x, w, bias, y, bf16: true);
        return true;
    }

    /// <inheritdoc />
    public bool TryLinearBiasGeluBf16(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y)
    {
        LinearBiasGelu(x, w, bias, pre, y, bf16: true);
        return true;
    }

    /// <inheritdoc />
    public bool TryLinearBackwardDataGeluBf16(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias)
    {
        LinearBackwardDataGelu(dy, w, pre, dpre, dbias, bf16: true);
        return true;
    }

    private bool DwConvBf16(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                            IReadOnlyList<Tensor> outs, bool sum)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        var branches = new DwConvFusedBranch[weights.Count];
        for (int b = 0; b < branches.Length; b++) branches[b] = FusedBranch(weights[b], masks[b]);
        if (branches.Length > DwConvFusedKernels.MaxBranches || DwConvFusedKernels.PerBranchOnly)
            return false; // the per-branch kernels of dwconv.cu have no bf16 instantiation
        var choice = DwConvFusedKernels.Plan(Gpu, branches, n, c, h, w).KernelChoice;
        bool small = choice == PlanKernel.DwConvSmall; // stages 3-4: dwconv_small.cu's bf16 instantiation
        if (!(choice == PlanKernel.DwConvFused || (small && DwConvSmallKernels.Bf16Available(Gpu)))) return false;
        var temps = new List<DevicePtr>(2 + 2 * branches.Length);
        try
        {
            // The kernel reads weights as float32: it gets their bf16 values (as Bf16Backend's rounding path does).
            for (int b = 0; b < branches.Length; b++)
            {
                var rounded = Gpu.Allocate(weights[b].Numel * sizeof(float));
                temps.Add(rounded);
                PrecisionKernels.RoundBf16(Gpu, rounded, P(weights[b]), weights[b].Numel);
                Observe(weights[b], rounded, packed: false);
                branches[b] = branches[b] with { Weight = rounded };
            }
            var xb = Bf16Operand(x, temps);
            var yb = new DevicePtr[outs.Count];
            for (int b = 0; b < yb.Length; b++)
            {
                yb[b] = Gpu.Allocate(outs[b].Numel * sizeof(ushort));
                temps.Add(yb[b]);
            }
            bool ran = (small, sum) switch
            {
                (true, true) => DwConvSmallKernels.TryForwardSumBf16(Gpu, yb[0], xb, branches, n, c, h, w),
                (true, false) => DwConvSmallKernels.TryForwardBf16(Gpu, yb, xb, branches, n, c, h, w),
                (false, true) => DwConvFusedKernels.TryForwardSumBf16(Gpu, yb[0], xb, branches, n, c, h, w),
                (false, false) => DwConvFusedKernels.TryForwardBf16(Gpu, yb, xb, branches, n, c, h, w),
            };
            if (!ran) return false;
            for (int b = 0; b < yb.Length; b++)
            {
                // An output that owns its storage keeps the kernel's 16-bit block (stored as bf16); a view is widened.
                var storage = (CudaStorage)outs[b].Storage;
                if (HoldBf16Storage && outs[b].Offset == 0 && outs[b].Numel == storage.Length && !storage.IsBf16 &&
                    outs[b].Numel > 0)
                {
                    storage.AdoptBf16(yb[b]);
                    temps.Remove(yb[b]);
                }
                else
                {
                    PrecisionKernels.Bf16ToFloat32(Gpu, P(outs[b]), yb[b], outs[b].Numel);
                }
            }
            return true;
        }
        finally { foreach (var t in temps) Gpu.Free(t); }
    }

    /// <inheritdoc/>
    public bool TryDecomposedDwConvBackwardFilterBf16(Tensor x, IReadOnlyList<Tensor?> dys,
                                                      IReadOnlyList<Tensor?> skipMasks, IReadOnlyList<Tensor?> dws)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(dys);
        ArgumentNullException.ThrowIfNull(skipMasks);
        ArgumentNullException.ThrowIfNull(dws);
        var branches = new List<DwConvFusedBranch>(dws.Count);
        var grads = new List<DevicePtr>(dws.Count);
        var outs = new List<DevicePtr>(dws.Count);
        for (int b = 0; b < dws.Count; b++)
        {
            if (dws[b] is not { } dw || dys[b] is not { } dy) continue;
            branches.Add(FusedBranch(dw, skipMasks[b]));
            grads.Add(P(dy));
            outs.Add(P(dw));
        }
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        if (branches.Count == 0 || branches.Count > DwConvFusedKernels.MaxBranches ||
            !DwConvFusedKernels.BackwardFilterBf16Applies(Gpu, branches.ToArray(), n, c, h, w))
            return false;
        var temps = new List<DevicePtr>(1);
        try
        {
            // x as the kernel reads it: its own 16-bit block, or a packed 16-bit copy (half a rounded float32 copy).
            var xb = Bf16Operand(x, temps);
            DwConvFusedKernels.TryBackwardFilterBf16(Gpu, outs.ToArray(), xb, grads.ToArray(), branches.ToArray(),
                                                     n, c, h, w);
        }
        finally { foreach (var t in temps) Gpu.Free(t); }
        // Branches with no incoming gradient get zeros, as the float32 path gives them.
        for (int b = 0; b < dws.Count; b++)
            if (dws[b] is { } dw && dys[b] is null) Fill(dw, 0f);
        return true;
    }

    // t as a 16-bit bf16 operand: its own block where it is held as bf16, else a packed copy (in temps).
    private DevicePtr Bf16Operand(Tensor t, List<DevicePtr> temps) => HoldsBf16(t) ? PBf16(t) : Packed(t, temps);

    // A 16-bit bf16 copy of t (round to nearest even), freed by the caller with the other temporaries.
    private DevicePtr Packed(Tensor t, List<DevicePtr> temps)
    {
        var p = Gpu.Allocate(Math.Max(1, t.Numel) * sizeof(ushort));
        temps.Add(p);
        PrecisionKernels.Float32ToBf16(Gpu, p, P(t), t.Numel);
        Observe(t, p, packed: true);
        return p;
    }

    // Tests: hands the bf16 bits of a copy of t (16-bit, or float32 holding bf16 values) to Bf16BufferObserver.
    private void Observe(Tensor t, DevicePtr copy, bool packed)
    {
        if (Bf16BufferObserver is not { } observe) return;
        var bits = new ushort[t.Numel];
        if (packed)
        {
            Gpu.CopyToHost(copy, System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()));
        }
        else
        {
            var values = new float[t.Numel];
            Gpu.CopyToHost(copy, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            for (int i = 0; i < values.Length; i++) bits[i] = (ushort)(BitConverter.SingleToUInt32Bits(values[i]) >> 16);
        }
        observe(t, bits);
    }
}
