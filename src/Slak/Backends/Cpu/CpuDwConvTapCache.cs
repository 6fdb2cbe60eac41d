// Live-tap lists of the sparse-aware CPU depthwise kernels, cached per mask tensor and rebuilt only when the mask's
// contents change. The mask tensor is one object for a whole training run (Masking edits it in place at each
// prune/regrow), so the cache compares the current contents with a private copy: a vectorised comparison of
// C*Kh*Kw floats per call, against C*Kh*Kw*N*H*W multiply-adds of the convolution. A content check (rather than a
// version counter someone must remember to bump) cannot go stale.
using System.Runtime.CompilerServices;

namespace Slak.Backends.Cpu;

/// <summary>Per-mask cache of <see cref="CpuDwConvTapList"/>s.</summary>
internal static class CpuDwConvTapCache
{
    private sealed class Entry
    {
        public float[] Copy = [];
        public CpuDwConvTapList? Taps;
        public long Builds;
    }

    private static readonly ConditionalWeakTable<Tensor, Entry> Cache = new();

    /// <summary>The live taps of <paramref name="mask"/> (C, 1, Kh, Kw), rebuilt only if its contents changed since
    /// the last call for the same tensor.</summary>
    internal static CpuDwConvTapList For(Tensor mask)
    {
        var entry = Cache.GetValue(mask, _ => new Entry());
        int c = mask.Size(0), kh = mask.Size(2), kw = mask.Size(3);
        var data = mask.Data;
        lock (entry)
        {
            var taps = entry.Taps;
            if (taps is not null && !taps.IsStale(taps.Version, c, kh, kw) && data.SequenceEqual(entry.Copy))
                return taps;
            entry.Builds++;
            if (entry.Copy.Length != data.Length) entry.Copy = new float[data.Length];
            data.CopyTo(entry.Copy);
            entry.Taps = taps = CpuDwConvTapList.FromMask(c, kh, kw, data, entry.Builds);
            return taps;
        }
    }

    /// <summary>How many times the list of <paramref name="mask"/> was built (tests check the reuse).</summary>
    internal static long Builds(Tensor mask) => Cache.TryGetValue(mask, out var e) ? e.Builds : 0;
}
