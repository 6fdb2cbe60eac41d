// Plain float64 reference of the depthwise convolution (forward, input gradient, weight gradient) used by the CPU
// kernel tests, plus the check of the reference's two gradients against central differences of its forward.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

/// <summary>Float64 depthwise convolution, NCHW, stride 1, same padding; weights are w*mask (mask null = dense).
/// Each result comes with the sum of |terms| so that tests can scale the float32 tolerance.</summary>
internal static class DwRef
{
    internal static (double[] Y, double[] Abs) Forward(int n, int c, int h, int w, int kh, int kw, float[] x,
        float[] wt, float[]? mask)
    {
        var y = new double[n * c * h * w];
        var abs = new double[y.Length];
        int ph = kh / 2, pw = kw / 2;
        for (int img = 0; img < n; img++)
        for (int ch = 0; ch < c; ch++)
        for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++)
        {
            double s = 0, a = 0;
            for (int i = 0; i < kh; i++)
            {
                int rr = r + i - ph;
                if (rr < 0 || rr >= h) continue;
                for (int j = 0; j < kw; j++)
                {
                    int qq = q + j - pw;
                    if (qq < 0 || qq >= w) continue;
                    int k = (ch * kh + i) * kw + j;
                    double wv = (double)wt[k] * (mask is null ? 1.0 : mask[k]);
                    double p = wv * x[((img * c + ch) * h + rr) * w + qq];
                    s += p;
                    a += Math.Abs(p);
                }
            }
            int o = ((img * c + ch) * h + r) * w + q;
            y[o] = s;
            abs[o] = a;
        }
        return (y, abs);
    }

    /// <summary>dx[p] = sum over taps t of w[t] * dy[p - t + pad].</summary>
    internal static (double[] Dx, double[] Abs) BackwardData(int n, int c, int h, int w, int kh, int kw, float[] dy,
        float[] wt, float[]? mask)
    {
        var dx = new double[n * c * h * w];
        var abs = new double[dx.Length];
        int ph = kh / 2, pw = kw / 2;
        for (int img = 0; img < n; img++)
        for (int ch = 0; ch < c; ch++)
        for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++)
        {
            // y[r, q] uses x[r + i - ph, q + j - pw]; scatter dy into dx.
            int o = ((img * c + ch) * h + r) * w + q;
            for (int i = 0; i < kh; i++)
            {
                int rr = r + i - ph;
                if (rr < 0 || rr >= h) continue;
                for (int j = 0; j < kw; j++)
                {
                    int qq = q + j - pw;
                    if (qq < 0 || qq >= w) continue;
                    int k = (ch * kh + i) * kw + j;
                    double p = (double)wt[k] * (mask is null ? 1.0 : mask[k]) * dy[o];
                    int t = ((img * c + ch) * h + rr) * w + qq;
                    dx[t] += p;
                    abs[t] += Math.Abs(p);
                }
            }
        }
        return (dx, abs);
    }

    /// <summary>Dense weight gradient dw[c, i, j] = sum over n, p of x[n, c, p + (i, j) - pad] * dy[n, c, p].</summary>
    internal static (double[] Dw, double[] Abs) BackwardFilter(int n, int c, int h, int w, int kh, int kw, float[] x,
        float[] dy)
    {
        var dw = new double[c * kh * kw];
        var abs = new double[dw.Length];
        int ph = kh / 2, pw = kw / 2;
        for (int img = 0; img < n; img++)
        for (int ch = 0; ch < c; ch++)
        for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++)
        {
            double g = dy[((img * c + ch) * h + r) * w + q];
            for (int i = 0; i < kh; i++)
            {
                int rr = r + i - ph;
                if (rr < 0 || rr >= h) continue;
                for (int j = 0; j < kw; j++)
                {
                    int qq = q + j - pw;
                    if (qq < 0 || qq >= w) continue;
                    double p = g * x[((img * c + ch) * h + rr) * w + qq];
                    int k = (ch * kh + i) * kw + j;
                    dw[k] += p;
                    abs[k] += Math.Abs(p);
                }
            }
        }
        return (dw, abs);
    }

    internal static float[] Random(Random rng, int len)
    {
        var a = new float[len];
        for (int i = 0; i < len; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    internal static float[] Mask(Random rng, int len, double density)
    {
        var m = new float[len];
        for (int i = 0; i < len; i++) m[i] = rng.NextDouble() < density ? 1f : 0f;
        return m;
    }

    internal static float[] Poisoned(int len)
    {
        var a = new float[len];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Asserts |got - ref| &lt;= atol + rtol * sum|terms| element-wise (float32 sums of many terms).</summary>
    internal static void AssertClose(float[] got, double[] expected, double[] abs, string what, int seed,
        double atol = 1e-6, double rtol = 2e-5)
    {
        Assert.That(got, Has.Length.EqualTo(expected.Length), $"{what}: length (seed {seed})");
        for (int i = 0; i < got.Length; i++)
        {
            double tol = atol + rtol * abs[i];
            if (!(Math.Abs(got[i] - expected[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {got[i]}, reference {expected[i]} (tolerance {tol:g3} = " +
                    $"{atol:g2} + {rtol:g2} * sum|terms|), seed {seed}");
        }
    }
}

/// <summary>Checks the float64 reference's gradients by central differences of its forward.</summary>
public sealed class CpuDwConvReferenceTests
{
    [Test]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        const int n = 2, c = 2, h = 5, w = 4, kh = 5, kw = 3;
        var x = DwRef.Random(rng, n * c * h * w);
        var wt = DwRef.Random(rng, c * kh * kw);
        var mask = DwRef.Mask(rng, wt.Length, 0.7);
        var g = DwRef.Random(rng, x.Length);
        // L = sum(g * y): dL/dx = BackwardData(g), dL/dw = BackwardFilter(x, g) * mask.
        double Loss(float[] xs, float[] ws)
        {
            var y = DwRef.Forward(n, c, h, w, kh, kw, xs, ws, mask).Y;
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += y[i] * g[i];
            return s;
        }
        var dx = DwRef.BackwardData(n, c, h, w, kh, kw, g, wt, mask).Dx;
        var dw = DwRef.BackwardFilter(n, c, h, w, kh, kw, x, g).Dw;
        const float eps = 1f / 64; // L is linear in each argument; the step actually stored is used
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + eps; double lp = Loss(x, wt); double hi = x[i];
            x[i] = keep - eps; double lm = Loss(x, wt); double lo = x[i];
            x[i] = keep;
            Assert.That((lp - lm) / (hi - lo), Is.EqualTo(dx[i]).Within(1e-9 + 1e-7 * Math.Abs(dx[i])),
                $"dL/dx[{i}], seed {seed}");
        }
        for (int i = 0; i < wt.Length; i++)
        {
            float keep = wt[i];
            wt[i] = keep + eps; double lp = Loss(x, wt); double hi = wt[i];
            wt[i] = keep - eps; double lm = Loss(x, wt); double lo = wt[i];
            wt[i] = keep;
            double expected = dw[i] * mask[i];
            Assert.That((lp - lm) / (hi - lo), Is.EqualTo(expected).Within(1e-9 + 1e-7 * Math.Abs(expected)),
                $"dL/dw[{i}], seed {seed}");
        }
    }
}
