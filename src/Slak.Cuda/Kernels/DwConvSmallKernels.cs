// The small-map kernel of the depthwise family: cuda/kernels/dwconv_small.cu (forward, input gradient and inference
// sum of up to three branches on maps of at most kSmallMaxPixels pixels, SLaK's stages 3-4). It takes the arguments of
// dwconv_fused_kernel, so DwConvFusedKernels launches it with the same argument list whenever the family's plan
// (LaunchPlans.DwConvSmall, slak_plan_dwconv_small: the one dispatch predicate) chooses it; this class holds its name
// and the NVRTC definitions of its specialisation (the map and every branch's kernel size).
// Its bf16 instantiation (SLAK_DW_BF16=1: dw_store_t is slak_bf16, 16-bit input and outputs, float32 weights, masks and
// accumulation, outputs rounded to nearest even) is launched here (TryForwardBf16, TryForwardSumBf16) by the CUDA
// backend under --precision bf16 where the plan takes the small kernel (docs/mixed-precision.md).
using System.Collections.Concurrent;
using System.Globalization;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>The small-map depthwise kernel: its name and specialisation.</summary>
internal static class DwConvSmallKernels
{
    /// <summary>The kernel's name in dwconv_small.cu.</summary>
    internal const string Kernel = "dwconv_small_kernel";

    /// <summary>The kernel's source file, relative to cuda/.</summary>
    internal const string File = "kernels/dwconv_small.cu";

    /// <summary>The NVRTC definitions that specialise dwconv_small_kernel for an <paramref name="h"/> x
    /// <paramref name="w"/> map and these branches: SLAK_DWS_H, SLAK_DWS_W, then SLAK_DW_KH{b}, SLAK_DW_KW{b} (the
    /// module's identity and cache key; the emulator runs the generic body unless its library holds that
    /// instance).</summary>
    internal static IReadOnlyList<string> Specialization(int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(h, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(w, 1);
        if (branches.Length is < 1 or > DwConvFusedKernels.MaxBranches)
            throw new ArgumentException($"1 to {DwConvFusedKernels.MaxBranches} branches are required, got {branches.Length}",
                                        nameof(branches));
        var key = (h, w, branches.Length, K(branches, 0), K(branches, 1), K(branches, 2));
        return Specializations.GetOrAdd(key, static k =>
        {
            var (hh, ww, count, k0, k1, k2) = k;
            (int Kh, int Kw)[] all = [k0, k1, k2];
            var defines = new List<string>
            {
                string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_H={hh}"),
                string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_W={ww}"),
            };
            for (int b = 0; b < count; b++)
            {
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KH{b}={all[b].Kh}"));
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KW{b}={all[b].Kw}"));
            }
            return defines;
        });
    }

    /// <summary>The specialisation for the branches of a fused launch.</summary>
    internal static IReadOnlyList<string> Specialization(int h, int w, ReadOnlySpan<DwConvFusedBranch> branches)
    {
        Span<(int, int)> ks = stackalloc (int, int)[branches.Length];
        for (int b = 0; b < branches.Length; b++) ks[b] = (branches[b].Kh, branches[b].Kw);
        return Specialization(h, w, ks);
    }

    /// <summary>The specialisation of the bf16 instantiation: <see cref="DwConvFusedKernels.Bf16Define"/> first (the
    /// emulator's library holds the instance of that definition alone), then <see cref="Specialization(int, int,
    /// ReadOnlySpan{DwConvFusedBranch})"/>'s.</summary>
    internal static IReadOnlyList<string> Bf16Specialization(int h, int w, ReadOnlySpan<DwConvFusedBranch> branches) =>
        [DwConvFusedKernels.Bf16Define, .. Specialization(h, w, branches)];

    /// <summary>Whether <paramref name="dev"/> runs the bf16 instantiation: always on a GPU (NVRTC compiles it); on the
    /// emulator when its library holds the <c>SLAK_DW_BF16=1</c> instance (the float32 body must never read 16-bit
    /// buffers).</summary>
    internal static bool Bf16Available(IGpuDevice dev) =>
        dev is not EmulatedDevice || EmulatedDevice.HasInstance(Kernel, [DwConvFusedKernels.Bf16Define]);

    /// <summary>ys[b] (bf16) = depthwise conv of x (bf16, N x C x H x W) with branch b (float32 weight * mask), all
    /// outputs overwritten; false (nothing launched) where the plan does not take the small kernel or the device
    /// lacks the bf16 instantiation.</summary>
    public static bool TryForwardBf16(IGpuDevice dev, ReadOnlySpan<DevicePtr> ys, DevicePtr x,
                                      ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        if (ys.Length != branches.Length)
            throw new ArgumentException($"{ys.Length} outputs for {branches.Length} branches", nameof(ys));
        return TryLaunchBf16(dev, ys, x, branches, n, c, h, w, sum: false);
    }

    /// <summary>y (bf16) = sum over branches of the depthwise conv of x (bf16) with branch b (inference); false
    /// (nothing launched) where the plan does not take the small kernel or the device lacks the bf16
    /// instantiation.</summary>
    public static bool TryForwardSumBf16(IGpuDevice dev, DevicePtr y, DevicePtr x, ReadOnlySpan<DwConvFusedBranch> branches,
                                         int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        return TryLaunchBf16(dev, [y], x, branches, n, c, h, w, sum: true);
    }

    // The arguments of dwconv_fused_kernel (DwConvFusedKernels' launch), forward mode (no flip).
    private static bool TryLaunchBf16(IGpuDevice dev, ReadOnlySpan<DevicePtr> outs, DevicePtr x,
                                      ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w, bool sum)
    {
        if (branches.Length is < 1 or > DwConvFusedKernels.MaxBranches)
            throw new ArgumentException($"1 to {DwConvFusedKernels.MaxBranches} branches are required, got {branches.Length}",
                                        nameof(branches));
        var plan = DwConvFusedKernels.Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice != PlanKernel.DwConvSmall || DwConvFusedKernels.PerBranchOnly || !Bf16Available(dev))
            return false;
        int nb = branches.Length, haloH = 0, haloW = 0;
        Span<DwConvFusedBranch> at = stackalloc DwConvFusedBranch[DwConvFusedKernels.MaxBranches];
        branches.CopyTo(at);
        foreach (var b in branches)
        {
            haloH = Math.Max(haloH, b.Kh / 2);
            haloW = Math.Max(haloW, b.Kw / 2);
        }
        var p = new DwFusedParams(n, c, h, w, nb, at[0].Kh, at[0].Kw, at[1].Kh, at[1].Kw, at[2].Kh, at[2].Kw,
                                  haloH, haloW, 0, sum ? 1 : 0);
        var a = new KernelArgs();
        for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++)
            a.Add(b < nb && (!sum || b == 0) ? outs[sum ? 0 : b] : DevicePtr.Null);
        for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++) a.Add(b < nb ? x : DevicePtr.Null);
        for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++) a.Add(at[b].Weight);
        for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++) a.Add(at[b].Mask);
        a.Add(p);
        a.Launch(dev, Kernel, plan, Bf16Specialization(h, w, branches));
        return true;
    }

    private static (int Kh, int Kw) K(ReadOnlySpan<(int Kh, int Kw)> br, int b) => b < br.Length ? br[b] : (0, 0);

    private static readonly ConcurrentDictionary<(int, int, int, (int, int), (int, int), (int, int)), IReadOnlyList<string>>
        Specializations = new();
}
