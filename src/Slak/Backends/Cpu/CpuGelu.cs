// Vectorized exact-form GELU for the CPU backend. GELU(x) = x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, and
// GELU'(x) = Phi(x) + x * phi(x). erfc is the Chebyshev-fitted form of Numerical Recipes (erfcc: fractional error
// below 1.2e-7 everywhere, so the tails keep their relative accuracy: no 1 - erf cancellation for negative x).
// Work is done in L1-sized blocks: the polynomial in Vector<float> lanes, exp through TensorPrimitives (vectorized).
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
        Span<float> erfc = stackalloc float[Block];
        for (int s = 0; s < x.Length; s += Block)
        {
            int n = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, n);
            var ys = y.Slice(s, n);
            Erfc(xs, erfc[..n], default);
            for (int i = 0; i < n; i++)
            {
                float half = 0.5f * erfc[i];
                ys[i] = xs[i] * (xs[i] < 0 ? half : 1f - half);
            }
        }
    }

    /// <summary>dx = dy * GELU'(x).</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> erfc = stackalloc float[Block];
        Span<float> gauss = stackalloc float[Block];
        for (int s = 0; s < x.Length; s += Block)
        {
            int n = Math.Min(Block, x.Length - s);
            var xs = x.Slice(s, n);
            Erfc(xs, erfc[..n], gauss[..n]);
            var g = dy.Slice(s, n);
            var d = dx.Slice(s, n);
            for (int i = 0; i < n; i++)
            {
                float half = 0.5f * erfc[i];
                float phi = xs[i] < 0 ? half : 1f - half;
                d[i] = g[i] * (phi + xs[i] * InvSqrt2Pi * gauss[i]);
            }
        }
    }

    /// <summary>erfc(|x|/sqrt2) per element; when <paramref name="gauss"/> is not empty it also receives
    /// exp(-x^2/2).</summary>
    private static void Erfc(ReadOnlySpan<float> x, Span<float> erfc, Span<float> gauss)
    {
        int n = x.Length;
        Span<float> t = stackalloc float[n];
        Span<float> arg = stackalloc float[n];
        int i = 0;
        int w = Vector<float>.Count;
        var one = Vector<float>.One;
        for (; i + w <= n; i += w)
        {
            var z = Vector.Abs(new Vector<float>(x.Slice(i, w))) * InvSqrt2;
            var tv = one / (one + 0.5f * z);
            var p = Poly(tv);
            (tv).CopyTo(t.Slice(i, w));
            (-z * z + p).CopyTo(arg.Slice(i, w));
        }
        for (; i < n; i++)
        {
            float z = MathF.Abs(x[i]) * InvSqrt2;
            float tv = 1f / (1f + 0.5f * z);
            t[i] = tv;
            arg[i] = -z * z + PolyScalar(tv);
        }
        TensorPrimitives.Exp(arg, erfc);
        TensorPrimitives.Multiply(erfc, t, erfc);
        if (gauss.IsEmpty) return;
        for (int k = 0; k < n; k++) { float z = x[k] * InvSqrt2; arg[k] = -z * z; }
        TensorPrimitives.Exp(arg, gauss);
    }

    // Coefficients of the erfcc exponent polynomial, highest degree first (Horner order).
    private static readonly float[] Coefficients =
    [
        0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
        1.00002368f, -1.26551223f,
    ];

    private static Vector<float> Poly(Vector<float> t)
    {
        var r = new Vector<float>(Coefficients[0]);
        for (int k = 1; k < Coefficients.Length; k++) r = r * t + new Vector<float>(Coefficients[k]);
        return r;
    }

    private static float PolyScalar(float t)
    {
        float r = Coefficients[0];
        for (int k = 1; k < Coefficients.Length; k++) r = r * t + Coefficients[k];
        return r;
    }
}
