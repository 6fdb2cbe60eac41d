// The decomposed depthwise convolution on small maps (H*W <= MaxPixels: the 1x1 maps of slak_nano's last stage).
// There the plane engine's work per (image, channel) item -- padding, packing, per-row micro-kernel calls,
// clipping the tap rows -- costs far more than the few in-bounds taps, so a call cost ~0.4 ms whatever its FLOPs.
// Here the plan is the list of in-bounds (output pixel, input pixel, tap) pairs of the map and kernel size, built
// once per shape and cached; a call gathers each branch's weights (times its mask, at its live taps) per pair across
// channels, and per image transposes the planes to pixel-major rows of C values, so every pair is one multiply-add
// of C-long rows: the multiply-adds are exactly the in-bounds taps (dense over channels). The weight gradient sums
// per image group (a fixed number of groups for a thread count) and adds the groups in order: deterministic.
// Measured with `fusion-ab` (slak_nano shapes, batch 128, density 0.6, forward + both gradients, loaded machine):
// 1x1 maps 11-14x faster than the plane engine; 2x2 maps 2x slower in the quieter rounds and 4x4 maps 2-3x slower
// (dense over masked taps, scalar transposes, row calls of 62-124 floats), hence the bound of 1 pixel.
using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

/// <summary>Small-map path of <see cref="CpuDwConvDecomposed"/>: forward, input gradient and weight gradient.</summary>
internal static unsafe class CpuDwConvSmallMap
{
    /// <summary>Maps of at most this many pixels take this path.</summary>
    internal const int MaxPixels = 1;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_SMALLMAP=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_SMALLMAP") != "0";

    /// <summary>True when an H x W map takes this path.</summary>
    internal static bool Applies(int h, int w) => Enabled && (long)h * w <= MaxPixels;

    /// <summary>The in-bounds pairs of an H x W map and a Kh x Kw "same" kernel: output pixel, input pixel, tap
    /// index i*Kw + j, ordered by output pixel then tap.</summary>
    private sealed record Plan(int[] Out, int[] In, int[] Tap);

    private static readonly ConcurrentDictionary<(int H, int W, int Kh, int Kw), Plan> Plans = new();

    private static Plan PlanFor(int h, int w, int kh, int kw) => Plans.GetOrAdd((h, w, kh, kw), static k =>
    {
        var o = new List<int>();
        var inp = new List<int>();
        var tap = new List<int>();
        for (int oy = 0; oy < k.H; oy++)
            for (int ox = 0; ox < k.W; ox++)
                for (int i = 0; i < k.Kh; i++)
                {
                    int iy = oy + i - k.Kh / 2;
                    if (iy < 0 || iy >= k.H) continue;
                    for (int j = 0; j < k.Kw; j++)
                    {
                        int ix = ox + j - k.Kw / 2;
                        if (ix < 0 || ix >= k.W) continue;
                        o.Add(oy * k.W + ox);
                        inp.Add(iy * k.W + ix);
                        tap.Add(i * k.Kw + j);
                    }
                }
        return new Plan([.. o], [.. inp], [.. tap]);
    });

    /// <summary>Per tap of a branch (C*Kh*Kw): 1 where the tap is live (in its tap list, or mask != 0), else 0;
    /// null when every tap is live.</summary>
    private static float[]? LiveTaps(in CpuDwConvBranch br, int c)
    {
        if (br.Taps is { } taps)
        {
            var live = new float[c * br.Kh * br.Kw];
            foreach (int f in taps.Flat) live[f] = 1f;
            return live;
        }
        if (br.Mask.IsEmpty) return null;
        var m = br.Mask.Span;
        var l = new float[m.Length];
        for (int i = 0; i < m.Length; i++) l[i] = m[i] != 0f ? 1f : 0f;
        return l;
    }

    /// <summary>Pair-major weights: wp[p*C + ch] = weight[ch, tap(p)] (times the mask, zero at dead taps).</summary>
    private static float[] GatherWeights(in CpuDwConvBranch br, int c, Plan plan)
    {
        int kk = br.Kh * br.Kw, pairs = plan.Tap.Length;
        var w = br.Weight.Span;
        var mask = br.Mask.Span;
        var live = br.Taps is not null ? LiveTaps(br, c) : null;
        var wp = new float[Math.Max(1, pairs * c)];
        for (int p = 0; p < pairs; p++)
        {
            int t = plan.Tap[p];
            for (int ch = 0; ch < c; ch++)
            {
                int f = ch * kk + t;
                float v = w[f];
                if (!mask.IsEmpty) v *= mask[f];
                if (live is not null) v *= live[f];
                wp[p * c + ch] = v;
            }
        }
        return wp;
    }

    // (C, HW) plane block of one image <-> (HW, C) rows.
    private static void ToPixelRows(float* src, int c, int hw, float* dst)
    {
        if (hw == 1) { new ReadOnlySpan<float>(src, c).CopyTo(new Span<float>(dst, c)); return; }
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) dst[p * c + ch] = src[ch * hw + p];
    }

    private static void FromPixelRows(float* src, int c, int hw, float* dst)
    {
        if (hw == 1) { new ReadOnlySpan<float>(src, c).CopyTo(new Span<float>(dst, c)); return; }
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) dst[ch * hw + p] = src[p * c + ch];
    }

    // rows[dstRow] += rows2[srcRow] * wp[pair] for every pair (C-long rows).
    private static void Correlate(Plan plan, float[] wp, float* src, float* dst, int c, bool transposed)
    {
        int[] from = transposed ? plan.Out : plan.In, to = transposed ? plan.In : plan.Out;
        fixed (float* pw = wp)
            for (int p = 0; p < from.Length; p++)
            {
                var d = new Span<float>(dst + (nint)to[p] * c, c);
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(src + (nint)from[p] * c, c),
                    new ReadOnlySpan<float>(pw + (nint)p * c, c), d, d);
            }
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum. Pointers to N*C*H*W tensors.</summary>
    internal static void Forward(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x, nint[] ys, nint ysum)
    {
        int hw = h * w, block = c * hw;
        var plans = new Plan[branches.Count];
        var wps = new float[branches.Count][];
        for (int b = 0; b < plans.Length; b++)
        {
            plans[b] = PlanFor(h, w, branches[b].Kh, branches[b].Kw);
            wps[b] = GatherWeights(branches[b], c, plans[b]);
        }
        CpuDwConvEngine.ForChunks(n, (lo, hi) =>
        {
            float* xt = CpuDwConvEngine.Scratch(3 * block + 32);
            float* yt = CpuDwConvEngine.AlignUp(xt + block);
            float* st = CpuDwConvEngine.AlignUp(yt + block);
            for (int img = lo; img < hi; img++)
            {
                nint off = (nint)img * block * sizeof(float);
                ToPixelRows((float*)(x + off), c, hw, xt);
                for (int b = 0; b < plans.Length; b++)
                {
                    // Each branch into its own rows, then added to the sum: the same operations whichever outputs
                    // are requested (a branch's output and the sum do not depend on the others being written).
                    float* dst = b == 0 ? st : yt;
                    new Span<float>(dst, block).Clear();
                    Correlate(plans[b], wps[b], xt, dst, c, transposed: false);
                    if (b < ys.Length && ys[b] != 0) FromPixelRows(dst, c, hw, (float*)(ys[b] + off));
                    if (b > 0 && ysum != 0)
                        TensorPrimitives.Add(new ReadOnlySpan<float>(st, block), new ReadOnlySpan<float>(yt, block), new Span<float>(st, block));
                }
                if (ysum != 0) FromPixelRows(st, c, hw, (float*)(ysum + off));
            }
        });
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b].</summary>
    internal static void BackwardData(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint[] dys, nint dx)
    {
        int hw = h * w, block = c * hw;
        var plans = new Plan[branches.Count];
        var wps = new float[branches.Count][];
        for (int b = 0; b < plans.Length; b++)
        {
            plans[b] = PlanFor(h, w, branches[b].Kh, branches[b].Kw);
            wps[b] = GatherWeights(branches[b], c, plans[b]);
        }
        CpuDwConvEngine.ForChunks(n, (lo, hi) =>
        {
            float* gt = CpuDwConvEngine.Scratch(2 * block + 16);
            float* dt = CpuDwConvEngine.AlignUp(gt + block);
            for (int img = lo; img < hi; img++)
            {
                nint off = (nint)img * block * sizeof(float);
                new Span<float>(dt, block).Clear();
                for (int b = 0; b < plans.Length; b++)
                {
                    ToPixelRows((float*)(dys[b] + off), c, hw, gt);
                    Correlate(plans[b], wps[b], gt, dt, c, transposed: true);
                }
                FromPixelRows(dt, c, hw, (float*)(dx + off));
            }
        });
    }

    /// <summary>dws[b] = weight gradient of branch b; with <paramref name="skipMasked"/> taps that are not live are
    /// exactly 0, otherwise the dense gradient (taps that never meet the map are 0 either way).</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x,
        nint[] dys, nint[] dws, bool skipMasked)
    {
        int hw = h * w, block = c * hw;
        var plans = new Plan[branches.Count];
        var offsets = new int[branches.Count + 1];
        for (int b = 0; b < plans.Length; b++)
        {
            plans[b] = PlanFor(h, w, branches[b].Kh, branches[b].Kw);
            offsets[b + 1] = offsets[b] + plans[b].Tap.Length * c;
        }
        int total = offsets[^1];
        int groups = Math.Max(1, Math.Min(n, CpuParallel.Threads));
        int per = (n + groups - 1) / groups;
        var parts = new float[groups][];
        CpuParallel.For(0, groups, g =>
        {
            var acc = new float[Math.Max(1, total)];
            float* xt = CpuDwConvEngine.Scratch(2 * block + 16);
            float* gt = CpuDwConvEngine.AlignUp(xt + block);
            fixed (float* pacc = acc)
                for (int img = g * per, end = Math.Min(n, img + per); img < end; img++)
                {
                    nint off = (nint)img * block * sizeof(float);
                    ToPixelRows((float*)(x + off), c, hw, xt);
                    for (int b = 0; b < plans.Length; b++)
                    {
                        ToPixelRows((float*)(dys[b] + off), c, hw, gt);
                        var plan = plans[b];
                        float* ab = pacc + offsets[b];
                        for (int p = 0; p < plan.Tap.Length; p++)
                        {
                            var d = new Span<float>(ab + (nint)p * c, c);
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(xt + (nint)plan.In[p] * c, c),
                                new ReadOnlySpan<float>(gt + (nint)plan.Out[p] * c, c), d, d);
                        }
                    }
                }
            parts[g] = acc;
        });
        var sum = parts[0];
        for (int g = 1; g < groups; g++) TensorPrimitives.Add(sum, parts[g], sum);
        for (int b = 0; b < plans.Length; b++)
        {
            var br = branches[b];
            var plan = plans[b];
            int kk = br.Kh * br.Kw;
            var dw = new Span<float>((float*)dws[b], c * kk);
            dw.Clear();
            for (int p = 0; p < plan.Tap.Length; p++)
                for (int ch = 0; ch < c; ch++) dw[ch * kk + plan.Tap[p]] += sum[offsets[b] + p * c + ch];
            if (!skipMasked) continue;
            var live = LiveTaps(br, c);
            if (live is null) continue;
            for (int i = 0; i < dw.Length; i++)
                if (live[i] == 0f) dw[i] = 0f;
        }
    }
}
