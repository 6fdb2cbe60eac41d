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
/// mask change) and gathered into a <see cref="DwPass"/> with the current weights on every call.</summary>
internal sealed class DwMergedTaps
{
    private readonly DwTapList[] _lists;

    /// <summary>Sources[t * Branches + b]: index of merged tap t in branch b's (C, Kh_b, Kw_b) weight, or -1.</summary>
    private readonly int[] _sources;

    private DwMergedTaps(DwTapList[] lists, DwTapList taps, int[] sources)
    {
        _lists = lists;
        Taps = taps;
        _sources = sources;
    }

    /// <summary>The merged taps: Kh and Kw are the largest branch height and width.</summary>
    public DwTapList Taps { get; }

    private static readonly ConditionalWeakTable<DwTapList, DwMergedTaps> Cache = new();

    /// <summary>The merged list of <paramref name="lists"/> (same C; odd sizes), from a cache keyed by the first list
    /// and checked against the others by reference.</summary>
    public static DwMergedTaps For(DwTapList[] lists)
    {
        if (Cache.TryGetValue(lists[0], out var hit) && hit._lists.AsSpan().SequenceEqual(lists)) return hit;
        var built = Build(lists);
        Cache.AddOrUpdate(lists[0], built);
        return built;
    }

    /// <summary>A pass over the merged taps with weights sum_b w_b * mask_b (mask empty: 1), in pooled storage
    /// (<see cref="DwPass.Release"/>).</summary>
    public DwPass Gather(IReadOnlyList<DwBranch> branches)
    {
        int nb = _lists.Length, count = Taps.Count;
        var wts = ArrayPool<float>.Shared.Rent(Math.Max(1, count));
        Array.Clear(wts, 0, count);
        for (int b = 0; b < nb; b++)
        {
            var w = branches[b].Weight.Span;
            var mask = branches[b].Mask.Span;
            for (int t = 0; t < count; t++)
            {
                int s = _sources[t * nb + b];
                if (s < 0) continue;
                wts[t] += mask.IsEmpty ? w[s] : w[s] * mask[s];
            }
        }
        return new DwPass(Taps.Kh, Taps.Kw, Taps, wts);
    }

    private static DwMergedTaps Build(DwTapList[] lists)
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
        var sources = new List<int>();
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
                    cols.Add(j);
                    flat.Add((ch * kh + i) * kw + j);
                    for (int b = 0; b < nb; b++) sources.Add(rowSrc[j * nb + b]);
                }
            }
            rowStart[ch * (kh + 1) + kh] = cols.Count;
        }
        var taps = new DwTapList(c, kh, kw, long.MinValue, rowStart, cols.ToArray(), flat.ToArray());
        return new DwMergedTaps((DwTapList[])lists.Clone(), taps, sources.ToArray());
    }
}
