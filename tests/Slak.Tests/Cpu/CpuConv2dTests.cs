// Parity tests of CpuConv2d (forward, BackwardData, BackwardFilter) against float64 references written from the
// definition y[n,co,oh,ow] = b[co] + sum w[co,ci,kh,kw] * x[n,ci,oh*sh-ph+kh, ow*sw-pw+kw], on strides 1/2/4,
// padding, kernel larger than stride or than the image, 1x1 images, Cin = 1, bias on and off; an adjoint check
// (<conv(x), dy> = <x, dX> = <w, dW>); and bad input.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public class CpuConv2dTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        Conv2dShape[] shapes =
        [
            new(2, 3, 16, 16, 5, 4, 4, 4, 4, 0, 0),   // stem-like patchify 4x4/4
            new(3, 6, 8, 8, 7, 2, 2, 2, 2, 0, 0),     // downsample 2x2/2
            new(2, 3, 10, 9, 4, 4, 4, 4, 4, 0, 0),    // patchify with leftover rows/cols
            new(2, 4, 7, 6, 5, 3, 3, 1, 1, 1, 1),     // 3x3 same
            new(2, 3, 9, 8, 4, 5, 3, 2, 2, 2, 1),     // kernel > stride, padding
            new(3, 5, 1, 1, 4, 1, 1, 1, 1, 0, 0),     // 1x1 image, pointwise
            new(2, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1),     // 1x1 image, 3x3 kernel
            new(2, 1, 8, 8, 3, 3, 3, 2, 1, 0, 1),     // Cin = 1
            new(1, 2, 3, 3, 2, 5, 5, 1, 1, 2, 2),     // kernel larger than the image
            new(2, 5, 4, 3, 6, 1, 1, 1, 1, 0, 0),     // pointwise
            new(1, 3, 12, 12, 8, 4, 4, 4, 4, 0, 0),   // N = 1: one image, multi-threaded GEMM
            new(2, 3, 9, 11, 4, 1, 5, 1, 2, 0, 2),    // asymmetric kernel and stride
            new(4, 16, 12, 12, 24, 3, 3, 1, 1, 1, 1), // images in parallel
            new(2, 2, 13, 13, 3, 3, 3, 4, 4, 1, 1),   // stride 4 with overlap-free gaps
            new(40, 3, 33, 32, 8, 4, 4, 4, 4, 0, 0),  // batched patchify past the parallel threshold, leftover row
            new(130, 130, 2, 2, 9, 2, 2, 2, 2, 0, 0), // batched patchify to a 1x1 map (P = 1: no transposes)
        ];
        foreach (var s in shapes)
            foreach (bool bias in new[] { true, false })
                yield return new TestCaseData(s, bias).SetArgDisplayNames($"{s} bias={bias}");
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardAndBackwardMatchFloat64(object shape, bool bias)  // Conv2dShape (internal to Slak)
    {
        var s = (Conv2dShape)shape;
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        string ctx = $"{s} bias={bias} seed={seed}";
        var x = RandomArray(rng, s.InputSize);
        var w = RandomArray(rng, s.WeightSize);
        var b = bias ? RandomArray(rng, s.Cout) : [];
        var dy = RandomArray(rng, s.OutputSize);

        var y = Poisoned(s.OutputSize);
        CpuConv2d.Forward(s, x, w, b, y);
        var dx = Poisoned(s.InputSize);
        CpuConv2d.BackwardData(s, dy, w, dx);
        var dw = Poisoned(s.WeightSize);
        var db = bias ? Poisoned(s.Cout) : [];
        CpuConv2d.BackwardFilter(s, x, dy, dw, db);

        var (yRef, yScale) = Reference.Forward(s, x, w, b);
        var (dxRef, dxScale) = Reference.BackwardData(s, dy, w);
        var (dwRef, dwScale) = Reference.BackwardFilter(s, x, dy);
        AssertClose(y, yRef, yScale, "y", ctx);
        AssertClose(dx, dxRef, dxScale, "dx", ctx);
        AssertClose(dw, dwRef, dwScale, "dw", ctx);
        if (bias)
        {
            var (dbRef, dbScale) = Reference.BackwardBias(s, dy);
            AssertClose(db, dbRef, dbScale, "dbias", ctx);
        }
    }

    [Test]
    public void BackwardIsTheAdjointOfForward()
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var s = new Conv2dShape(2, 3, 11, 10, 4, 3, 5, 2, 1, 1, 2);
        var x = RandomArray(rng, s.InputSize);
        var w = RandomArray(rng, s.WeightSize);
        var dy = RandomArray(rng, s.OutputSize);
        var y = new float[s.OutputSize];
        var dx = new float[s.InputSize];
        var dw = new float[s.WeightSize];
        CpuConv2d.Forward(s, x, w, [], y);
        CpuConv2d.BackwardData(s, dy, w, dx);
        CpuConv2d.BackwardFilter(s, x, dy, dw, []);
        double ydy = Dot(y, dy), xdx = Dot(x, dx), wdw = Dot(w, dw);
        double tol = 1e-4 * (1 + Math.Abs(ydy));
        Assert.That(xdx, Is.EqualTo(ydy).Within(tol), $"<x, dX> vs <y, dy> (seed {seed})");
        Assert.That(wdw, Is.EqualTo(ydy).Within(tol), $"<w, dW> vs <y, dy> (seed {seed})");
    }

    [TestCase(2, 3, 7, 6, 4, 3, 3, 2, 1, 1, 1)]
    [TestCase(2, 2, 8, 8, 3, 2, 2, 2, 2, 0, 0)]
    public void GradientsMatchCentralDifferences(int n, int cin, int h, int w, int cout, int kh, int kw, int sh,
        int sw, int ph, int pw)
    {
        // L = sum(conv(x, w, b) * dy) is linear in each of x, w, b, so a central difference with a large step (0.25)
        // is exact up to float32 rounding of the forward (L is summed in float64).
        var s = new Conv2dShape(n, cin, h, w, cout, kh, kw, sh, sw, ph, pw);
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var x = RandomArray(rng, s.InputSize);
        var wt = RandomArray(rng, s.WeightSize);
        var b = RandomArray(rng, s.Cout);
        var dy = RandomArray(rng, s.OutputSize);
        var dx = new float[s.InputSize];
        var dw = new float[s.WeightSize];
        var db = new float[s.Cout];
        CpuConv2d.BackwardData(s, dy, wt, dx);
        CpuConv2d.BackwardFilter(s, x, dy, dw, db);

        double Loss()
        {
            var y = new float[s.OutputSize];
            CpuConv2d.Forward(s, x, wt, b, y);
            return Dot(y, dy);
        }
        void CheckParam(float[] param, float[] grad, string name)
        {
            const float step = 0.25f;
            for (int i = 0; i < param.Length; i++)
            {
                float saved = param[i];
                param[i] = saved + step;
                double up = Loss();
                param[i] = saved - step;
                double down = Loss();
                param[i] = saved;
                double fd = (up - down) / (2 * step);
                Assert.That(grad[i], Is.EqualTo(fd).Within(2e-3 * (1 + Math.Abs(fd))),
                    $"d{name}[{i}] vs central difference; {s} seed={seed}");
            }
        }
        CheckParam(x, dx, "x");
        CheckParam(wt, dw, "w");
        CheckParam(b, db, "bias");
    }

    [Test]
    public void BadShapeNamesTheField()
    {
        var ok = new Conv2dShape(1, 1, 4, 4, 1, 2, 2, 2, 2, 0, 0);
        Assert.Multiple(() =>
        {
            Assert.That(() => (ok with { N = 0 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("N").And.Message.Contains("N=0"));
            Assert.That(() => (ok with { Cin = -1 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("Cin"));
            Assert.That(() => (ok with { StrideW = 0 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("StrideW"));
            Assert.That(() => (ok with { PadH = -1 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("PadH"));
            Assert.That(() => (ok with { Kh = 5 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("Kh").And.Message.Contains("Kh=5"));
            Assert.That(() => (ok with { Kw = 7, PadW = 1 }).Validate(),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("Kw"));
        });
    }

    [Test]
    public void BadSpanNamesTheArgument()
    {
        var s = new Conv2dShape(2, 3, 4, 4, 5, 2, 2, 2, 2, 0, 0);
        var x = new float[s.InputSize];
        var w = new float[s.WeightSize];
        var y = new float[s.OutputSize];
        Assert.Multiple(() =>
        {
            Assert.That(() => CpuConv2d.Forward(s, x.AsSpan(1), w, [], y),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("x").And.Message.Contains("96"));
            Assert.That(() => CpuConv2d.Forward(s, x, w.AsSpan(1), [], y),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("w"));
            Assert.That(() => CpuConv2d.Forward(s, x, w, new float[4], y),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("bias"));
            Assert.That(() => CpuConv2d.Forward(s, x, w, [], new float[s.OutputSize + 1]),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("y"));
            Assert.That(() => CpuConv2d.BackwardData(s, y.AsSpan(1), w, x),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("dy"));
            Assert.That(() => CpuConv2d.BackwardData(s, y, w, x.AsSpan(1)),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("dx"));
            Assert.That(() => CpuConv2d.BackwardFilter(s, x, y, w.AsSpan(1), []),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("dw"));
            Assert.That(() => CpuConv2d.BackwardFilter(s, x, y, w, new float[6]),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("dbias"));
            Assert.That(() => CpuConv2d.Forward(s with { StrideH = 0 }, x, w, [], y),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("StrideH"));
        });
    }

    // atol 1e-6 + rtol 4e-6 * sqrt(terms) * sum|terms| (float32 accumulation of `terms` products).
    internal static void AssertClose(float[] got, double[] expected, (double[] Abs, int Terms) scale, string what,
        string ctx)
    {
        for (int i = 0; i < got.Length; i++)
        {
            double tol = 1e-6 + 4e-6 * Math.Sqrt(scale.Terms + 1) * scale.Abs[i];
            if (!(Math.Abs(got[i] - expected[i]) <= tol))
                Assert.Fail($"{what}[{i}] = {got[i]}, expected {expected[i]} (tol {tol:g3}); {ctx}");
        }
    }

    private static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    internal static float[] RandomArray(Random rng, long n)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    internal static float[] Poisoned(long n)
    {
        var x = new float[n];
        Array.Fill(x, float.NaN);
        return x;
    }

    // Plain float64 loops over every (output pixel, tap) pair; also returns sum|terms| per element for tolerances.
    internal static class Reference
    {
        private delegate void Visit(int n, int co, int ci, int oy, int ox, int kh, int kw, int iy, int ix);

        private static void ForEachTap(Conv2dShape s, Visit visit)
        {
            for (int n = 0; n < s.N; n++)
                for (int co = 0; co < s.Cout; co++)
                    for (int oy = 0; oy < s.OutH; oy++)
                        for (int ox = 0; ox < s.OutW; ox++)
                            for (int ci = 0; ci < s.Cin; ci++)
                                for (int kh = 0; kh < s.Kh; kh++)
                                    for (int kw = 0; kw < s.Kw; kw++)
                                    {
                                        int iy = oy * s.StrideH - s.PadH + kh, ix = ox * s.StrideW - s.PadW + kw;
                                        if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W)
                                            visit(n, co, ci, oy, ox, kh, kw, iy, ix);
                                    }
        }

        private static int Xi(Conv2dShape s, int n, int ci, int iy, int ix) => ((n * s.Cin + ci) * s.H + iy) * s.W + ix;
        private static int Yi(Conv2dShape s, int n, int co, int oy, int ox) => ((n * s.Cout + co) * s.OutH + oy) * s.OutW + ox;
        private static int Wi(Conv2dShape s, int co, int ci, int kh, int kw) => ((co * s.Cin + ci) * s.Kh + kh) * s.Kw + kw;

        public static (double[], (double[], int)) Forward(Conv2dShape s, float[] x, float[] w, float[] b)
        {
            var y = new double[s.OutputSize];
            var abs = new double[s.OutputSize];
            for (int i = 0; i < y.Length; i++)
            {
                int co = i / (s.OutH * s.OutW) % s.Cout;
                y[i] = b.Length > 0 ? b[co] : 0;
                abs[i] = Math.Abs(y[i]);
            }
            ForEachTap(s, (n, co, ci, oy, ox, kh, kw, iy, ix) =>
            {
                double t = (double)w[Wi(s, co, ci, kh, kw)] * x[Xi(s, n, ci, iy, ix)];
                y[Yi(s, n, co, oy, ox)] += t;
                abs[Yi(s, n, co, oy, ox)] += Math.Abs(t);
            });
            return (y, (abs, s.Cin * s.Kh * s.Kw));
        }

        public static (double[], (double[], int)) BackwardData(Conv2dShape s, float[] dy, float[] w)
        {
            var dx = new double[s.InputSize];
            var abs = new double[s.InputSize];
            ForEachTap(s, (n, co, ci, oy, ox, kh, kw, iy, ix) =>
            {
                double t = (double)w[Wi(s, co, ci, kh, kw)] * dy[Yi(s, n, co, oy, ox)];
                dx[Xi(s, n, ci, iy, ix)] += t;
                abs[Xi(s, n, ci, iy, ix)] += Math.Abs(t);
            });
            return (dx, (abs, s.Cout * s.Kh * s.Kw));
        }

        public static (double[], (double[], int)) BackwardFilter(Conv2dShape s, float[] x, float[] dy)
        {
            var dw = new double[s.WeightSize];
            var abs = new double[s.WeightSize];
            ForEachTap(s, (n, co, ci, oy, ox, kh, kw, iy, ix) =>
            {
                double t = (double)x[Xi(s, n, ci, iy, ix)] * dy[Yi(s, n, co, oy, ox)];
                dw[Wi(s, co, ci, kh, kw)] += t;
                abs[Wi(s, co, ci, kh, kw)] += Math.Abs(t);
            });
            return (dw, (abs, s.N * s.OutH * s.OutW));
        }

        public static (double[], (double[], int)) BackwardBias(Conv2dShape s, float[] dy)
        {
            var db = new double[s.Cout];
            var abs = new double[s.Cout];
            for (int i = 0; i < dy.Length; i++)
            {
                int co = i / (s.OutH * s.OutW) % s.Cout;
                db[co] += dy[i];
                abs[co] += Math.Abs(dy[i]);
            }
            return (db, (abs, s.N * s.OutH * s.OutW));
        }
    }
}
