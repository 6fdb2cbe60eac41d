// Vectorized exact-form GELU for the CPU backend. GELU(x) = x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, and
// GELU'(x) = Phi(x) + x * phi(x). erfc is the Chebyshev-fitted form of Numerical Recipes (erfcc: fractional error
// below 1.2e-7 everywhere, so the tails keep their relative accuracy: no 1 - erf cancellation for negative x).
// Work is done in L1-sized blocks: the polynomial and the final combination (sign select, no branch) in
// Vector<float> lanes, exp through TensorPrimitives (vectorized).
// CpuMath.Gelu stays as the scalar, double-precision definition the tests hold this against.
using System.Numerics;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

/// <summary>Span kernels of GELU and its derivative.</summary>
public static class CpuGelu
{
    private const int Block = 1024;
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>y = GELU(x).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"y has {y.Length} elements, x has {x.Length}", nameof(y));
        Span<float> t = stackalloc float[Block];
        Span<float> arg = stackalloc float[Block];
        Span<float> e = stackalloc float[Block];
        int w = Vector<float>.Count;
        var half = new Vector<float>(0.5f);
        for (int s = 0; s < x.Length; s += Block)
        {
            int n = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, n);
            var ys = y.Slice(s, n);
            ErfcArguments(xs, t, arg, default);
            TensorPrimitives.Exp(arg[..n], e);
            // Phi(x) = erfc/2 for x < 0, 1 - erfc/2 otherwise; a select, not a branch (x's sign is a coin flip).
            int i = 0;
            for (; i + w <= n; i += w)
            {
                var xv = new Vector<float>(xs.Slice(i, w));
                var h = half * (new Vector<float>(e.Slice(i, w)) * new Vector<float>(t.Slice(i, w)));
                var phi = Vector.ConditionalSelect(Vector.LessThan(xv, Vector<float>.Zero), h, Vector<float>.One - h);
                (xv * phi).CopyTo(ys.Slice(i, w));
            }
            for (; i < n; i++)
            {
                float h = 0.5f * (e[i] * t[i]);
                ys[i] = xs[i] * (xs[i] < 0 ? h : 1f - h);
            }
        }
    }

    /// <summary>dx = dy * GELU'(x).</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length < x.Length || dx.Length < x.Length)
            throw new ArgumentException($"dy has {dy.Length} and dx {dx.Length} elements, x has {x.Length}", nameof(dx));
        Span<float> t = stackalloc float[Block];
        Span<float> arg = stackalloc float[Block];
        Span<float> e = stackalloc float[Block];
        Span<float> argGauss = stackalloc float[Block];
        Span<float> gauss = stackalloc float[Block];
        int w = Vector<float>.Count;
        var half = new Vector<float>(0.5f);
        var invSqrt2Pi = new Vector<float>(InvSqrt2Pi);
        for (int s = 0; s < x.Length; s += Block)
        {
            int n = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, n);
            ErfcArguments(xs, t, arg, argGauss);
            TensorPrimitives.Exp(arg[..n], e);
            TensorPrimitives.Exp(argGauss[..n], gauss);
            var g = dy.Slice(s, n);
            var d = dx.Slice(s, n);
            int i = 0;
            for (; i + w <= n; i += w)
            {
                var xv = new Vector<float>(xs.Slice(i, w));
                var h = half * (new Vector<float>(e.Slice(i, w)) * new Vector<float>(t.Slice(i, w)));
                var phi = Vector.ConditionalSelect(Vector.LessThan(xv, Vector<float>.Zero), h, Vector<float>.One - h);
                var dv = new Vector<float>(g.Slice(i, w)) * (phi + xv * invSqrt2Pi * new Vector<float>(gauss.Slice(i, w)));
                dv.CopyTo(d.Slice(i, w));
            }
            for (; i < n; i++)
            {
                float h = 0.5f * (e[i] * t[i]);
                float phi = xs[i] < 0 ? h : 1f - h;
                d[i] = g[i] * (phi + xs[i] * InvSqrt2Pi * gauss[i]);
            }
        }
    }

    /// <summary>For z = |x|/sqrt2: t = 1/(1 + z/2) and the exponent -z^2 + P(t) of erfc(z) = t * exp(exponent);
    /// when <paramref name="argGauss"/> is not empty it also receives -x^2/2 (the exponent of the Gaussian).</summary>
    private static void ErfcArguments(ReadOnlySpan<float> x, Span<float> t, Span<float> arg, Span<float> argGauss)
    {
        int n = x.Length;
        int i = 0;
        int w = Vector<float>.Count;
        var one = Vector<float>.One;
        bool gauss = !argGauss.IsEmpty;
        for (; i + w <= n; i += w)
        {
            var z = Vector.Abs(new Vector<float>(x.Slice(i, w))) * InvSqrt2;
            var tv = one / (one + 0.5f * z);
            tv.CopyTo(t.Slice(i, w));
            var zz = -z * z;
            (zz + Poly(tv)).CopyTo(arg.Slice(i, w));
            if (gauss) zz.CopyTo(argGauss.Slice(i, w));
        }
        for (; i < n; i++)
        {
            float z = MathF.Abs(x[i]) * InvSqrt2;
            float tv = 1f / (1f + 0.5f * z);
            t[i] = tv;
            arg[i] = -z * z + PolyScalar(tv);
            if (gauss) argGauss[i] = -z * z;
        }
    }

    // Coefficients of the erfcc exponent polynomial, highest degree first (Horner order).
    private static readonly float[] Coefficients =
    [
        0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
        1.00002368f, -1.26551223f,
    ];

    // Unrolled with literal coefficients (the same as Coefficients) so the broadcasts are hoisted constants.
    private static Vector<float> Poly(Vector<float> t)
    {
        var r = new Vector<float>(0.17087277f);
        r = r * t + new Vector<float>(-0.82215223f);
        r = r * t + new Vector<float>(1.48851587f);
        r = r * t + new Vector<float>(-1.13520398f);
        r = r * t + new Vector<float>(0.27886807f);
        r = r * t + new Vector<float>(-0.18628806f);
        r = r * t + new Vector<float>(0.09678418f);
        r = r * t + new Vector<float>(0.37409196f);
        r = r * t + new Vector<float>(1.00002368f);
        return r * t + new Vector<float>(-1.26551223f);
    }

    private static float PolyScalar(float t)
    {
        float r = Coefficients[0];
        for (int k = 1; k < Coefficients.Length; k++) r = r * t + Coefficients[k];
        return r;
    }
}
