// Optimizer kernels of the CPU backend (family optim): the AdamW step with the sparse-training mask rules.
namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper,
                          bool maskMoments)
    {
        var item = new AdamWItem(param, grad, expAvg, expAvgSq, mask, hyper);
        Chunked(param.Numel, (s, n) => AdamWSegment(item, s, n, maskMoments));
    }

    /// <inheritdoc />
    public void AdamWStepGroup(IReadOnlyList<AdamWItem> items, bool maskMoments)
    {
        // Every parameter cut into segments of at most Chunk elements, all segments in one parallel region. Each
        // element's update depends on its own values only, so the bits are those of AdamWStep per parameter.
        var segments = new List<(int Item, int Start, int Length)>();
        long total = 0;
        for (int i = 0; i < items.Count; i++)
        {
            int numel = checked((int)items[i].Param.Numel);
            for (int s = 0; s < numel; s += Chunk) segments.Add((i, s, Math.Min(Chunk, numel - s)));
            total += numel;
        }
        CpuParallel.For(0, segments.Count, total, k =>
        {
            var (i, s, n) = segments[k];
            AdamWSegment(items[i], s, n, maskMoments);
        });
    }

    /// <summary>The AdamW update of elements [s, s + n) of one parameter.</summary>
    private static void AdamWSegment(in AdamWItem item, int s, int n, bool maskMoments)
    {
        var h = item.Hyper;
        float bc1 = 1f - MathF.Pow(h.Beta1, h.Step), bc2Sqrt = MathF.Sqrt(1f - MathF.Pow(h.Beta2, h.Step));
        float stepSize = h.Lr / bc1, decay = 1f - h.Lr * h.WeightDecay;
        bool masked = item.Mask is not null;
        var p = S(item.Param).Slice(s, n);
        var g = S(item.Grad).Slice(s, n);
        var m = S(item.ExpAvg).Slice(s, n);
        var v = S(item.ExpAvgSq).Slice(s, n);
        var k = masked ? S(item.Mask!).Slice(s, n) : default;
        AdamWSpan(p, g, m, v, k, masked, masked && maskMoments, h.Beta1, h.Beta2, h.Eps, stepSize, decay, bc2Sqrt);
    }

    /// <summary>The AdamW update of one span: the same IEEE operations in the same order in SIMD lanes as in the
    /// scalar tail, so results do not depend on where a span starts.</summary>
    private static void AdamWSpan(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, ReadOnlySpan<float> k,
                                  bool masked, bool maskMoments, float beta1, float beta2, float eps, float stepSize,
                                  float decay, float bc2Sqrt)
    {
        int n = p.Length, i = 0, w = System.Numerics.Vector<float>.Count;
        float c1 = 1 - beta1, c2 = 1 - beta2;
        var vb1 = new System.Numerics.Vector<float>(beta1);
        var vb2 = new System.Numerics.Vector<float>(beta2);
        var vc1 = new System.Numerics.Vector<float>(c1);
        var vc2 = new System.Numerics.Vector<float>(c2);
        var vDecay = new System.Numerics.Vector<float>(decay);
        var vStep = new System.Numerics.Vector<float>(stepSize);
        var vBc2 = new System.Numerics.Vector<float>(bc2Sqrt);
        var vEps = new System.Numerics.Vector<float>(eps);
        for (; i + w <= n; i += w)
        {
            var gi = new System.Numerics.Vector<float>(g.Slice(i, w));
            var ki = masked ? new System.Numerics.Vector<float>(k.Slice(i, w)) : default;
            if (maskMoments) gi *= ki;
            var mi = vb1 * new System.Numerics.Vector<float>(m.Slice(i, w)) + vc1 * gi;
            var vi = vb2 * new System.Numerics.Vector<float>(v.Slice(i, w)) + vc2 * gi * gi;
            if (maskMoments) { mi *= ki; vi *= ki; }
            mi.CopyTo(m.Slice(i, w));
            vi.CopyTo(v.Slice(i, w));
            var pi = new System.Numerics.Vector<float>(p.Slice(i, w)) * vDecay
                     - vStep * mi / (System.Numerics.Vector.SquareRoot(vi) / vBc2 + vEps);
            (masked ? pi * ki : pi).CopyTo(p.Slice(i, w));
        }
        for (; i < n; i++)
        {
            float gi = g[i];
            if (maskMoments) gi *= k[i];
            float mi = beta1 * m[i] + c1 * gi;
            float vi = beta2 * v[i] + c2 * gi * gi;
            if (maskMoments) { mi *= k[i]; vi *= k[i]; }
            m[i] = mi;
            v[i] = vi;
            float pi = p[i] * decay - stepSize * mi / (MathF.Sqrt(vi) / bc2Sqrt + eps);
            p[i] = masked ? pi * k[i] : pi;
        }
    }
}
