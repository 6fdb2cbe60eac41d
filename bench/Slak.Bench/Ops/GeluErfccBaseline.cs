// The CPU backend's GELU before issue 27's table form (commit 25a04d6, src/Slak/Backends/Cpu/CpuGelu.cs), kept
// unchanged here as the "before" of the gelu-bench program, so that before and after are timed in one run:
// Vectorized exact-form GELU for the CPU backend. GELU(x) = x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, and
// GELU'(x) = Phi(x) + x * phi(x). erfc is the Chebyshev-fitted form of Numerical Recipes (erfcc: fractional error
// below 1.2e-7 everywhere, so the tails keep their relative accuracy: no 1 - erf cancellation for negative x).
// With AVX-512 the whole formula runs in one pass in Vector512 lanes (x read once, y written once; explicit FMAs, the
// reciprocal by rcp14 and one Newton step; exp inline: Cody-Waite
// reduction and a degree-7 polynomial, relative error ~1e-7, flushed to 0 below e^-87.3 where the float result is
// below the normal range anyway); the rest (and machines without 512-bit vectors) works in L1-sized blocks: the
// polynomial and the final combination (sign select, no branch) in Vector<float> lanes, exp through TensorPrimitives.
// CpuMath.Gelu stays as the scalar, double-precision definition the tests hold this against.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;

namespace Slak.Bench.Ops;

/// <summary>The erfcc-form GELU kernels of commit 25a04d6 (the benchmark's baseline).</summary>
internal static class GeluErfccBaseline
{
    private const int Block = 1024;
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>y = GELU(x).</summary>
    [SkipLocalsInit]
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"y has {y.Length} elements, x has {x.Length}", nameof(y));
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            int done = Forward512(x, y);
            x = x[done..];
            y = y[done..];
            if (x.IsEmpty) return;
        }
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
    [SkipLocalsInit]
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length < x.Length || dx.Length < x.Length)
            throw new ArgumentException($"dy has {dy.Length} and dx {dx.Length} elements, x has {x.Length}", nameof(dx));
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            int done = Backward512(x, dy, dx);
            x = x[done..];
            dy = dy[done..];
            dx = dx[done..];
            if (x.IsEmpty) return;
        }
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

    /// <summary>One row of a GEMM epilogue in one pass: c += bias (c keeps the pre-activation), y = GELU(c). The
    /// same formula as <see cref="Forward"/>; with AVX-512 a ragged tail goes through one zero-padded vector.</summary>
    [SkipLocalsInit]
    public static unsafe void BiasForward(Span<float> c, ReadOnlySpan<float> bias, Span<float> y)
    {
        if (bias.Length < c.Length || y.Length < c.Length)
            throw new ArgumentException($"bias has {bias.Length} and y {y.Length} elements, c has {c.Length}", nameof(c));
        if (!(Vector512.IsHardwareAccelerated && Avx512F.IsSupported))
        {
            TensorPrimitives.Add(c, bias[..c.Length], c);
            Forward(c, y);
            return;
        }
        int n = c.Length, i = 0;
        ref float rc = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(c);
        ref float rb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(bias);
        ref float ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        // Two independent vectors per iteration: the formula is a ~150-cycle dependency chain of ~45 operations, so
        // the second chain fills the first one's latency.
        for (; i + 2 * Vector512<float>.Count <= n; i += 2 * Vector512<float>.Count)
        {
            nuint i1 = (nuint)(i + Vector512<float>.Count);
            var xv = Vector512.LoadUnsafe(ref rc, (nuint)i) + Vector512.LoadUnsafe(ref rb, (nuint)i);
            var xw = Vector512.LoadUnsafe(ref rc, i1) + Vector512.LoadUnsafe(ref rb, i1);
            xv.StoreUnsafe(ref rc, (nuint)i);
            xw.StoreUnsafe(ref rc, i1);
            Phi512(xv, out var phi, out _);
            Phi512(xw, out var phw, out _);
            (xv * phi).StoreUnsafe(ref ry, (nuint)i);
            (xw * phw).StoreUnsafe(ref ry, i1);
        }
        for (; i + Vector512<float>.Count <= n; i += Vector512<float>.Count)
        {
            var xv = Vector512.LoadUnsafe(ref rc, (nuint)i) + Vector512.LoadUnsafe(ref rb, (nuint)i);
            xv.StoreUnsafe(ref rc, (nuint)i);
            Phi512(xv, out var phi, out _);
            (xv * phi).StoreUnsafe(ref ry, (nuint)i);
        }
        if (i == n) return;
        float* buf = stackalloc float[Vector512<float>.Count];
        var tail = new Span<float>(buf, Vector512<float>.Count);
        tail.Clear();
        TensorPrimitives.Add(c[i..], bias[i..n], tail);
        var xt = Vector512.Load(buf);
        Phi512(xt, out var phiT, out _);
        tail[..(n - i)].CopyTo(c[i..]);
        (xt * phiT).Store(buf);
        tail[..(n - i)].CopyTo(y[i..]);
    }

    /// <summary>One row of a GEMM epilogue in one pass: g *= GELU'(x) (g becomes the gradient w.r.t. the
    /// pre-activation x), then acc += g (a column sum, one row at a time). The same formula as
    /// <see cref="Backward"/>; with AVX-512 a ragged tail goes through one zero-padded vector.</summary>
    [SkipLocalsInit]
    public static unsafe void BackwardAccumulate(ReadOnlySpan<float> x, Span<float> g, Span<float> acc)
    {
        if (x.Length < g.Length || acc.Length < g.Length)
            throw new ArgumentException($"x has {x.Length} and acc {acc.Length} elements, g has {g.Length}", nameof(g));
        if (!(Vector512.IsHardwareAccelerated && Avx512F.IsSupported))
        {
            Backward(x[..g.Length], g, g);
            TensorPrimitives.Add(acc[..g.Length], g, acc);
            return;
        }
        int n = g.Length, i = 0;
        ref float rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float rg = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
        ref float ra = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(acc);
        for (; i + 2 * Vector512<float>.Count <= n; i += 2 * Vector512<float>.Count) // two chains, as in BiasForward
        {
            nuint i1 = (nuint)(i + Vector512<float>.Count);
            var d = Derivative512(Vector512.LoadUnsafe(ref rx, (nuint)i)) * Vector512.LoadUnsafe(ref rg, (nuint)i);
            var e = Derivative512(Vector512.LoadUnsafe(ref rx, i1)) * Vector512.LoadUnsafe(ref rg, i1);
            d.StoreUnsafe(ref rg, (nuint)i);
            e.StoreUnsafe(ref rg, i1);
            (Vector512.LoadUnsafe(ref ra, (nuint)i) + d).StoreUnsafe(ref ra, (nuint)i);
            (Vector512.LoadUnsafe(ref ra, i1) + e).StoreUnsafe(ref ra, i1);
        }
        for (; i + Vector512<float>.Count <= n; i += Vector512<float>.Count)
        {
            var d = Derivative512(Vector512.LoadUnsafe(ref rx, (nuint)i)) * Vector512.LoadUnsafe(ref rg, (nuint)i);
            d.StoreUnsafe(ref rg, (nuint)i);
            (Vector512.LoadUnsafe(ref ra, (nuint)i) + d).StoreUnsafe(ref ra, (nuint)i);
        }
        if (i == n) return;
        float* bx = stackalloc float[2 * Vector512<float>.Count];
        var tx = new Span<float>(bx, Vector512<float>.Count);
        var tg = new Span<float>(bx + Vector512<float>.Count, Vector512<float>.Count);
        tx.Clear();
        tg.Clear();
        x[i..n].CopyTo(tx);
        g[i..].CopyTo(tg);
        (Derivative512(Vector512.Load(bx)) * Vector512.Load(bx + Vector512<float>.Count)).Store(bx);
        tx[..(n - i)].CopyTo(g[i..]);
        TensorPrimitives.Add(acc[i..n], tx[..(n - i)], acc[i..n]);
    }

    /// <summary>GELU'(x) = Phi(x) + x phi(x), by the same formula as <see cref="Backward512"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Derivative512(Vector512<float> xv)
    {
        Phi512(xv, out var phi, out var negZ2);
        return phi + xv * Vector512.Create(InvSqrt2Pi) * Exp512(negZ2);
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

    // ---- one-pass AVX-512 path ---------------------------------------------------------------------------------

    /// <summary>GELU over the whole 16-lane vectors of x; returns how many elements it did.</summary>
    private static int Forward512(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length - x.Length % Vector512<float>.Count;
        ref float rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        for (int i = 0; i < n; i += Vector512<float>.Count)
        {
            var xv = Vector512.LoadUnsafe(ref rx, (nuint)i);
            Phi512(xv, out var phi, out _);
            (xv * phi).StoreUnsafe(ref ry, (nuint)i);
        }
        return n;
    }

    /// <summary>dx = dy * GELU'(x) over the whole 16-lane vectors; returns how many elements it did.</summary>
    private static int Backward512(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int n = x.Length - x.Length % Vector512<float>.Count;
        ref float rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float rg = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dy);
        ref float rd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dx);
        var invSqrt2Pi = Vector512.Create(InvSqrt2Pi);
        for (int i = 0; i < n; i += Vector512<float>.Count)
        {
            var xv = Vector512.LoadUnsafe(ref rx, (nuint)i);
            Phi512(xv, out var phi, out var negZ2);
            var gauss = Exp512(negZ2);
            (Vector512.LoadUnsafe(ref rg, (nuint)i) * (phi + xv * invSqrt2Pi * gauss)).StoreUnsafe(ref rd, (nuint)i);
        }
        return n;
    }

    /// <summary>Phi(x) (the standard normal CDF) by the same erfcc form as the block path; also -x^2/2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Phi512(Vector512<float> xv, out Vector512<float> phi, out Vector512<float> negZ2)
    {
        var one = Vector512<float>.One;
        var z = Vector512.Abs(xv) * Vector512.Create(InvSqrt2);
        var den = Fma512(Vector512.Create(0.5f), z, one);
        var t = Avx512F.Reciprocal14(den);
        t = t * Fma512(-den, t, Vector512.Create(2f)); // one Newton step: 14 -> ~28 bits
        negZ2 = -(z * z);
        var h = Vector512.Create(0.5f) * (Exp512(negZ2 + Poly512(t)) * t);
        phi = Vector512.ConditionalSelect(Vector512.LessThan(xv, Vector512<float>.Zero), h, one - h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma512(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Poly512(Vector512<float> t)
    {
        var r = Vector512.Create(0.17087277f);
        r = Fma512(r, t, Vector512.Create(-0.82215223f));
        r = Fma512(r, t, Vector512.Create(1.48851587f));
        r = Fma512(r, t, Vector512.Create(-1.13520398f));
        r = Fma512(r, t, Vector512.Create(0.27886807f));
        r = Fma512(r, t, Vector512.Create(-0.18628806f));
        r = Fma512(r, t, Vector512.Create(0.09678418f));
        r = Fma512(r, t, Vector512.Create(0.37409196f));
        r = Fma512(r, t, Vector512.Create(1.00002368f));
        return Fma512(r, t, Vector512.Create(-1.26551223f));
    }

    /// <summary>e^a for a &lt;= 88 (here a &lt;= ~0): a = k ln2 + r with |r| &lt;= ln2/2 (ln2 split in two so k ln2 is
    /// exact), e^r by its degree-7 Taylor polynomial (truncation below 6e-9 relative), times 2^k built in the exponent
    /// bits. Results below e^-87.3 (under the normal float range) are 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp512(Vector512<float> a)
    {
        var floor = Vector512.Create(-87.3f);
        var under = Vector512.LessThan(a, floor);
        a = Vector512.Max(a, floor);
        // Round to nearest by the 1.5 * 2^23 trick (|a log2 e| < 2^22).
        var magic = Vector512.Create(12582912f);
        var k = (a * Vector512.Create(1.44269504f) + magic) - magic;
        var r = a - k * Vector512.Create(0.693145751953125f) - k * Vector512.Create(1.42860682030941723212e-6f);
        var p = Vector512.Create(1f / 5040);
        p = Fma512(p, r, Vector512.Create(1f / 720));
        p = Fma512(p, r, Vector512.Create(1f / 120));
        p = Fma512(p, r, Vector512.Create(1f / 24));
        p = Fma512(p, r, Vector512.Create(1f / 6));
        p = Fma512(p, r, Vector512.Create(0.5f));
        p = Fma512(p, r, Vector512<float>.One);
        p = Fma512(p, r, Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(k) + Vector512.Create(127), 23).AsSingle();
        return Vector512.ConditionalSelect(under, Vector512<float>.Zero, p * scale);
    }
}
