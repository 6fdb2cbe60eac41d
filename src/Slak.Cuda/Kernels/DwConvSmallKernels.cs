// The small-map kernel of the depthwise family: cuda/kernels/dwconv_small.cu (forward, input gradient and inference
// sum of up to three branches on maps of at most kSmallMaxPixels pixels, SLaK's stages 3-4). It takes the arguments of
// dwconv_fused_kernel, so DwConvFusedKernels launches it with the same argument list whenever the family's plan
// (LaunchPlans.DwConvSmall, slak_plan_dwconv_small: the one dispatch predicate) chooses it; this class holds its name
// and the NVRTC definitions of its specialisation (the map and every branch's kernel size).
using System.Collections.Concurrent;
using System.Globalization;

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
    /// module's identity and cache key; the emulator runs the generic body unless its library holds that instance).</summary>
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

    private static (int Kh, int Kw) K(ReadOnlySpan<(int Kh, int Kw)> br, int b) => b < br.Length ? br[b] : (0, 0);

    private static readonly ConcurrentDictionary<(int, int, int, (int, int), (int, int), (int, int)), IReadOnlyList<string>>
        Specializations = new();
}
