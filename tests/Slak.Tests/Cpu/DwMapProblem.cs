// The random problem of the depthwise map-path tests (CpuDwConvTinyMapTests, CpuDwConvPlane16Tests): input,
// weights, masks and output gradients, one run of every pass of CpuDwConvDecomposed on it, and the check of that run
// against the float64 reference (DwRef) with masked weight-gradient taps exactly 0.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

internal sealed record DwMapOutputs(float[][] Ys, float[] Sum, float[] Dx, float[][] Dws, float[][] DenseDws)
{
    public void AssertIdentical(DwMapOutputs other, string what)
    {
        for (int b = 0; b < Ys.Length; b++)
        {
            Assert.That(other.Ys[b], Is.EqualTo(Ys[b]), $"forward branch {b}: {what}");
            Assert.That(other.Dws[b], Is.EqualTo(Dws[b]), $"masked weight gradient branch {b}: {what}");
            Assert.That(other.DenseDws[b], Is.EqualTo(DenseDws[b]), $"dense weight gradient branch {b}: {what}");
        }
        Assert.That(other.Sum, Is.EqualTo(Sum), $"forward sum: {what}");
        Assert.That(other.Dx, Is.EqualTo(Dx), $"input gradient: {what}");
    }
}

/// <summary>Random input, weights, masks (branch 0 through a tap list, the others through the mask alone) and
/// output gradients.</summary>
internal sealed class DwMapProblem
{
    private readonly int _n, _c, _h, _w;

    public DwMapProblem(Random rng, int n, int c, int h, int w, (int Kh, int Kw)[] sizes, double density)
    {
        (_n, _c, _h, _w) = (n, c, h, w);
        X = DwRef.Random(rng, n * c * h * w);
        foreach (var (kh, kw) in sizes)
        {
            var wt = DwRef.Random(rng, c * kh * kw);
            var mask = DwRef.Mask(rng, wt.Length, density);
            Masks.Add(mask);
            Branches.Add(new CpuDwConvBranch(kh, kw, wt, mask,
                Branches.Count == 0 ? CpuDwConvTapList.FromMask(c, kh, kw, mask, 1) : null));
            Dys.Add(DwRef.Random(rng, X.Length));
        }
    }

    public float[] X { get; }
    public List<CpuDwConvBranch> Branches { get; } = [];
    public List<float[]> Masks { get; } = [];
    public List<float[]> Dys { get; } = [];

    public void RebuildTapList()
    {
        var br = Branches[0];
        Branches[0] = br with
        {
            Taps = CpuDwConvTapList.FromMask(_c, br.Kh, br.Kw, Masks[0], br.Taps!.Version + 1),
        };
    }

    public DwMapOutputs Run()
    {
        int len = X.Length;
        var ys = Branches.Select(_ => DwRef.Poisoned(len)).ToArray();
        var sum = DwRef.Poisoned(len);
        CpuDwConvDecomposed.Forward(_n, _c, _h, _w, Branches, X, ys.Select(y => new Memory<float>(y)).ToList(),
            sum);
        var dys = Dys.Select(d => new ReadOnlyMemory<float>(d)).ToList();
        var dx = DwRef.Poisoned(len);
        CpuDwConvDecomposed.BackwardData(_n, _c, _h, _w, Branches, dys, dx);
        var dws = new float[2][][];
        for (int skip = 0; skip < 2; skip++)
        {
            dws[skip] = Branches.Select(br => DwRef.Poisoned(_c * br.Kh * br.Kw)).ToArray();
            CpuDwConvDecomposed.BackwardFilter(_n, _c, _h, _w, Branches, X, dys,
                dws[skip].Select(d => new Memory<float>(d)).ToList(), skipMasked: skip == 1);
        }
        return new DwMapOutputs(ys, sum, dx, dws[1], dws[0]);
    }

    public void CheckAgainstReference(TestRandom rnd, string when)
    {
        int seed = rnd.Seed;
        var got = Run();
        var sumRef = new double[X.Length];
        var sumAbs = new double[X.Length];
        var dxRef = new double[X.Length];
        var dxAbs = new double[X.Length];
        for (int b = 0; b < Branches.Count; b++)
        {
            var br = Branches[b];
            var wt = br.Weight.ToArray();
            string what = $"{when}, branch {b} ({br.Kh}x{br.Kw})";
            var (y, yAbs) = DwRef.Forward(_n, _c, _h, _w, br.Kh, br.Kw, X, wt, Masks[b]);
            DwRef.AssertClose(got.Ys[b], y, yAbs, $"forward, {what}", seed);
            for (int i = 0; i < X.Length; i++) { sumRef[i] += y[i]; sumAbs[i] += yAbs[i]; }
            var (r, a) = DwRef.BackwardData(_n, _c, _h, _w, br.Kh, br.Kw, Dys[b], wt, Masks[b]);
            for (int i = 0; i < X.Length; i++) { dxRef[i] += r[i]; dxAbs[i] += a[i]; }
            var (dw, dwAbs) = DwRef.BackwardFilter(_n, _c, _h, _w, br.Kh, br.Kw, X, Dys[b]);
            DwRef.AssertClose(got.DenseDws[b], dw, dwAbs, $"dense weight gradient, {what}", seed);
            for (int i = 0; i < dw.Length; i++)
            {
                if (Masks[b][i] != 0) continue;
                dw[i] = 0;
                if (got.Dws[b][i] != 0f)
                    Assert.Fail(rnd.Ctx($"masked weight gradient, {what}: tap {i} is {got.Dws[b][i]}, not 0"));
            }
            DwRef.AssertClose(got.Dws[b], dw, dwAbs, $"masked weight gradient, {what}", seed);
        }
        DwRef.AssertClose(got.Sum, sumRef, sumAbs, $"forward sum beside the branch outputs, {when}", seed);
        var sumOnly = DwRef.Poisoned(X.Length);
        CpuDwConvDecomposed.Forward(_n, _c, _h, _w, Branches, X, [], sumOnly);
        DwRef.AssertClose(sumOnly, sumRef, sumAbs, $"forward sum only, {when}", seed);
        DwRef.AssertClose(got.Dx, dxRef, dxAbs, $"input gradient (sum of branches), {when}", seed);
    }
}