// Per-channel lists of the live taps of a masked depthwise filter, the data structure of the sparse-aware path.
// SLaK masks change once every 100-2000 optimizer steps while weights change every step, so the list stores only
// positions (built from the mask, tagged with the caller's mask version) and the kernels gather current weights
// at those positions on every call: pruned taps then cost nothing in forward, input-grad or weight-grad.
namespace Slak.Backends.Cpu;

/// <summary>Live-tap positions of a (C, Kh, Kw) mask, grouped by channel then kernel row, columns ascending.</summary>
internal sealed class CpuDwConvTapList
{
    private CpuDwConvTapList? _flipped;

    internal CpuDwConvTapList(int c, int kh, int kw, long version, int[] rowStart, int[] cols, int[] flat)
    {
        C = c;
        Kh = kh;
        Kw = kw;
        Version = version;
        RowStart = rowStart;
        Cols = cols;
        Flat = flat;
    }

    /// <summary>Channels.</summary>
    public int C { get; }

    /// <summary>Kernel height.</summary>
    public int Kh { get; }

    /// <summary>Kernel width.</summary>
    public int Kw { get; }

    /// <summary>The mask version this list was built from (the caller's counter, bumped whenever the mask
    /// changes).</summary>
    public long Version { get; }

    /// <summary>Number of live taps over all channels.</summary>
    public int Count => Cols.Length;

    /// <summary>Live fraction, Count / (C*Kh*Kw).</summary>
    public double Density => (double)Count / ((long)C * Kh * Kw);

    /// <summary>Taps of channel c, kernel row i are [RowStart[c*(Kh+1)+i], RowStart[c*(Kh+1)+i+1]).</summary>
    internal int[] RowStart { get; }

    /// <summary>Kernel column of each tap.</summary>
    internal int[] Cols { get; }

    /// <summary>Index of each tap in the (C, Kh, Kw) weight, c*Kh*Kw + i*Kw + j.</summary>
    internal int[] Flat { get; }

    /// <summary>True when this list was built for another mask version or another filter shape; rebuild then.</summary>
    public bool IsStale(long maskVersion, int c, int kh, int kw) =>
        maskVersion != Version || c != C || kh != Kh || kw != Kw;

    /// <summary>Builds the list of taps whose mask value is non-zero. <paramref name="mask"/> is (C, Kh, Kw).</summary>
    public static CpuDwConvTapList FromMask(int c, int kh, int kw, ReadOnlySpan<float> mask, long version)
    {
        CheckFilter(c, kh, kw);
        long len = (long)c * kh * kw;
        if (mask.Length != len)
            throw new ArgumentException($"mask must have C*Kh*Kw = {len} elements (C={c}, Kh={kh}, Kw={kw}), " +
                $"got {mask.Length}", nameof(mask));
        return Build(c, kh, kw, version, mask);
    }

    /// <summary>All C*Kh*Kw taps (the dense path uses the same kernels with this list). Lists are immutable and
    /// cached per filter shape, so dense calls allocate no tap arrays after the first.</summary>
    public static CpuDwConvTapList Dense(int c, int kh, int kw)
    {
        CheckFilter(c, kh, kw);
        return DenseCache.GetOrAdd((c, kh, kw),
            k => Build(k.C, k.Kh, k.Kw, long.MinValue, ReadOnlySpan<float>.Empty));
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int C, int Kh, int Kw), CpuDwConvTapList>
        DenseCache = new();

    /// <summary>The same taps for the spatially flipped kernel (tap (i, j) becomes (Kh-1-i, Kw-1-j)): what the
    /// input gradient correlates with. Cached.</summary>
    internal CpuDwConvTapList Flipped => _flipped ??= BuildFlipped();

    // An empty mask means every tap is live.
    private static CpuDwConvTapList Build(int c, int kh, int kw, long version, ReadOnlySpan<float> mask)
    {
        bool dense = mask.IsEmpty;
        int live = dense ? c * kh * kw : 0;
        if (!dense)
            foreach (float m in mask)
                if (m != 0f) live++;
        var rowStart = new int[c * (kh + 1)];
        var cols = new int[live];
        var flat = new int[live];
        int t = 0;
        for (int ch = 0; ch < c; ch++)
        {
            for (int i = 0; i < kh; i++)
            {
                rowStart[ch * (kh + 1) + i] = t;
                int rowBase = (ch * kh + i) * kw;
                for (int j = 0; j < kw; j++)
                {
                    if (!dense && mask[rowBase + j] == 0f) continue;
                    cols[t] = j;
                    flat[t] = rowBase + j;
                    t++;
                }
            }
            rowStart[ch * (kh + 1) + kh] = t;
        }
        return new CpuDwConvTapList(c, kh, kw, version, rowStart, cols, flat);
    }

    private CpuDwConvTapList BuildFlipped()
    {
        var rowStart = new int[RowStart.Length];
        var cols = new int[Count];
        var flat = new int[Count];
        int t = 0;
        for (int ch = 0; ch < C; ch++)
        {
            int rs = ch * (Kh + 1);
            for (int fi = 0; fi < Kh; fi++)
            {
                rowStart[rs + fi] = t;
                int i = Kh - 1 - fi;
                // Reversing the row's taps makes the flipped columns ascending.
                for (int s = RowStart[rs + i + 1] - 1; s >= RowStart[rs + i]; s--)
                {
                    cols[t] = Kw - 1 - Cols[s];
                    flat[t] = Flat[s];
                    t++;
                }
            }
            rowStart[rs + Kh] = t;
        }
        return new CpuDwConvTapList(C, Kh, Kw, Version, rowStart, cols, flat);
    }

    private static void CheckFilter(int c, int kh, int kw)
    {
        if (c <= 0) throw new ArgumentException($"C must be positive, got C={c}", nameof(c));
        if (kh <= 0 || (kh & 1) == 0)
            throw new ArgumentException($"kernel height must be positive and odd, got Kh={kh}", nameof(kh));
        if (kw <= 0 || (kw & 1) == 0)
            throw new ArgumentException($"kernel width must be positive and odd, got Kw={kw}", nameof(kw));
        if ((long)c * kh * kw > int.MaxValue)
            throw new ArgumentException($"C*Kh*Kw exceeds int.MaxValue (C={c}, Kh={kh}, Kw={kw})", nameof(c));
    }
}
