// The sum-only forward (inference, BatchNorms folded) as ONE correlation. Every branch is centred ("same" padding,
// odd kernels), so the sum of the branch outputs is the correlation with one kernel of the largest height and the
// largest width whose taps are the union of the branches' live taps and whose weight at a tap is the sum of the
// branch weights there. For SLaK's M x N + N x M + N x N this is a cross: the N x N branch and the N x N centre the
// two strips share collapse into one set of taps (2MN - N^2 taps instead of 2MN + N^2), and one output is written
// instead of three accumulations. On small maps (SLaK-T stage 4: 7x7 under a 13 x 13 cross) the clipped cross
// touches at most 45 input pixels per output where the three branches touch up to 95.
using System.Buffers;
using System.Runtime.CompilerServices;

namespace Slak.Backends.Cpu;

/// <summary>The union of several branches' tap lists, with, for every merged tap, where each branch keeps its
/// weight. Built once per combination of tap lists (lists are immutable and cached per mask, so this is once per
/// mask change) and gathered into a <see cref="CpuDwConvPass"/> with the current weights on every call.</summary>
internal sealed class CpuDwConvMergedTaps
{
    private readonly CpuDwConvTapList[] _lists;

    /// <summary>Per branch b: merged tap _dst[b][k] takes weight _src[b][k] of branch b's (C, Kh_b, Kw_b)
    /// weight.</summary>
    private readonly int[][] _dst, _src;

    private CpuDwConvMergedTaps(CpuDwConvTapList[] lists, CpuDwConvTapList taps, int[][] dst, int[][] src)
    {
        _lists = lists;
        Taps = taps;
        _dst = dst;
        _src = src;
    }

    /// <summary>The merged taps: Kh and Kw are the largest branch height and width.</summary>
    public CpuDwConvTapList Taps { get; }

    private static readonly ConditionalWeakTable<CpuDwConvTapList, CpuDwConvMergedTaps> Cache = new();

    /// <summary>The merged list of <paramref name="lists"/> (same C; odd sizes), from a cache keyed by the first list
    /// and checked against the others by reference.</summary>
    public static CpuDwConvMergedTaps For(CpuDwConvTapList[] lists)
    {
        if (Cache.TryGetValue(lists[0], out var hit) && hit._lists.AsSpan().SequenceEqual(lists)) return hit;
        var built = Build(lists);
        Cache.AddOrUpdate(lists[0], built);
        return built;
    }

    /// <summary>A pass over the merged taps with weights sum_b w_b * mask_b (mask empty: 1), in pooled storage
    /// (<see cref="CpuDwConvPass.Release"/>). One thread: on SLaK-T's stage 4 (105k merged taps) a fork/join cost more
    /// than it saved.</summary>
    public unsafe CpuDwConvPass Gather(IReadOnlyList<CpuDwConvBranch> branches)
    {
        int count = Taps.Count;
        var wts = ArrayPool<float>.Shared.Rent(Math.Max(1, count));
        Array.Clear(wts, 0, count);
        fixed (float* pwts = wts)
            for (int b = 0; b < _lists.Length; b++)
            {
                var w = branches[b].Weight.Span;
                var mask = branches[b].Mask.Span;
                int len = _dst[b].Length;
                fixed (int* dst = _dst[b], src = _src[b])
                fixed (float* pw = w, pm = mask)
                {
                    if (pm == null)
                        for (int k = 0; k < len; k++) pwts[dst[k]] += pw[src[k]];
                    else
                        for (int k = 0; k < len; k++) pwts[dst[k]] += pw[src[k]] * pm[src[k]];
                }
            }
        return new CpuDwConvPass(Taps.Kh, Taps.Kw, Taps, wts);
    }

    private static CpuDwConvMergedTaps Build(CpuDwConvTapList[] lists)
    {
        int nb = lists.Length, c = lists[0].C, kh = 0, kw = 0;
        foreach (var l in lists)
        {
            if (l.C != c) throw new ArgumentException($"branches have different channel counts ({c}, {l.C})");
            kh = Math.Max(kh, l.Kh);
            kw = Math.Max(kw, l.Kw);
        }
        var rowStart = new int[c * (kh + 1)];
        var cols = new List<int>();
        var flat = new List<int>();
        var dst = new List<int>[nb];
        var src = new List<int>[nb];
        for (int b = 0; b < nb; b++)
        {
            dst[b] = [];
            src[b] = [];
        }
        var rowSrc = new int[kw * nb];
        var live = new bool[kw];
        for (int ch = 0; ch < c; ch++)
        {
            for (int i = 0; i < kh; i++)
            {
                rowStart[ch * (kh + 1) + i] = cols.Count;
                Array.Fill(rowSrc, -1);
                Array.Clear(live);
                for (int b = 0; b < nb; b++)
                {
                    var l = lists[b];
                    int bi = i - (kh - l.Kh) / 2, dj = (kw - l.Kw) / 2;
                    if (bi < 0 || bi >= l.Kh) continue;
                    int k1 = l.Kh + 1;
                    for (int t = l.RowStart[ch * k1 + bi]; t < l.RowStart[ch * k1 + bi + 1]; t++)
                    {
                        int j = l.Cols[t] + dj;
                        live[j] = true;
                        rowSrc[j * nb + b] = l.Flat[t];
                    }
                }
                for (int j = 0; j < kw; j++)
                {
                    if (!live[j]) continue;
                    for (int b = 0; b < nb; b++)
                    {
                        if (rowSrc[j * nb + b] < 0) continue;
                        dst[b].Add(cols.Count);
                        src[b].Add(rowSrc[j * nb + b]);
                    }
                    cols.Add(j);
                    flat.Add((ch * kh + i) * kw + j);
                }
            }
            rowStart[ch * (kh + 1) + kh] = cols.Count;
        }
        var taps = new CpuDwConvTapList(c, kh, kw, long.MinValue, rowStart, cols.ToArray(), flat.ToArray());
        return new CpuDwConvMergedTaps((CpuDwConvTapList[])lists.Clone(), taps, dst.Select(d => d.ToArray()).ToArray(),
            src.Select(x => x.ToArray()).ToArray());
    }
}
