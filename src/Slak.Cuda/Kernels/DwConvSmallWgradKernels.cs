// Typed launcher for cuda/kernels/dwconv_small_wgrad.cu: the weight gradient of the fused depthwise branches on small
// maps (SLaK's stages 3-4), with the map and the branches compile-time through NVRTC definitions (the kernel-cache
// key), lanes over (image, line), and one partial per (chunk, channel, tap) reduced by column_sum_finalize_kernel as
// the general weight gradient does. DwConvFusedKernels.BackwardFilter sends a launch here when Applies says so.
using System.Collections.Concurrent;
using System.Globalization;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launcher of the small-map weight-gradient kernel.</summary>
internal static class DwConvSmallWgradKernels
{
    internal const string KernelName = "dwconv_small_wgrad_kernel";

    /// <summary>Threads of a block (the kernel's __launch_bounds__): four warps.</summary>
    internal const int Threads = 128;

    /// <summary>The largest map side the kernel holds in a lane's registers (SLAK_DWS_H, SLAK_DWS_W).</summary>
    internal const int MaxSide = 16;

    /// <summary>Below this batch a warp would reduce its accumulators after too few images; the general kernel
    /// runs.</summary>
    internal const int MinImages = 32;

    /// <summary>The most taps of all branches together: the block's static shared memory holds 4 warps' sums of
    /// every tap (16 bytes a tap), within the 48 KB a kernel may declare statically.</summary>
    internal const int MaxTaps = 3072;

    /// <summary>Image steps each warp walks before its reduction (the chunk of a block is 4 warps x this x the image
    /// slots of a warp).</summary>
    internal const int StepsPerWarp = 8;

    /// <summary>The dispatch predicate, one for the launcher and kernel-model: small maps (both sides at most
    /// <see cref="MaxSide"/>), one to three odd branches of at most <see cref="MaxTaps"/> taps together, at least
    /// <see cref="MinImages"/> images.</summary>
    internal static bool Applies(int n, int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches)
    {
        if (n < MinImages || h < 1 || w < 1 || h > MaxSide || w > MaxSide) return false;
        if (branches.Length is < 1 or > DwConvFusedKernels.MaxBranches) return false;
        long taps = 0;
        foreach (var (kh, kw) in branches)
        {
            if (kh < 1 || kw < 1 || (kh & 1) == 0 || (kw & 1) == 0) return false;
            taps += (long)kh * kw;
        }
        return taps <= MaxTaps;
    }

    /// <summary>Images of one block (grid y chunks of this many): 4 warps x <see cref="StepsPerWarp"/> steps x the
    /// image slots of a warp (32 / the longer side).</summary>
    internal static int ImagesPerChunk(int h, int w) => 4 * StepsPerWarp * (32 / Math.Max(h, w));

    /// <summary>Chunks of images (grid y).</summary>
    internal static int Chunks(int n, int h, int w)
    {
        int per = ImagesPerChunk(h, w);
        return (n + per - 1) / per;
    }

    /// <summary>Bytes of the partials: chunks x C x the taps of all branches.</summary>
    internal static long WorkspaceBytes(int n, int c, int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches)
    {
        long taps = 0;
        foreach (var (kh, kw) in branches) taps += (long)kh * kw;
        return (long)Chunks(n, h, w) * c * taps * sizeof(float);
    }

    /// <summary>Whether <paramref name="dev"/> can run the kernel specialised for this shape: always on a GPU (NVRTC
    /// compiles the instance); on the emulator only when its library holds the instance (the unspecialised module
    /// traps).</summary>
    internal static bool Available(IGpuDevice dev, int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches) =>
        dev is not EmulatedDevice || EmulatedDevice.HasInstance(KernelName, Specialization(h, w, branches));

    /// <summary>dws[b] = weight gradient of branch b given x and dys[b] (overwritten); a masked branch's pruned taps
    /// get exactly 0. The caller has checked <see cref="Applies"/> and <see cref="Available"/>.</summary>
    public static void BackwardFilter(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x,
                                      ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                      int n, int c, int h, int w) =>
        Launch(dev, dws, x, dys, branches, n, c, h, w, bf16: false);

    /// <summary>As <see cref="BackwardFilter"/> with x a 16-bit bf16 block (the activation held as bf16 under
    /// --precision bf16), read directly by the SLAK_DW_BF16=1 instance and widened exactly on load; dys, the masks and
    /// dws stay float32 and the accumulation is float32, so the result is bit-identical to <see cref="BackwardFilter"/>
    /// on the widened copy. The caller has checked <see cref="Applies"/> and <see cref="AvailableBf16"/>.</summary>
    public static void BackwardFilterBf16(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr xBf16,
                                          ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                          int n, int c, int h, int w) =>
        Launch(dev, dws, xBf16, dys, branches, n, c, h, w, bf16: true);

    /// <summary>Whether <paramref name="dev"/> can run the bf16 instance specialised for this shape (as
    /// <see cref="Available"/>).</summary>
    internal static bool AvailableBf16(IGpuDevice dev, int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches) =>
        dev is not EmulatedDevice || EmulatedDevice.HasInstance(KernelName, Bf16Specialization(h, w, branches));

    /// <summary>The definitions of the bf16 instance: <see cref="DwConvFusedKernels.Bf16Define"/> first (it changes
    /// the kernel's types; the emulator instance's name), then <see cref="Specialization"/>.</summary>
    internal static IReadOnlyList<string> Bf16Specialization(int h, int w, ReadOnlySpan<(int Kh, int Kw)> branches) =>
        [DwConvFusedKernels.Bf16Define, .. Specialization(h, w, branches)];

    private static void Launch(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x, ReadOnlySpan<DevicePtr> dys,
                               ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w, bool bf16)
    {
        ArgumentNullException.ThrowIfNull(dev);
        int nb = branches.Length;
        Span<(int Kh, int Kw)> k = stackalloc (int, int)[nb];
        for (int b = 0; b < nb; b++) k[b] = (branches[b].Kh, branches[b].Kw);
        if (!Applies(n, h, w, k))
            throw new ArgumentException($"the small-map weight gradient does not apply to N={n}, H={h}, W={w} with " +
                                        $"{nb} branches", nameof(branches));
        int chunks = Chunks(n, h, w), per = ImagesPerChunk(h, w);
        if (chunks > DeviceLimits.For(dev).MaxGridY)
            throw new ArgumentException($"N={n} needs {chunks} chunks, over the grid's y limit", nameof(n));
        var partials = dev.Allocate(WorkspaceBytes(n, c, h, w, k));
        try
        {
            var a = new KernelArgs();
            long offset = 0;
            Span<DevicePtr> parts = stackalloc DevicePtr[DwConvFusedKernels.MaxBranches];
            for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++)
            {
                parts[b] = b < nb ? partials.Offset(offset * sizeof(float)) : DevicePtr.Null;
                if (b < nb) offset += (long)chunks * c * k[b].Kh * k[b].Kw;
                a.Add(parts[b]);
            }
            a.Add(x);
            for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++) a.Add(b < nb ? dys[b] : DevicePtr.Null);
            for (int b = 0; b < DwConvFusedKernels.MaxBranches; b++) a.Add(b < nb ? branches[b].Mask : DevicePtr.Null);
            a.Add(n);
            a.Add(c);
            a.Add(per);
            var plan = new LaunchPlan
            {
                Kernel = (int)PlanKernel.Generic,
                GridX = (uint)c, GridY = (uint)chunks, GridZ = 1,
                BlockX = Threads, BlockY = 1, BlockZ = 1,
                Launches = 1,
            };
            a.Launch(dev, KernelName, plan, bf16 ? Bf16Specialization(h, w, k) : Specialization(h, w, k));
            for (int b = 0; b < nb; b++)
                ReduceKernels.Finalize(dev, dws[b], parts[b], chunks, c * k[b].Kh * k[b].Kw);
        }
        finally { dev.Free(partials); }
    }

    /// <summary>The NVRTC definitions of the instance: SLAK_DWS_H, SLAK_DWS_W, SLAK_DWS_NB, then SLAK_DWS_KH{b},
    /// SLAK_DWS_KW{b} per branch (this order is the emulator instance's name, see CMakeLists.txt).</summary>
    internal static IReadOnlyList<string> Specialization(int h, int w, ReadOnlySpan<(int Kh, int Kw)> br)
    {
        var key = (h, w, br.Length, K(br, 0), K(br, 1), K(br, 2));
        return Specializations.GetOrAdd(key, static key =>
        {
            var (hh, ww, count, k0, k1, k2) = key;
            (int Kh, int Kw)[] all = [k0, k1, k2];
            var defines = new List<string>
            {
                string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_H={hh}"),
                string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_W={ww}"),
                string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_NB={count}"),
            };
            for (int b = 0; b < count; b++)
            {
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_KH{b}={all[b].Kh}"));
                defines.Add(string.Create(CultureInfo.InvariantCulture, $"SLAK_DWS_KW{b}={all[b].Kw}"));
            }
            return defines;
        });
    }

    private static (int Kh, int Kw) K(ReadOnlySpan<(int Kh, int Kw)> br, int b) => b < br.Length ? br[b] : (0, 0);

    private static readonly ConcurrentDictionary<(int, int, int, (int, int), (int, int), (int, int)), IReadOnlyList<string>>
        Specializations = new();
}
