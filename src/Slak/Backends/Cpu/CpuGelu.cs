// Vectorized exact-form GELU for the CPU backend: GELU(x) = x Phi(x) and GELU'(x) = Phi(x) + x phi(x), with Phi the
// standard normal CDF (the erf form, as PyTorch's default GELU; not the tanh approximation). With a = |x|,
//   GELU(x)  = x Q(a) for x < 0, x - x Q(a) otherwise,   Q(a) = Phi(-a) = erfc(a / sqrt 2) / 2,
//   GELU'(x) = -R(a)  for x < 0, 1 + R(a)  otherwise,    R(a) = a phi(a) - Q(a),
// so each direction is one function of a, with no exp and no division: Q and R are tabulated as 31 polynomials of
// degree 5 on pieces of [0, A] (A = 6.5 for Q, 7 for R; fitted by tools/fit_gelu_tables.py), plus one all-zero piece
// that every a past A falls into (Q < 4e-11 and |R| < 7e-11 there: GELU saturates to exactly x or 0, GELU' to 1 or 0).
// With s = min(a / h, 31), piece k = round(s) and t = s - k, a lane's coefficients come from one 32-entry permute each
// (vpermt2ps over two registers; no memory gather) and Horner's rule in t with FMAs; the sign picks the branch by a
// masked select. About 25 instructions per 16 elements, all in registers (the 12 table vectors are loaded once per
// call), one pass (read x, write y).
// Error against float64 over every x = -12 .. 12 in steps of 2^-12 (CpuGeluTests.DenseSweepIsWithinTheStatedErrorBounds,
// which asserts the bounds in brackets): GELU 8.9e-7 relative for x >= -3 [1e-6] and 3.0e-6 down to x = -5 [4e-6]
// (the fit's error, relative to the tail's tiny values; PyTorch's 0.5 x (1 + erf) loses up to ~5e-2 there to cancellation),
// 3.3e-8 absolute for every x < 0 [5e-8]; GELU' 8.0e-8 absolute everywhere [1.2e-7]. (The erfcc form this replaced:
// 1.2e-6, 2.2e-6, 7.5e-8 and 2.1e-7.) Without AVX-512 the same operations run 8 lanes at a time with AVX2 (8-entry
// permutes and blends per coefficient) and one by one without, giving the same bits.
// Where both are needed from one x (the block MLP's backward), ActivationAndGradient takes GELU' from Q's polynomial
// alone: R = -s P'(t) - P(t), P' by Horner's rule beside P (46 instructions per 16 elements for both, against 33 + 35
// for the two kernels; GELU' 5.9e-8 absolute before the result's rounding, CpuGeluTests.ActivationAndGradient*).
// CpuMath.Gelu stays the scalar, double-precision definition the tests hold this against.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Span kernels of GELU and its derivative.</summary>
internal static class CpuGelu
{
    private const int Pieces = 32;
    private const int Degree = 5;

    /// <summary>True where the AVX-512 kernels run (F for the permutes and masks, DQ for vreduceps).</summary>
    internal static bool Vectorized => Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Avx512DQ.IsSupported;

    /// <summary>y = GELU(x).</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"y has {y.Length} elements, x has {x.Length}", nameof(y));
        int n = x.Length;
        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (!Vectorized)
            {
                ForwardLanes(px, py, n);
                return;
            }
            var q = new Table512(QTable);
            int i0 = 0;
            for (; i0 + Vector512<float>.Count <= n; i0 += Vector512<float>.Count)
                Gelu512(Vector512.Load(px + i0), q).Store(py + i0);
            if (i0 == n) return;
            var m = TailMask(n - i0);
            Avx512F.MaskStore(py + i0, m, Gelu512(Avx512F.MaskLoad(px + i0, m, Vector512<float>.Zero), q));
        }
    }

    /// <summary>dx = dy * GELU'(x).</summary>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length < x.Length || dx.Length < x.Length)
            throw new ArgumentException($"dy has {dy.Length} and dx {dx.Length} elements, x has {x.Length}", nameof(dx));
        int n = x.Length;
        fixed (float* px = x)
        fixed (float* pg = dy)
        fixed (float* pd = dx)
        {
            if (!Vectorized)
            {
                BackwardLanes(px, pg, pd, n);
                return;
            }
            var r = new Table512(RTable);
            int i0 = 0;
            for (; i0 + Vector512<float>.Count <= n; i0 += Vector512<float>.Count)
                (Vector512.Load(pg + i0) * Derivative512(Vector512.Load(px + i0), r)).Store(pd + i0);
            if (i0 == n) return;
            var m = TailMask(n - i0);
            var d = Avx512F.MaskLoad(pg + i0, m, Vector512<float>.Zero) *
                Derivative512(Avx512F.MaskLoad(px + i0, m, Vector512<float>.Zero), r);
            Avx512F.MaskStore(pd + i0, m, d);
        }
    }

    /// <summary>One row of a GEMM epilogue in one pass: c += bias (c keeps the pre-activation), y = GELU(c); a ragged
    /// row end is one masked vector.</summary>
    public static unsafe void BiasForward(Span<float> c, ReadOnlySpan<float> bias, Span<float> y)
    {
        if (bias.Length < c.Length || y.Length < c.Length)
            throw new ArgumentException($"bias has {bias.Length} and y {y.Length} elements, c has {c.Length}", nameof(c));
        int n = c.Length;
        fixed (float* pc = c)
        fixed (float* pb = bias)
        fixed (float* py = y)
        {
            if (!Vectorized)
            {
                for (int i = 0; i < n; i++) pc[i] += pb[i];
                ForwardLanes(pc, py, n);
                return;
            }
            var q = new Table512(QTable);
            int i0 = 0;
            for (; i0 + Vector512<float>.Count <= n; i0 += Vector512<float>.Count)
            {
                var xv = Vector512.Load(pc + i0) + Vector512.Load(pb + i0);
                xv.Store(pc + i0);
                Gelu512(xv, q).Store(py + i0);
            }
            if (i0 == n) return;
            var m = TailMask(n - i0);
            var xt = Avx512F.MaskLoad(pc + i0, m, Vector512<float>.Zero) + Avx512F.MaskLoad(pb + i0, m, Vector512<float>.Zero);
            Avx512F.MaskStore(pc + i0, m, xt);
            Avx512F.MaskStore(py + i0, m, Gelu512(xt, q));
        }
    }

    /// <summary>One row of a GEMM epilogue in one pass: g *= GELU'(x) (g becomes the gradient w.r.t. the
    /// pre-activation x), then acc += g (a column sum, one row at a time); a ragged row end is one masked vector.</summary>
    public static unsafe void BackwardAccumulate(ReadOnlySpan<float> x, Span<float> g, Span<float> acc)
    {
        if (x.Length < g.Length || acc.Length < g.Length)
            throw new ArgumentException($"x has {x.Length} and acc {acc.Length} elements, g has {g.Length}", nameof(g));
        int n = g.Length;
        fixed (float* px = x)
        fixed (float* pg = g)
        fixed (float* pa = acc)
        {
            if (!Vectorized)
            {
                BackwardLanes(px, pg, pg, n);
                for (int i = 0; i < n; i++) pa[i] += pg[i];
                return;
            }
            var r = new Table512(RTable);
            int i0 = 0;
            for (; i0 + Vector512<float>.Count <= n; i0 += Vector512<float>.Count)
            {
                var d = Vector512.Load(pg + i0) * Derivative512(Vector512.Load(px + i0), r);
                d.Store(pg + i0);
                (Vector512.Load(pa + i0) + d).Store(pa + i0);
            }
            if (i0 == n) return;
            var m = TailMask(n - i0);
            var dt = Avx512F.MaskLoad(pg + i0, m, Vector512<float>.Zero) *
                Derivative512(Avx512F.MaskLoad(px + i0, m, Vector512<float>.Zero), r);
            Avx512F.MaskStore(pg + i0, m, dt);
            Avx512F.MaskStore(pa + i0, m, Avx512F.MaskLoad(pa + i0, m, Vector512<float>.Zero) + dt);
        }
    }

    /// <summary>The MLP backward's GELU work on a block in one pass: act = GELU(x) (the same bits as
    /// <see cref="Forward"/>) and g *= GELU'(x) (g becomes the gradient w.r.t. the pre-activation x), both from one
    /// lookup of Q's piece: with P(t) Q's polynomial on the piece and s = |x| / h, Q'(|x|) = P'(t) / h, so
    /// R(|x|) = |x| phi(|x|) - Q(|x|) = -|x| Q'(|x|) - Q(|x|) = -s P'(t) - P(t), P' by Horner's rule alongside P
    /// (4 more FMAs) instead of R's own table (6 more lookups and a second s, k, t). Error of g against float64
    /// dy GELU'(x), per unit |dy|: R's 5.9e-8 (the tables' R: 8.0e-8 on 1 + R) plus the result's rounding; dy GELU'
    /// is one FMA, dy (+-R) + (dy or 0), so 1 + R is never rounded. Without AVX-512 one lane at a time (the same
    /// operations, so the same bits; the MLP runs its earlier passes there instead).</summary>
    public static unsafe void ActivationAndGradient(ReadOnlySpan<float> x, Span<float> act, Span<float> g)
    {
        if (act.Length < x.Length || g.Length < x.Length)
            throw new ArgumentException($"act has {act.Length} and g {g.Length} elements, x has {x.Length}", nameof(g));
        int n = x.Length;
        fixed (float* px = x)
        fixed (float* pa = act)
        fixed (float* pg = g)
        {
            if (!Vectorized)
            {
                for (int i = 0; i < n; i++) pg[i] = ActivationAndGradientScalar(px[i], pg[i], out pa[i]);
                return;
            }
            var q = new Table512(QTable);
            int i0 = 0;
            for (; i0 + Vector512<float>.Count <= n; i0 += Vector512<float>.Count)
            {
                var xv = Vector512.Load(px + i0);
                var gv = GeluAndGradient512(xv, Vector512.Load(pg + i0), q, out var yv);
                yv.Store(pa + i0);
                gv.Store(pg + i0);
            }
            if (i0 == n) return;
            var m = TailMask(n - i0);
            var gt = GeluAndGradient512(Avx512F.MaskLoad(px + i0, m, Vector512<float>.Zero),
                Avx512F.MaskLoad(pg + i0, m, Vector512<float>.Zero), q, out var yt);
            Avx512F.MaskStore(pa + i0, m, yt);
            Avx512F.MaskStore(pg + i0, m, gt);
        }
    }

    /// <summary>GELU(x) into y (as <see cref="Gelu512"/>) and dy GELU'(x) returned, from Q's piece and its derivative
    /// (see <see cref="ActivationAndGradient"/>). GELU'(x) = 1 + R for x &gt;= 0 and -R below: dy (R with x's sign
    /// bit flipped in) + (dy where x's sign bit is clear, else 0), so -0 takes the x &lt; 0 branch as it must
    /// (-R(0) = 1 + R(0) = 1/2) and a NaN x gives NaN through R.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluAndGradient512(Vector512<float> x, Vector512<float> dy, in Table512 q,
        out Vector512<float> y)
    {
        var s = Table512.Scaled(x, QInvH);
        var p = q.EvaluateWithDerivative(s, out var dp);
        var px = x * p;
        y = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), px, x - px);
        var r = Avx512F.FusedMultiplySubtractNegated(s, dp, p); // -(s P') - P
        // 0x78: r ^ (x & sign), the ternary-logic table of A ^ (B & C) with A, B, C = 0xF0, 0xCC, 0xAA.
        var signedR = Avx512F.TernaryLogic(r.AsUInt32(), x.AsUInt32(), Vector512.Create(0x8000_0000u), 0x78).AsSingle();
        var dyWhereNonNegative = Vector512.AndNot(dy, Avx512F.ShiftRightArithmetic(x.AsInt32(), 31).AsSingle());
        return Avx512F.FusedMultiplyAdd(dy, signedR, dyWhereNonNegative);
    }

    /// <summary>The same operations as <see cref="GeluAndGradient512"/> on one lane (so the same bits): returns
    /// dy GELU'(x), y = GELU(x).</summary>
    internal static float ActivationAndGradientScalar(float x, float dy, out float y)
    {
        float s = MathF.Min(MathF.Abs(x) * QInvH, Pieces - 1);
        float k = MathF.Round(s);
        float t = s - k;
        int piece = (int)k & (Pieces - 1);
        float p = QTable[Degree * Pieces + piece], dp = p;
        p = MathF.FusedMultiplyAdd(p, t, QTable[(Degree - 1) * Pieces + piece]);
        for (int j = Degree - 2; j >= 0; j--)
        {
            dp = MathF.FusedMultiplyAdd(dp, t, p);
            p = MathF.FusedMultiplyAdd(p, t, QTable[j * Pieces + piece]);
        }
        float px = x * p;
        y = x < 0 ? px : x - px;
        float r = MathF.FusedMultiplyAdd(-s, dp, -p);
        bool negative = float.IsNegative(x);
        return MathF.FusedMultiplyAdd(dy, negative ? -r : r, negative ? 0f : dy);
    }

    /// <summary>The fallback without AVX-512: 8 lanes at a time with AVX2 (the coefficients by permutes and blends),
    /// the rest one by one; the same operations as the AVX-512 path, so the same bits.</summary>
    internal static unsafe void ForwardLanes(float* x, float* y, int n)
    {
        int i = 0;
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            fixed (float* q = QTable)
            {
                for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
                {
                    var xv = Vector256.Load(x + i);
                    var p = xv * Evaluate256(xv, QInvH, q);
                    Vector256.ConditionalSelect(Vector256.LessThan(xv, Vector256<float>.Zero), p, xv - p).Store(y + i);
                }
            }
        }
        for (; i < n; i++) y[i] = GeluScalar(x[i]);
    }

    /// <summary>dx = dy * GELU'(x) without AVX-512, as <see cref="ForwardLanes"/>; dx may be dy.</summary>
    internal static unsafe void BackwardLanes(float* x, float* dy, float* dx, int n)
    {
        int i = 0;
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            fixed (float* r = RTable)
            {
                for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
                {
                    var xv = Vector256.Load(x + i);
                    var v = Evaluate256(xv, RInvH, r);
                    var d = Vector256.ConditionalSelect(Vector256.LessThan(xv, Vector256<float>.Zero), -v, Vector256<float>.One + v);
                    (Vector256.Load(dy + i) * d).Store(dx + i);
                }
            }
        }
        for (; i < n; i++) dx[i] = dy[i] * DerivativeScalar(x[i]);
    }

    /// <summary><see cref="Table512.Evaluate"/> in 8 lanes: vminps (NaN stays NaN), vroundps to nearest even, and
    /// each coefficient from its 32 pieces by four 8-entry vpermps (index bits 0-2, table from memory) and two levels of
    /// vblendvps (index bits 3 and 4 moved into the sign bit); a NaN's out-of-range index selects some piece, and t
    /// stays NaN. Gathers measured slower (8 cycles per element against ~4 for this).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> Evaluate256(Vector256<float> x, float invH, float* table)
    {
        var s = Avx.Min(Vector256.Create((float)(Pieces - 1)), Vector256.Abs(x) * Vector256.Create(invH));
        var k = Avx.RoundToNearestInteger(s);
        var t = s - k;
        var piece = Avx.ConvertToVector256Int32WithTruncation(k);
        var bit3 = Avx2.ShiftLeftLogical(piece, 28).AsSingle();
        var bit4 = Avx2.ShiftLeftLogical(piece, 27).AsSingle();
        var p = Lookup256(table + Degree * Pieces, piece, bit3, bit4);
        for (int j = Degree - 1; j >= 0; j--) p = Fma.MultiplyAdd(p, t, Lookup256(table + j * Pieces, piece, bit3, bit4));
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> Lookup256(float* row, Vector256<int> piece, Vector256<float> bit3, Vector256<float> bit4)
    {
        var lo = Avx.BlendVariable(Avx2.PermuteVar8x32(Avx.LoadVector256(row), piece),
            Avx2.PermuteVar8x32(Avx.LoadVector256(row + 8), piece), bit3);
        var hi = Avx.BlendVariable(Avx2.PermuteVar8x32(Avx.LoadVector256(row + 16), piece),
            Avx2.PermuteVar8x32(Avx.LoadVector256(row + 24), piece), bit3);
        return Avx.BlendVariable(lo, hi, bit4);
    }

    /// <summary>Lanes [0, count) set, for a masked load/store of a row's last count (1..15) elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> TailMask(int count) =>
        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Gelu512(Vector512<float> x, in Table512 q)
    {
        var p = x * q.Evaluate(x, QInvH);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), p, x - p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Derivative512(Vector512<float> x, in Table512 r)
    {
        var v = r.Evaluate(x, RInvH);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -v, Vector512<float>.One + v);
    }

    /// <summary>The same operations as <see cref="Gelu512"/> on one lane (so the same bits).</summary>
    internal static float GeluScalar(float x)
    {
        float p = x * EvaluateScalar(QTable, x, QInvH);
        return x < 0 ? p : x - p;
    }

    /// <summary>The same operations as <see cref="Derivative512"/> on one lane (so the same bits).</summary>
    internal static float DerivativeScalar(float x)
    {
        float v = EvaluateScalar(RTable, x, RInvH);
        return x < 0 ? -v : 1f + v;
    }

    private static float EvaluateScalar(float[] table, float x, float invH)
    {
        float s = MathF.Min(MathF.Abs(x) * invH, Pieces - 1); // NaN stays NaN (and k becomes 0)
        float k = MathF.Round(s);                             // to nearest even, as vcvtps2dq and vreduceps
        float t = s - k;                                      // exact
        int piece = (int)k & (Pieces - 1);
        float p = table[Degree * Pieces + piece];
        for (int j = Degree - 1; j >= 0; j--) p = MathF.FusedMultiplyAdd(p, t, table[j * Pieces + piece]);
        return p;
    }

    /// <summary>A table's 6 coefficients x 32 pieces in twelve registers (low and high 16 pieces per coefficient).</summary>
    private readonly struct Table512
    {
        private readonly Vector512<float> _l0, _h0, _l1, _h1, _l2, _h2, _l3, _h3, _l4, _h4, _l5, _h5;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Table512(float[] table)
        {
            ref float t = ref MemoryMarshal.GetArrayDataReference(table);
            _l0 = Vector512.LoadUnsafe(ref t, 0);
            _h0 = Vector512.LoadUnsafe(ref t, 16);
            _l1 = Vector512.LoadUnsafe(ref t, 32);
            _h1 = Vector512.LoadUnsafe(ref t, 48);
            _l2 = Vector512.LoadUnsafe(ref t, 64);
            _h2 = Vector512.LoadUnsafe(ref t, 80);
            _l3 = Vector512.LoadUnsafe(ref t, 96);
            _h3 = Vector512.LoadUnsafe(ref t, 112);
            _l4 = Vector512.LoadUnsafe(ref t, 128);
            _h4 = Vector512.LoadUnsafe(ref t, 144);
            _l5 = Vector512.LoadUnsafe(ref t, 160);
            _h5 = Vector512.LoadUnsafe(ref t, 176);
        }

        /// <summary>The table's polynomial at a = |x|: s = min(|x| / h, 31), piece k = round(s) (vcvtps2dq, to nearest
        /// even), t = s - k (vreduceps, the same rounding), the coefficients by vpermt2ps on k's low 5 bits, Horner in
        /// t.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Evaluate(Vector512<float> x, float invH)
        {
            var s = Scaled(x, invH);
            var t = Avx512DQ.Reduce(s, 0b1000);
            var k = Avx512F.ConvertToVector512Int32(s);
            var p = Avx512F.PermuteVar16x32x2(_l5, k, _h5);
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l4, k, _h4));
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l3, k, _h3));
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l2, k, _h2));
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l1, k, _h1));
            return Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l0, k, _h0));
        }

        /// <summary>s = min(|x| / h, 31); vminps returns its second operand when either is NaN, so a NaN x stays NaN
        /// (vrangeps would not).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Scaled(Vector512<float> x, float invH) =>
            Avx512F.Min(Vector512.Create((float)(Pieces - 1)), Vector512.Abs(x) * Vector512.Create(invH));

        /// <summary>The polynomial at s (from <see cref="Scaled"/>) as <see cref="Evaluate"/>, the same bits, and its
        /// derivative in t, dp = P'(t), by Horner's rule alongside (dp = dp t + p before each step of p).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> EvaluateWithDerivative(Vector512<float> s, out Vector512<float> dp)
        {
            var t = Avx512DQ.Reduce(s, 0b1000);
            var k = Avx512F.ConvertToVector512Int32(s);
            var p = Avx512F.PermuteVar16x32x2(_l5, k, _h5);
            dp = p;
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l4, k, _h4));
            dp = Avx512F.FusedMultiplyAdd(dp, t, p);
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l3, k, _h3));
            dp = Avx512F.FusedMultiplyAdd(dp, t, p);
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l2, k, _h2));
            dp = Avx512F.FusedMultiplyAdd(dp, t, p);
            p = Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l1, k, _h1));
            dp = Avx512F.FusedMultiplyAdd(dp, t, p);
            return Avx512F.FusedMultiplyAdd(p, t, Avx512F.PermuteVar16x32x2(_l0, k, _h0));
        }
    }

    // Generated by tools/fit_gelu_tables.py (INTERVALS = 32, DEGREE = 5).
    // Q: 1/h = 4.69230747 (A = 6.5); coefficient j of piece k at [j * 32 + k].
    private const float QInvH = 4.69230747f;
    private static readonly float[] QTable =
    [
        0.5f, 0.415618718f, 0.334970295f, 0.261299491f,
        0.196979687f, 0.143308178f, 0.100503378f, 0.0678753629f,
        0.0441048555f, 0.0275534261f, 0.0165384952f, 0.00953237899f,
        0.00527324155f, 0.00279858545f, 0.00142436416f, 0.000694995746f,
        0.000325009692f, 0.00014563062f, 6.2510524e-05f, 2.56986696e-05f,
        1.01169026e-05f, 3.81324503e-06f, 1.37590985e-06f, 4.75201261e-07f,
        1.57075092e-07f, 4.96859656e-08f, 1.50388892e-08f, 4.3552788e-09f,
        1.20670318e-09f, 3.19843929e-10f, 8.10962131e-11f, 0f,
        -0.0850204825f, -0.0831115171f, -0.0776379555f, -0.0693046302f,
        -0.0591188036f, -0.0481908172f, -0.0375386141f, -0.027942637f,
        -0.0198761299f, -0.0135105029f, -0.00877579488f, -0.00544724194f,
        -0.00323103834f, -0.00183139835f, -0.00099197065f, -0.000513440405f,
        -0.000253954844f, -0.000120032339f, -5.42144771e-05f, -2.33995524e-05f,
        -9.65106119e-06f, -3.80380152e-06f, -1.43263605e-06f, -5.1561932e-07f,
        -1.77336332e-07f, -5.82829536e-08f, -1.83046165e-08f, -5.49357404e-09f,
        -1.57552238e-09f, -4.31786884e-10f, -1.13080982e-10f, 0f,
        -8.8283042e-10f, 0.00188736967f, 0.0035261435f, 0.00472149532f,
        0.00537009491f, 0.00547180884f, 0.00511477329f, 0.00444183731f,
        0.00361093227f, 0.00276128855f, 0.00199289457f, 0.00136071513f,
        0.000880483189f, 0.000540659064f, 0.000315372221f, 0.000174894769f,
        9.22721374e-05f, 4.63382166e-05f, 2.21603914e-05f, 1.00959614e-05f,
        4.38316465e-06f, 1.81390794e-06f, 7.15700253e-07f, 2.69291803e-07f,
        9.66423599e-08f, 3.30850156e-08f, 1.08062173e-08f, 3.36780559e-09f,
        1.00160824e-09f, 2.84294227e-10f, 7.70184888e-11f, 0f,
        0.000643582433f, 0.000600550848f, 0.000480924791f, 0.00031017093f,
        0.000122310594f, -4.94089836e-05f, -0.000180449919f, -0.000259207562f,
        -0.000286879862f, -0.000273965386f, -0.000235280153f, -0.000185369063f,
        -0.000135500886f, -9.25446075e-05f, -5.9334463e-05f, -3.58303587e-05f,
        -2.04287626e-05f, -1.10174906e-05f, -5.62856803e-06f, -2.72699685e-06f,
        -1.25413771e-06f, -5.47911668e-07f, -2.27539175e-07f, -8.98699426e-08f,
        -3.37740573e-08f, -1.20818182e-08f, -4.11536982e-09f, -1.3351843e-09f,
        -4.12707118e-10f, -1.21565563e-10f, -3.41299246e-11f, 0f,
        -2.47521683e-08f, -2.10468115e-05f, -3.75130585e-05f, -4.61933741e-05f,
        -4.61096533e-05f, -3.85566309e-05f, -2.6408954e-05f, -1.30428407e-05f,
        -1.31799231e-06f, 7.04572949e-06f, 1.15874327e-05f, 1.28237916e-05f,
        1.17830859e-05f, 9.56440181e-06f, 7.04821423e-06f, 4.78508809e-06f,
        3.01957289e-06f, 1.78147548e-06f, 9.86643954e-07f, 5.14489841e-07f,
        2.53164643e-07f, 1.17759591e-07f, 5.1851142e-08f, 2.16360014e-08f,
        8.56355342e-09f, 3.21754623e-09f, 1.14834586e-09f, 3.89528965e-10f,
        1.25641886e-10f, 3.85511935e-11f, 1.12566284e-11f, 0f,
        -4.35121274e-06f, -3.89213756e-06f, -2.5891145e-06f, -8.51693017e-07f,
        8.41380654e-07f, 2.08429424e-06f, 2.66350139e-06f, 2.58958107e-06f,
        2.04514936e-06f, 1.28668523e-06f, 5.48137962e-07f, -1.92590761e-08f,
        -3.60984416e-07f, -4.98052373e-07f, -4.90972127e-07f, -4.06808738e-07f,
        -2.98797147e-07f, -1.99388026e-07f, -1.22538793e-07f, -6.99464451e-08f,
        -3.72931623e-08f, -1.86467233e-08f, -8.76941098e-09f, -3.88789889e-09f,
        -1.6278231e-09f, -6.44563847e-10f, -2.41655612e-10f, -8.58657312e-11f,
        -2.89392971e-11f, -9.25766668e-12f, -2.81266872e-12f, 0f,
    ];
    // R: 1/h = 4.35714293 (A = 7.0); coefficient j of piece k at [j * 32 + k].
    private const float RInvH = 4.35714293f;
    private static readonly float[] RTable =
    [
        -0.5f, -0.320056409f, -0.158300191f, -0.0288470443f,
        0.0610025935f, 0.111409768f, 0.12860994f, 0.122261271f,
        0.102583952f, 0.0781704858f, 0.0548874326f, 0.0358090661f,
        0.0218209736f, 0.0124632241f, 0.00668836711f, 0.00337839941f,
        0.00160833797f, 0.000722369645f, 0.000306339178f, 0.000122738784f,
        4.6485824e-05f, 1.66495338e-05f, 5.64129778e-06f, 1.80875486e-06f,
        5.48925073e-07f, 1.57714794e-07f, 4.2908006e-08f, 1.10555609e-08f,
        2.69811862e-09f, 6.23782304e-10f, 1.36629499e-10f, 0f,
        0.18312104f, 0.173663646f, 0.14744848f, 0.110230513f,
        0.0695207343f, 0.0323797688f, 0.00368016516f, -0.0146366432f,
        -0.0232678354f, -0.0245811883f, -0.0214837007f, -0.0165402815f,
        -0.0115255471f, -0.00737314299f, -0.00436711544f, -0.00240803976f,
        -0.00124076614f, -0.000599024526f, -0.000271518773f, -0.000115724259f,
        -4.64347795e-05f, -1.75580972e-05f, -6.26137034e-06f, -2.1071844e-06f,
        -6.69598137e-07f, -2.01004241e-07f, -5.70226213e-08f, -1.5292839e-08f,
        -3.87843579e-09f, -9.3039032e-10f, -2.11160603e-10f, 0f,
        1.18485843e-08f, -0.00927120633f, -0.0164478458f, -0.020124523f,
        -0.0199815538f, -0.0167470761f, -0.0117936954f, -0.0065900404f,
        -0.00224852771f, 0.000685281062f, 0.00219475036f, 0.00260056579f,
        0.00233819243f, 0.00179292297f, 0.00122335902f, 0.000758186507f,
        0.000431797875f, 0.000227633951f, 0.000111630143f, 5.11012076e-05f,
        2.18931636e-05f, 8.79571417e-06f, 3.31887759e-06f, 1.17762579e-06f,
        3.93331248e-07f, 1.23767933e-07f, 3.67165036e-08f, 1.02748761e-08f,
        2.71378586e-09f, 6.76783463e-10f, 1.59428484e-10f, 0f,
        -0.00321533601f, -0.00284515368f, -0.00185888621f, -0.000574744248f,
        0.000627185684f, 0.0014496427f, 0.00176840392f, 0.00163773657f,
        0.00122659176f, 0.000729519816f, 0.000295909937f, -2.41382622e-07f,
        -0.000152862805f, -0.000196295994f, -0.000176486516f, -0.000131970693f,
        -8.67291019e-05f, -5.13738851e-05f, -2.78129592e-05f, -1.3880499e-05f,
        -6.42248915e-06f, -2.76630431e-06f, -1.11247948e-06f, -4.18668037e-07f,
        -1.47709983e-07f, -4.89254468e-08f, -1.52318709e-08f, -4.46156312e-09f,
        -1.23052579e-09f, -3.19790666e-10f, -7.8355801e-11f, 0f,
        3.32261578e-07f, 0.000178859889f, 0.00029843353f, 0.000324788853f,
        0.000261543086f, 0.00014372135f, 1.85499666e-05f, -7.53947752e-05f,
        -0.000120551471f, -0.000120704637f, -9.25967688e-05f, -5.53126083e-05f,
        -2.27685105e-05f, -1.22864742e-06f, 9.2598857e-06f, 1.18568378e-05f,
        1.02766762e-05f, 7.32934723e-06f, 4.56754515e-06f, 2.55550276e-06f,
        1.30283638e-06f, 6.10794928e-07f, 2.64939558e-07f, 1.067882e-07f,
        4.01250233e-08f, 1.40892338e-08f, 4.63208938e-09f, 1.42809642e-09f,
        4.13410112e-10f, 1.12488165e-10f, 2.87953186e-11f, 0f,
        3.76593198e-05f, 3.1574371e-05f, 1.51292143e-05f, -4.44829811e-06f,
        -1.96624551e-05f, -2.58847795e-05f, -2.29101643e-05f, -1.41082919e-05f,
        -4.10655548e-06f, 3.47305286e-06f, 7.13534382e-06f, 7.32676472e-06f,
        5.49706556e-06f, 3.12837415e-06f, 1.17705099e-06f, -1.49975836e-08f,
        -5.2651302e-07f, -6.04006857e-07f, -4.84273698e-07f, -3.21411648e-07f,
        -1.86614969e-07f, -9.72519985e-08f, -4.61469085e-08f, -2.01173744e-08f,
        -8.10616374e-09f, -3.03218517e-09f, -1.05631959e-09f, -3.43570672e-10f,
        -1.04538045e-10f, -2.9803205e-11f, -7.97172744e-12f, 0f,
    ];
}
