// The live-tap strip kernel of the depthwise family: cuda/kernels/dwconv_strip.cu (one branch per launch over its live
// taps only, the map and the kernel compile-time: SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH0, SLAK_DW_KW0). DwConvFusedKernels
// runs a fused call's branches through it one after another (branch 0 writes, the others add in the summing modes)
// whenever Plan takes the shape: SLaK's stages 1-2 (docs/gpu-kernels.md, "Live taps in compile-time strips"). The same
// module's dwconv_strip_wgrad_kernel computes the weight gradient there (WgradPlan, LaunchWeightGrad; docs "Weight
// gradient in compile-time strips"). Float32 only: the bf16 launches stay on the fused kernels.
using System.Collections.Concurrent;
using System.Globalization;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Plan, specialisation and launch of the live-tap strip kernels (forward family and weight
/// gradient).</summary>
internal static class DwConvStripKernels
{
    /// <summary>The kernel's name in dwconv_strip.cu.</summary>
    internal const string Kernel = "dwconv_strip_kernel";

    /// <summary>The weight-gradient kernel's name in dwconv_strip.cu (same module, same definitions).</summary>
    internal const string WgradKernel = "dwconv_strip_wgrad_kernel";

    /// <summary>The kernel's source file, relative to cuda/.</summary>
    internal const string File = "kernels/dwconv_strip.cu";

    /// <summary>The kernel's <c>__launch_bounds__</c> (SLAK_DWR_THREADS).</summary>
    internal const int MaxThreads = 256;

    /// <summary>Map sides the plan takes: a line (the whole long axis) is one register strip of at most 64 outputs, and
    /// maps of at most 16 x 16 belong to the small-map kernel.</summary>
    internal const int MinSide = 17, MaxSide = 64;

    /// <summary>Long-axis taps of a branch at most (the live bits of a short-axis tap are one 64-bit word).</summary>
    internal const int MaxLongTaps = 64;

    /// <summary>Run dwconv_fused_kernel where the plan would take this kernel (the "before" of kernel-model's
    /// <c>--variant sliding</c> and of the GPU check). Process-wide; off by default.</summary>
    internal static bool Off { get; set; }

    /// <summary>Run dwconv_fused_wgrad_kernel where <see cref="WgradPlan"/> would take the strip weight gradient (the
    /// "before" of kernel-model's <c>--variant nostripwgrad</c>). Process-wide; off by default.</summary>
    internal static bool WgradOff { get; set; }

    /// <summary>Bytes of the weight gradient's partial sums (one float per block row of images, channel and tap) at
    /// most: beyond this batch the fused weight gradient's chunked plan runs.</summary>
    internal const long MaxWgradWorkspaceBytes = 256L << 20;

    /// <summary>Images a thread takes (dwr_images_per_thread): two where a line has at most 32 outputs,
    /// else one.</summary>
    internal static int ImagesPerThread(int len) => 2 * len <= 64 ? 2 : 1;

    /// <summary>Images of one block: <see cref="ImagesPerThread"/> times the thread groups of
    /// <see cref="ThreadGroups"/>.</summary>
    internal static int Images(int len, int lines) => ImagesPerThread(len) * ThreadGroups(lines);

    /// <summary>Thread groups of one block (one thread per line each): as many as fit <see cref="MaxThreads"/>
    /// threads, preferring a count whose threads fill whole warps (56 lines: 4, 28 lines: 8).</summary>
    internal static int ThreadGroups(int lines)
    {
        int most = Math.Max(1, MaxThreads / lines);
        for (int g = most; g >= 1; g--)
            if (g * lines % 32 == 0) return g;
        return most;
    }

    /// <summary>Floats of a staged line (dwr_line_stride): the line rounded up to 16 bytes, an odd number of 16-byte
    /// groups.</summary>
    internal static int LineStride(int len)
    {
        int groups = (len + 3) / 4;
        return groups % 2 == 1 ? groups * 4 : groups * 4 + 4;
    }

    /// <summary>Floats of one image's staged plane (dwr_plane_floats): lines + ks - 1 lines, padded to 4 mod 8 groups
    /// of 16 bytes.</summary>
    internal static int PlaneFloats(int lines, int ks, int len)
    {
        int groups = (lines + ks - 1) * LineStride(len) / 4;
        return (groups + (12 - groups % 8) % 8) * 4;
    }

    /// <summary>Dynamic shared bytes of a block (dwconv_strip_kernel's layout): the weights, the live bits and the
    /// block's transposed planes.</summary>
    internal static int SharedBytes(int h, int w, int kh, int kw, int images)
    {
        bool tall = kh >= kw;
        int len = tall ? h : w, lines = tall ? w : h, kl = tall ? kh : kw, ks = tall ? kw : kh;
        long bytes = (long)ks * ((kl + 3) / 4 * 4) * sizeof(float) + ((ks + 1) & ~1) * sizeof(ulong)
                     + (long)images * PlaneFloats(lines, ks, len) * sizeof(float);
        return (int)Math.Min(int.MaxValue, bytes);
    }

    /// <summary>The plan of one branch's launch (<see cref="PlanKernel.DwConvStrip"/>), or a plan of
    /// <see cref="PlanKernel.None"/> when the kernel does not take the shape: a side outside
    /// [<see cref="MinSide"/>, <see cref="MaxSide"/>], a long axis over <see cref="MaxLongTaps"/> taps, even kernels,
    /// or a grid or shared memory over the device's limits.</summary>
    internal static LaunchPlan Plan(long n, long c, int h, int w, int kh, int kw, DeviceLimits limits)
    {
        var none = new LaunchPlan { Kernel = (int)PlanKernel.None };
        if (Off || n < 1 || c < 1 || h < MinSide || w < MinSide || h > MaxSide || w > MaxSide) return none;
        if ((kh & 1) == 0 || (kw & 1) == 0 || Math.Max(kh, kw) > MaxLongTaps) return none;
        int lines = kh >= kw ? w : h, len = kh >= kw ? h : w, images = Images(len, lines);
        long blocksY = (n + images - 1) / images;
        int shared = SharedBytes(h, w, kh, kw, images);
        if (c > limits.MaxGridX || blocksY > limits.MaxGridY || shared > limits.SmemPerBlockOptin) return none;
        return new LaunchPlan
        {
            Kernel = (int)PlanKernel.DwConvStrip,
            GridX = (uint)c, GridY = (uint)blocksY, GridZ = 1,
            BlockX = (uint)(ThreadGroups(lines) * lines), BlockY = 1, BlockZ = 1,
            SmemDynamic = shared,
            OptIn = shared > limits.SmemPerBlockDefault ? 1 : 0,
            LaunchBound = MaxThreads,
        };
    }

    /// <summary>Dynamic shared bytes of a weight-gradient block (dwconv_strip_wgrad_kernel's layout): the reduction
    /// rows (long-axis taps x <see cref="LineStride"/>(threads) floats), the live bits and the block's transposed
    /// planes.</summary>
    internal static int WgradSharedBytes(int h, int w, int kh, int kw, int images, int threads)
    {
        bool tall = kh >= kw;
        int len = tall ? h : w, lines = tall ? w : h, kl = tall ? kh : kw, ks = tall ? kw : kh;
        long bytes = (long)kl * LineStride(threads) * sizeof(float) + ((ks + 1) & ~1) * sizeof(ulong)
                     + (long)images * PlaneFloats(lines, ks, len) * sizeof(float);
        return (int)Math.Min(int.MaxValue, bytes);
    }

    /// <summary>The plan of one branch's weight-gradient launch (<see cref="PlanKernel.DwConvStrip"/>: grid and block
    /// as <see cref="Plan"/>'s, one partial sum per block row of images, channel and tap in
    /// <see cref="LaunchPlan.WorkspaceBytes"/>, <see cref="LaunchPlan.Chunks"/> block rows), or a plan of
    /// <see cref="PlanKernel.None"/>: where <see cref="Plan"/> does not take the shape, or the shared memory or the
    /// partial sums (<see cref="MaxWgradWorkspaceBytes"/>) do not fit.</summary>
    internal static LaunchPlan WgradPlan(long n, long c, int h, int w, int kh, int kw, DeviceLimits limits)
    {
        var none = new LaunchPlan { Kernel = (int)PlanKernel.None };
        if (WgradOff) return none;
        var fwd = Plan(n, c, h, w, kh, kw, limits);
        if (fwd.KernelChoice != PlanKernel.DwConvStrip) return none;
        int lines = kh >= kw ? w : h, len = kh >= kw ? h : w, threads = (int)fwd.BlockX;
        int shared = WgradSharedBytes(h, w, kh, kw, Images(len, lines), threads);
        long workspace = (long)fwd.GridY * c * kh * kw * sizeof(float);
        if (shared > limits.SmemPerBlockOptin || workspace > MaxWgradWorkspaceBytes) return none;
        return fwd with
        {
            SmemDynamic = shared,
            OptIn = shared > limits.SmemPerBlockDefault ? 1 : 0,
            Chunks = (int)fwd.GridY,
            PerChunk = Images(len, lines),
            WorkspaceBytes = workspace,
        };
    }

    /// <summary>Whether the strip weight gradient runs every branch of this fused call on <paramref name="dev"/> (as
    /// <see cref="Takes"/>, for <see cref="WgradPlan"/>).</summary>
    internal static bool TakesWgrad(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w) =>
        !WgradOff && TakesEveryBranch(dev, branches, n, c, h, w, WgradKernel, WgradPlan);

    /// <summary>The weight gradients of a fused call's branches: one launch per branch into per-block partial sums,
    /// then column_sum_finalize_kernel adds them in block order into dws[b] (deterministic). A masked tap gets exactly
    /// 0. The caller has checked <see cref="TakesWgrad"/>.</summary>
    internal static void LaunchWeightGrad(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x,
                                          ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                          int n, int c, int h, int w)
    {
        var limits = DeviceLimits.For(dev);
        for (int b = 0; b < branches.Length; b++)
        {
            var br = branches[b];
            var plan = WgradPlan(n, c, h, w, br.Kh, br.Kw, limits);
            if (plan.KernelChoice != PlanKernel.DwConvStrip)
                throw new InvalidOperationException($"dwconv_strip_wgrad_kernel does not take N={n}, C={c}, {h}x{w}, {br.Kh}x{br.Kw}");
            var partials = dev.Allocate(plan.WorkspaceBytes);
            try
            {
                var a = new KernelArgs();
                a.AddOutput(partials, plan.WorkspaceBytes);
                a.Add(x);
                a.Add(dys[b]);
                a.Add(br.Mask);
                a.Add(n);
                a.Add(c);
                a.Add(h);
                a.Add(w);
                a.Add(br.Kh);
                a.Add(br.Kw);
                a.Launch(dev, WgradKernel, plan, Specialization(h, w, br.Kh, br.Kw));
                ReduceKernels.Finalize(dev, dws[b], partials, plan.Chunks, c * br.Kh * br.Kw);
            }
            finally { dev.Free(partials); }
        }
    }

    /// <summary>Whether the strip kernel runs every branch of this fused call on <paramref name="dev"/>: each branch's
    /// plan takes it, and on the emulator its library holds each branch's instance (the emulator compiles nothing; the
    /// shapes without an instance keep dwconv_fused_kernel there).</summary>
    internal static bool Takes(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w) =>
        !Off && TakesEveryBranch(dev, branches, n, c, h, w, Kernel, Plan);

    /// <summary>Whether <paramref name="plan"/> gives every branch (at least one) to the strip module's
    /// <paramref name="kernel"/> and, on the emulator, its library holds each branch's instance.</summary>
    private static bool TakesEveryBranch(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w,
                                         string kernel, Func<long, long, int, int, int, int, DeviceLimits, LaunchPlan> plan)
    {
        if (branches.Length == 0) return false;
        var limits = DeviceLimits.For(dev);
        foreach (var b in branches)
        {
            if (plan(n, c, h, w, b.Kh, b.Kw, limits).KernelChoice != PlanKernel.DwConvStrip) return false;
            if (dev is EmulatedDevice && !EmulatedDevice.HasInstance(kernel, Specialization(h, w, b.Kh, b.Kw))) return false;
        }
        return true;
    }

    /// <summary>The NVRTC definitions of one branch's module: SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH0, SLAK_DW_KW0 (the
    /// module's identity and cache key; also the emulator instance's name).</summary>
    internal static IReadOnlyList<string> Specialization(int h, int w, int kh, int kw) =>
        Specializations.GetOrAdd((h, w, kh, kw), static k =>
        [
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_H={k.H}"),
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_W={k.W}"),
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KH0={k.Kh}"),
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KW0={k.Kw}"),
        ]);

    private static readonly ConcurrentDictionary<(int H, int W, int Kh, int Kw), IReadOnlyList<string>> Specializations = new();

    /// <summary>One branch: y = (or += with <paramref name="accumulate"/>) the depthwise correlation of x with weight
    /// * mask over the live taps (flipped: the input gradient, x is dy and y is dx). The caller has checked
    /// <see cref="Takes"/>.</summary>
    internal static void Launch(IGpuDevice dev, DevicePtr y, DevicePtr x, in DwConvFusedBranch branch, int n, int c, int h,
                                int w, bool flip, bool accumulate)
    {
        var plan = Plan(n, c, h, w, branch.Kh, branch.Kw, DeviceLimits.For(dev));
        if (plan.KernelChoice != PlanKernel.DwConvStrip)
            throw new InvalidOperationException($"dwconv_strip_kernel does not take N={n}, C={c}, {h}x{w}, {branch.Kh}x{branch.Kw}");
        var a = new KernelArgs();
        long count = (long)n * c * h * w;
        if (accumulate) a.Add(y); else a.AddOutput(y, count * sizeof(float));
        a.Add(x);
        a.Add(branch.Weight);
        a.Add(branch.Mask);
        a.Add(n);
        a.Add(c);
        a.Add(h);
        a.Add(w);
        a.Add(branch.Kh);
        a.Add(branch.Kw);
        a.Add(flip ? 1 : 0);
        a.Add(accumulate ? 1 : 0);
        a.Launch(dev, Kernel, plan, Specialization(h, w, branch.Kh, branch.Kw));
    }
}
