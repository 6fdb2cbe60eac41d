// The next-image prefetch of the layout memory operators (CpuBackend.LayoutImagePrefetch, SLAK_LAYOUT_IMAGE_PREFETCH,
// and ResidualImagePrefetch, SLAK_RESIDUAL_IMAGE_PREFETCH; CpuBackend.Norm.Prefetch.cs): the LayerNorm forwards and
// backwards with pixels in the SIMD lanes (fused with the NCHW -> NHWC permute and channels-first) and the fused
// residual, forward (also in place) and backward. A prefetch changes no value, so with it on every output must be the
// bits of the same call with it off, at 1, 2 and 3 threads (each against the off run at the same thread count), the
// same bits on a repeated run, and within the stated tolerances of float64. Shapes: every stage of slak_nano and
// slak_nano64 scaled down in batch (at least 2 images, so that there is a next image), a map whose pixel count is not a
// multiple of the chunk, and the prefetch forced onto every map (the From thresholds 0), the kernels forced onto every
// map of at least one vector of pixels. The forwards' two-vector chunks (CpuBackend.LayerNormForwardLanesWide,
// SLAK_LAYERNORM_FWD_WIDE) against one-vector chunks: the same bits. Outputs are NaN-poisoned before each run.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend's prefetch and LayerNorm path switches and CpuParallel.Threads
public class CpuLayoutImagePrefetchTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    /// <summary>Runs <paramref name="body"/> with the prefetch off, then on, at 1, 2 and 3 threads (and on again at 3
    /// threads), the LayerNorm backwards' pixel lanes forced onto every map and the prefetch onto every map; returns
    /// the runs in that order: (off, on) x threads 1, 2, 3, then the repeat.</summary>
    private static List<float[][]> Runs(Func<float[][]> body)
    {
        var runs = new List<float[][]>();
        bool keepFetch = CpuBackend.LayoutImagePrefetch, keepLanes = CpuBackend.LayerNormBackwardPixelLanes;
        bool keepResidual = CpuBackend.ResidualImagePrefetch;
        int keepResidualFrom = CpuBackend.ResidualImagePrefetchFrom;
        int keepFrom = CpuBackend.LayoutImagePrefetchFrom, keepThreads = CpuParallel.Threads;
        int keepFused = CpuBackend.LayerNormBackwardLanesFusedFrom;
        int keepBelow = CpuBackend.LayerNormBackwardLanesChannelsFirstBelow;
        try
        {
            CpuBackend.LayerNormBackwardPixelLanes = true;
            CpuBackend.LayerNormBackwardLanesFusedFrom = 0;
            CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = int.MaxValue;
            CpuBackend.LayoutImagePrefetchFrom = 0;
            CpuBackend.ResidualImagePrefetchFrom = 0;
            foreach (int threads in new[] { 1, 2, 3 })
                foreach (bool fetch in new[] { false, true })
                {
                    CpuParallel.Threads = threads;
                    CpuBackend.LayoutImagePrefetch = fetch;
                    CpuBackend.ResidualImagePrefetch = fetch;
                    runs.Add(body());
                }
            runs.Add(body());
        }
        finally
        {
            CpuBackend.LayoutImagePrefetch = keepFetch;
            CpuBackend.ResidualImagePrefetch = keepResidual;
            CpuBackend.ResidualImagePrefetchFrom = keepResidualFrom;
            CpuBackend.LayerNormBackwardPixelLanes = keepLanes;
            CpuBackend.LayoutImagePrefetchFrom = keepFrom;
            CpuBackend.LayerNormBackwardLanesFusedFrom = keepFused;
            CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = keepBelow;
            CpuParallel.Threads = keepThreads;
        }
        return runs;
    }

    /// <summary>Prefetch on = off at every thread count, and the repeat = the 3-thread run.</summary>
    private void ExpectSameBits(List<float[][]> runs, string[] names, string what)
    {
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < names.Length; k++)
                Expect.Exactly(runs[2 * t + 1][k], runs[2 * t][k],
                    _rng.Ctx($"{what}: {names[k]}, prefetch vs none, {t + 1} threads"));
        for (int k = 0; k < names.Length; k++)
            Expect.Exactly(runs[6][k], runs[5][k], _rng.Ctx($"{what}: {names[k]}, repeated"));
    }

    [TestCase(3, 31, 8, 8)]    // slak_nano stage 1
    [TestCase(3, 62, 4, 4)]    // slak_nano stage 2
    [TestCase(3, 124, 2, 2)]   // slak_nano stage 3 (below one vector: the row path, no prefetch)
    [TestCase(2, 31, 16, 16)]  // slak_nano64 stage 1
    [TestCase(3, 62, 8, 8)]    // slak_nano64 stage 2
    [TestCase(5, 124, 4, 4)]   // slak_nano64 stage 3
    [TestCase(3, 249, 2, 2)]   // slak_nano64 stage 4
    [TestCase(3, 13, 7, 9)]    // 63 pixels: the last chunk overlaps
    public void LayerNormsGiveTheSameBitsAndMatchFloat64(int n, int c, int h, int w)
    {
        int hw = h * w;
        var x = _rng.NormalArray(n * c * hw, 1.1, 0.2);
        var wt = _rng.NormalArray(c);
        var bs = _rng.NormalArray(c);
        var (ey, em, er) = CpuLayerNormLayoutTailTests.Forward64(x, wt, bs, n, c, hw);
        foreach (var layout in new[] { LayerNormOverChannels.NchwToNhwc, LayerNormOverChannels.ChannelsFirst })
        {
            bool nhwc = layout == LayerNormOverChannels.NchwToNhwc;
            string what = $"LayerNorm {layout} forward {n}x{c}x{h}x{w}";
            var runs = Runs(() =>
            {
                var y = nhwc ? Nan(n, h, w, c) : Nan(n, c, h, w);
                var mean = nhwc ? Nan(n * hw) : Nan(n, h, w);
                var rstd = nhwc ? Nan(n * hw) : Nan(n, h, w);
                if (nhwc)
                    CpuBackend.Instance.LayerNormNchwToNhwc(CpuCopy(x, n, c, h, w), CpuCopy(wt, c), CpuCopy(bs, c), 1e-6f, y, mean, rstd);
                else
                    CpuBackend.Instance.LayerNormChannelsFirst(CpuCopy(x, n, c, h, w), CpuCopy(wt, c), CpuCopy(bs, c), 1e-6f, y, mean,
                        rstd);
                return [y.ToArray(), mean.ToArray(), rstd.ToArray()];
            });
            var got = runs[3];
            var yNhwc = got[0];
            if (!nhwc)
            {
                yNhwc = new float[got[0].Length];
                for (int img = 0; img < n; img++)
                    for (int ch = 0; ch < c; ch++)
                        for (int p = 0; p < hw; p++) yNhwc[(img * hw + p) * c + ch] = got[0][(img * c + ch) * hw + p];
            }
            Expect.AllClose(yNhwc, ey, 2e-5, 1e-5, _rng.Ctx(what + ": y vs float64"));
            Expect.AllClose(got[1], em, 1e-6, 1e-6, _rng.Ctx(what + ": mean vs float64"));
            Expect.AllClose(got[2], er, 1e-6, 1e-6, _rng.Ctx(what + ": 1/std vs float64"));
            ExpectSameBits(runs, ["y", "mean", "1/std"], what);
            // One-vector chunks (SLAK_LAYERNORM_FWD_WIDE=0): the same operations on every lane, so the same bits.
            bool keepWide = CpuBackend.LayerNormForwardLanesWide;
            List<float[][]> narrow;
            try
            {
                CpuBackend.LayerNormForwardLanesWide = false;
                narrow = Runs(() =>
                {
                    var y = nhwc ? Nan(n, h, w, c) : Nan(n, c, h, w);
                    var mean = nhwc ? Nan(n * hw) : Nan(n, h, w);
                    var rstd = nhwc ? Nan(n * hw) : Nan(n, h, w);
                    if (nhwc)
                        CpuBackend.Instance.LayerNormNchwToNhwc(CpuCopy(x, n, c, h, w), CpuCopy(wt, c), CpuCopy(bs, c), 1e-6f, y, mean,
                            rstd);
                    else
                        CpuBackend.Instance.LayerNormChannelsFirst(CpuCopy(x, n, c, h, w), CpuCopy(wt, c), CpuCopy(bs, c), 1e-6f, y,
                            mean, rstd);
                    return [y.ToArray(), mean.ToArray(), rstd.ToArray()];
                });
            }
            finally
            {
                CpuBackend.LayerNormForwardLanesWide = keepWide;
            }
            string[] fwdNames = ["y", "mean", "1/std"];
            for (int k = 0; k < 3; k++)
                Expect.Exactly(runs[3][k], narrow[3][k], _rng.Ctx($"{what}: {fwdNames[k]}, two-vector vs one-vector chunks"));

            var ln = CpuLayerNormBackwardCase.Draw(_rng, layout, n, c, h, w, 1.1, 0.2);
            var dyNchw = ln.Dy;
            if (nhwc)
            {
                dyNchw = new float[ln.Dy.Length];
                for (int img = 0; img < n; img++)
                    for (int p = 0; p < hw; p++)
                        for (int ch = 0; ch < c; ch++) dyNchw[(img * c + ch) * hw + p] = ln.Dy[(img * hw + p) * c + ch];
            }
            var (edx, edw, edb) = CpuLayerNormChannelsFirstBackwardTests.Float64Gradients(ln.X, ln.Weight, dyNchw, n, c,
                hw, CpuLayerNormBackwardCase.Eps);
            what = $"LayerNorm {layout} backward {n}x{c}x{h}x{w}";
            var back = Runs(() =>
            {
                var (dx, dw, db) = ln.Backward();
                return [dx, dw, db];
            });
            // The tolerances of CpuLayerNormBackwardPixelLanesTests: dx reads the forward's float statistics.
            Expect.AllClose(back[3][0], edx, 1e-5, 1e-4, _rng.Ctx(what + ": dx vs float64"));
            Expect.AllClose(back[3][1], edw, 1e-5, 1e-5, _rng.Ctx(what + ": dweight vs float64"));
            Expect.AllClose(back[3][2], edb, 1e-5, 1e-5, _rng.Ctx(what + ": dbias vs float64"));
            ExpectSameBits(back, ["dx", "dweight", "dbias"], what);
        }
    }

    [TestCase(3, 31, 8, 8)]    // slak_nano stage 1
    [TestCase(3, 62, 4, 4)]    // slak_nano stage 2
    [TestCase(3, 124, 2, 2)]   // slak_nano stage 3
    [TestCase(2, 31, 16, 16)]  // slak_nano64 stage 1
    [TestCase(3, 62, 8, 8)]    // slak_nano64 stage 2
    [TestCase(5, 124, 4, 4)]   // slak_nano64 stage 3
    [TestCase(3, 249, 2, 2)]   // slak_nano64 stage 4
    [TestCase(3, 13, 7, 9)]    // runs that cross images
    public void ResidualGivesTheSameBitsAndMatchesFloat64(int n, int c, int h, int w)
    {
        int hw = h * w, numel = n * c * hw;
        var input = _rng.NormalArray(numel);
        var y = _rng.NormalArray(numel);
        var gamma = _rng.NormalArray(c);
        var scale = Enumerable.Range(0, n).Select(i => i % 3 == 1 ? 0f : 1f / 0.6f).ToArray();
        var dOut = _rng.NormalArray(numel);
        string what = $"ChannelsLastResidual {n}x{c}x{h}x{w}";
        var runs = Runs(() =>
        {
            var be = CpuBackend.Instance;
            var ty = CpuCopy(y, n, h, w, c);
            var tg = CpuCopy(gamma, c);
            var ts = CpuCopy(scale, n);
            var output = Nan(n, c, h, w);
            be.ChannelsLastResidual(CpuCopy(input, n, c, h, w), ty, tg, ts, output);
            var inPlace = CpuCopy(input, n, c, h, w);
            be.ChannelsLastResidual(inPlace, ty, tg, ts, inPlace);
            var dy = Nan(n, h, w, c);
            var dg = Nan(c);
            be.ChannelsLastResidualBackward(ty, tg, ts, CpuCopy(dOut, n, c, h, w), dy, dg);
            return [output.ToArray(), inPlace.ToArray(), dy.ToArray(), dg.ToArray()];
        });
        var eOut = new double[numel];
        var eDy = new double[numel];
        var eDg = new double[c];
        for (int img = 0; img < n; img++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++)
                {
                    int nchw = (img * c + ch) * hw + p, nhwc = (img * hw + p) * c + ch;
                    eOut[nchw] = input[nchw] + (double)y[nhwc] * gamma[ch] * scale[img];
                    double g = dOut[nchw] * scale[img];
                    eDy[nhwc] = g * gamma[ch];
                    eDg[ch] += g * y[nhwc];
                }
        var got = runs[3];
        Expect.AllClose(got[0], eOut, 1e-6, 1e-5, _rng.Ctx($"{what}: output vs float64"));
        Expect.AllClose(got[1], eOut, 1e-6, 1e-5, _rng.Ctx($"{what}: in-place output vs float64"));
        Expect.AllClose(got[2], eDy, 1e-6, 1e-5, _rng.Ctx($"{what}: dy vs float64"));
        Expect.AllClose(got[3], eDg, 1e-5, 1e-5, _rng.Ctx($"{what}: dgamma vs float64"));
        ExpectSameBits(runs, ["output", "in-place output", "dy", "dgamma"], what);
    }
}
