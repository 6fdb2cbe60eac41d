// Typed launchers for cuda/kernels/dwconv_fused.cu: the decomposed depthwise convolution with up to three branches
// in one kernel (forward: one read of each input tile for all branches, one output per branch; input gradient: all
// branches' transposed convolutions summed in registers, dx written once). Weight gradients of all branches: one
// kernel, per-tile partial sums of the live taps in shared memory from one read of each x tile, then a deterministic
// reduction. The launch plans of slak_plan.h decide grid (x = plane n*C, y = tile row, z = tile column), shared
// bytes, tiles and chunks, and when to fall back to the per-branch kernels of dwconv.cu: more than three branches,
// a tile over the shared-memory budget (e.g. M = 151 with a 5-wide partner), or a grid over the device's limits.
// These launchers are the whole depthwise family of the CUDA backend: a single depthwise convolution is the
// one-branch case (fused kernel, or the per-branch kernels when its plan falls back).
using System.Collections.Concurrent;
using System.Globalization;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the fused decomposed depthwise convolution.</summary>
internal static partial class DwConvFusedKernels
{
    // The params structs hold three branches, the kernels' maximum (kFusedMaxBranches; PlanStructLayoutTests checks
    // that the header agrees). Whether a launch runs fused is the plan's decision (PerBranchOnly aside).
    internal const int MaxBranches = 3;

    /// <summary>Run the per-branch kernels of dwconv.cu whatever the plans choose, so that the GPU check's rows of
    /// those kernels and their parity tests reach them at shapes whose plans take the fused kernels. Off in training;
    /// set it only around launches that nothing else runs at the same time (it is process-wide).</summary>
    internal static bool PerBranchOnly { get; set; }

    /// <summary>The plan of a fused forward / input gradient / inference sum for these branches (small maps:
    /// dwconv_small_kernel's plan when slak_plan_dwconv_small takes the shape). Where it is dwconv_fused_kernel's and
    /// <see cref="DwConvStripKernels.Takes"/> holds, the float32 launchers run the branches on dwconv_strip_kernel
    /// instead (one launch per branch, <see cref="DwConvStripKernels.Plan"/>).</summary>
    public static LaunchPlan Plan(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        Span<int> kh = stackalloc int[branches.Length], kw = stackalloc int[branches.Length];
        for (int b = 0; b < branches.Length; b++) (kh[b], kw[b]) = (branches[b].Kh, branches[b].Kw);
        return LaunchPlans.DwConvSmall(n, c, h, w, kh, kw, DeviceLimits.For(dev));
    }

    /// <summary>The plan of the fused weight gradient for these branches.</summary>
    public static LaunchPlan WeightGradPlan(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h,
                                            int w)
    {
        Span<int> kh = stackalloc int[branches.Length], kw = stackalloc int[branches.Length];
        for (int b = 0; b < branches.Length; b++) (kh[b], kw[b]) = (branches[b].Kh, branches[b].Kw);
        return LaunchPlans.DwConvFusedWeightGrad(n, c, h, w, kh, kw, DeviceLimits.For(dev));
    }

    /// <summary>ys[b] = depthwise conv of x (N, C, H, W) with branch b (weight * mask); all outputs
    /// overwritten.</summary>
    public static void Forward(IGpuDevice dev, ReadOnlySpan<DevicePtr> ys, DevicePtr x, ReadOnlySpan<DwConvFusedBranch> branches,
                               int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(ys.Length, branches.Length, nameof(ys));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return;
        if (plan.KernelChoice == PlanKernel.PerBranch || PerBranchOnly)
        {
            for (int b = 0; b < branches.Length; b++)
                DwConvKernels.Forward(dev, ys[b], x, branches[b].Weight, branches[b].Mask, n, c, h, w,
                                      branches[b].Kh, branches[b].Kw);
            return;
        }
        Span<DevicePtr> ins = [x, x, x];
        if (plan.KernelChoice == PlanKernel.DwConvFused && DwConvStripKernels.Takes(dev, branches, n, c, h, w))
        {
            for (int b = 0; b < branches.Length; b++)
                DwConvStripKernels.Launch(dev, ys[b], x, branches[b], n, c, h, w, flip: false, accumulate: false);
            return;
        }
        Launch(dev, ys, ins, branches, n, c, h, w, flip: false, sum: false, plan);
    }

    /// <summary>y = sum over branches of the depthwise conv of x with branch b (inference; overwrites y). The fused
    /// kernel's summing mode with every branch reading x: one output write, no branch outputs.</summary>
    public static void ForwardSum(IGpuDevice dev, DevicePtr y, DevicePtr x, ReadOnlySpan<DwConvFusedBranch> branches,
                                  int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(branches.Length, branches.Length, nameof(branches));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return;
        if (plan.KernelChoice == PlanKernel.PerBranch || PerBranchOnly)
        {
            var xs = new DevicePtr[branches.Length];
            Array.Fill(xs, x);
            PerBranchSum(dev, y, xs, branches, n, c, h, w, flip: false);
            return;
        }
        if (plan.KernelChoice == PlanKernel.DwConvFused && DwConvStripKernels.Takes(dev, branches, n, c, h, w))
        {
            for (int b = 0; b < branches.Length; b++)
                DwConvStripKernels.Launch(dev, y, x, branches[b], n, c, h, w, flip: false, accumulate: b > 0);
            return;
        }
        Span<DevicePtr> outs = [y, DevicePtr.Null, DevicePtr.Null];
        Span<DevicePtr> ins = [x, x, x];
        Launch(dev, outs, ins, branches, n, c, h, w, flip: false, sum: true, plan);
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b] (overwrites dx).</summary>
    public static void BackwardData(IGpuDevice dev, DevicePtr dx, ReadOnlySpan<DevicePtr> dys,
                                    ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(dys.Length, branches.Length, nameof(dys));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return;
        if (plan.KernelChoice == PlanKernel.PerBranch || PerBranchOnly)
        {
            PerBranchSum(dev, dx, dys, branches, n, c, h, w, flip: true);
            return;
        }
        if (plan.KernelChoice == PlanKernel.DwConvFused && DwConvStripKernels.Takes(dev, branches, n, c, h, w))
        {
            for (int b = 0; b < branches.Length; b++)
                DwConvStripKernels.Launch(dev, dx, dys[b], branches[b], n, c, h, w, flip: true, accumulate: b > 0);
            return;
        }
        Span<DevicePtr> outs = [dx, DevicePtr.Null, DevicePtr.Null];
        Launch(dev, outs, dys, branches, n, c, h, w, flip: true, sum: true, plan);
    }

    /// <summary>The fallback for tiles that do not fit in shared memory: out = sum over branches of the per-branch
    /// kernel on ins[b] (flip: the input-gradient correlation), through one temporary plane set.</summary>
    private static void PerBranchSum(IGpuDevice dev, DevicePtr output, ReadOnlySpan<DevicePtr> ins,
                                     ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w, bool flip)
    {
        long count = (long)n * c * h * w;
        var tmp = branches.Length > 1 ? dev.Allocate(count * sizeof(float)) : DevicePtr.Null;
        try
        {
            for (int b = 0; b < branches.Length; b++)
            {
                DwConvKernels.Forward(dev, b == 0 ? output : tmp, ins[b], branches[b].Weight, branches[b].Mask,
                                      n, c, h, w, branches[b].Kh, branches[b].Kw, flip: flip);
                if (b > 0) ElementwiseKernels.Axpy(dev, output, tmp, 1f, count);
            }
        }
        finally
        {
            if (!tmp.IsNull) dev.Free(tmp);
        }
    }

    /// <summary>dws[b] = weight gradient of branch b given x and dys[b] (overwritten). A branch whose
    /// <see cref="DwConvFusedBranch.Mask"/> is not null gets only its live taps computed and every other tap exactly 0;
    /// <see cref="DwConvFusedBranch.Weight"/> is not read.</summary>
    public static void BackwardFilter(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x,
                                      ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                      int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(dws.Length, branches.Length, nameof(dws));
        Check(dys.Length, branches.Length, nameof(dys));
        CheckShape(branches, n, c, h, w);
        int nb = branches.Length;
        var plan = WeightGradPlan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.DwConvFusedWgrad && !PerBranchOnly && !SmallWgradOff && SmallWgrad(dev, branches, n, h, w))
        {
            DwConvSmallWgradKernels.BackwardFilter(dev, dws, x, dys, branches, n, c, h, w); // stages 3-4
            return;
        }
        if (plan.KernelChoice is PlanKernel.PerBranch or PlanKernel.None || PerBranchOnly)
        {
            // Each per-branch launch has its own plan (an empty shape fills dw with zeros there).
            for (int b = 0; b < nb; b++)
                DwConvKernels.BackwardFilter(dev, dws[b], x, dys[b], branches[b].Mask, n, c, h, w,
                                             branches[b].Kh, branches[b].Kw, !branches[b].Mask.IsNull);
            return;
        }
        if (plan.KernelChoice == PlanKernel.DwConvFusedWgrad && DwConvStripKernels.TakesWgrad(dev, branches, n, c, h, w))
        {
            DwConvStripKernels.LaunchWeightGrad(dev, dws, x, dys, branches, n, c, h, w); // stages 1-2
            return;
        }
        LaunchWeightGrad(dev, dws, x, dys, branches, n, c, h, w, plan, bf16: false);
    }

    // dwconv_fused_wgrad_kernel (per-chunk partial sums) and their deterministic reduction into dws. bf16: its
    // SLAK_DW_BF16=1 instance, x a 16-bit bf16 block (dy, masks, partials and dws float32 in both).
    private static void LaunchWeightGrad(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x,
                                         ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                         int n, int c, int h, int w, in LaunchPlan plan, bool bf16)
    {
        int nb = branches.Length, hh = 0, hw = 0;
        foreach (var b in branches)
        {
            hh = Math.Max(hh, b.Kh / 2);
            hw = Math.Max(hw, b.Kw / 2);
        }
        int chunks = plan.Chunks;
        var partials = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            Span<DwConvFusedBranch> at = stackalloc DwConvFusedBranch[MaxBranches];
            Span<DevicePtr> parts = stackalloc DevicePtr[MaxBranches];
            Span<DevicePtr> grads = stackalloc DevicePtr[MaxBranches];
            branches.CopyTo(at);
            long offset = 0;
            for (int b = 0; b < nb; b++)
            {
                parts[b] = partials.Offset(offset * sizeof(float));
                offset += (long)chunks * c * at[b].Kh * at[b].Kw;
                grads[b] = dys[b];
            }
            var p = new DwFusedWgradParams(n, c, h, w, nb, at[0].Kh, at[0].Kw, at[1].Kh, at[1].Kw, at[2].Kh, at[2].Kw,
                                           hh, hw, plan.PerChunk, plan.TileH, plan.TileW);
            var a = new KernelArgs();
            for (int b = 0; b < MaxBranches; b++) a.Add(parts[b]);
            a.Add(x);
            for (int b = 0; b < MaxBranches; b++) a.Add(grads[b]);
            for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Mask);
            a.Add(p);
            a.Launch(dev, WgradKernel, plan, bf16 ? [Bf16Define] : []);
            for (int b = 0; b < nb; b++)
                ReduceKernels.Finalize(dev, dws[b], parts[b], chunks, c * at[b].Kh * at[b].Kw);
        }
        finally { dev.Free(partials); }
    }

    /// <summary>Keep small maps on dwconv_fused_wgrad_kernel (its parity tests and benchmark rows);
    /// process-wide.</summary>
    internal static bool SmallWgradOff { get; set; }

    private static bool SmallWgrad(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int h, int w)
    {
        Span<(int Kh, int Kw)> k = stackalloc (int, int)[branches.Length];
        for (int b = 0; b < branches.Length; b++) k[b] = (branches[b].Kh, branches[b].Kw);
        return DwConvSmallWgradKernels.Applies(n, h, w, k) && DwConvSmallWgradKernels.Available(dev, h, w, k);
    }

    private static void Launch(IGpuDevice dev, ReadOnlySpan<DevicePtr> outs, ReadOnlySpan<DevicePtr> ins,
                               ReadOnlySpan<DwConvFusedBranch> br, int n, int c, int h, int w, bool flip, bool sum,
                               in LaunchPlan plan, bool bf16 = false)
    {
        int nb = br.Length, hh = 0, hw = 0;
        foreach (var b in br)
        {
            hh = Math.Max(hh, b.Kh / 2);
            hw = Math.Max(hw, b.Kw / 2);
        }
        Span<DwConvFusedBranch> at = stackalloc DwConvFusedBranch[MaxBranches];
        Span<DevicePtr> o = stackalloc DevicePtr[MaxBranches];
        Span<DevicePtr> i = stackalloc DevicePtr[MaxBranches];
        br.CopyTo(at);
        for (int b = 0; b < nb; b++)
        {
            o[b] = sum ? (b == 0 ? outs[0] : DevicePtr.Null) : outs[b];
            i[b] = ins[b];
        }
        var p = new DwFusedParams(n, c, h, w, nb, at[0].Kh, at[0].Kw, at[1].Kh, at[1].Kw, at[2].Kh, at[2].Kw,
                                  hh, hw, flip ? 1 : 0, sum ? 1 : 0);
        var a = new KernelArgs();
        for (int b = 0; b < MaxBranches; b++) a.Add(o[b]);
        for (int b = 0; b < MaxBranches; b++) a.Add(i[b]);
        for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Weight);
        for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Mask);
        a.Add(p);
        if (plan.KernelChoice == PlanKernel.DwConvSmall)
            a.Launch(dev, DwConvSmallKernels.Kernel, plan, DwConvSmallKernels.Specialization(h, w, br));
        else
            a.Launch(dev, "dwconv_fused_kernel", plan, bf16 ? Bf16Specialization(br) : Specialization(br));
    }

    /// <summary>The NVRTC definitions that specialise dwconv_fused_kernel for these branches' (Kh, Kw):
    /// SLAK_DW_KH{b}, SLAK_DW_KW{b} (the module's identity and cache key; the emulator runs the generic kernel unless
    /// its library holds that instance).</summary>
    internal static IReadOnlyList<string> Specialization(ReadOnlySpan<DwConvFusedBranch> br)
    {
        var key = (br.Length, K(br, 0), K(br, 1), K(br, 2));
        return Specializations.GetOrAdd(key, static k =>
        {
            var (count, k0, k1, k2) = k;
            (int Kh, int Kw)[] all = [k0, k1, k2];
            var defines = new List<string>();
            for (int b = 0; b < count; b++)
            {
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KH{b}={all[b].Kh}"));
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KW{b}={all[b].Kw}"));
            }
            return defines;
        });
    }

    private static (int Kh, int Kw) K(ReadOnlySpan<DwConvFusedBranch> br, int b) => b < br.Length ? (br[b].Kh, br[b].Kw) : (0, 0);

    private static readonly ConcurrentDictionary<(int, (int, int), (int, int), (int, int)), IReadOnlyList<string>>
        Specializations = new();

    private static void Check(int count, int branches, string name)
    {
        if (branches < 1)
            throw new ArgumentException($"at least one branch is required, got {branches}", nameof(branches));
        if (count != branches)
            throw new ArgumentException($"{name} must have one entry per branch ({branches}), got {count}", name);
    }

    private static void CheckShape(ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        if (n < 1 || c < 1 || h < 1 || w < 1)
            throw new ArgumentException($"sizes must be positive, got N={n}, C={c}, H={h}, W={w}", nameof(n));
        for (int b = 0; b < branches.Length; b++)
            if (branches[b].Kh < 1 || branches[b].Kw < 1 || (branches[b].Kh & 1) == 0 || (branches[b].Kw & 1) == 0)
                throw new ArgumentException($"branch {b}: kernel sizes must be positive and odd, got " +
                    $"Kh={branches[b].Kh}, Kw={branches[b].Kw}", nameof(branches));
    }
}
