// Argument validation of the C ABI, with the rules and messages of cuda/capi/slak_capi.cpp (the other two
// implementations of slak.h), plus one limit of the C# engine: a tensor of more than int.MaxValue elements is
// SLAK_STATUS_PROBLEM_TOO_LARGE (the engine indexes with 32-bit spans). Every check throws a SlakException before the
// engine runs, so a rejected call writes nothing.
using System.Globalization;

namespace Slak.Native;

/// <summary>The sizes and strides of one call, read from a params struct.</summary>
internal readonly unsafe struct Geometry
{
    public Geometry(long n, long c, long h, long w, long* xStride, long* yStride)
    {
        N = n;
        C = c;
        H = h;
        W = w;
        XStride = xStride;
        YStride = yStride;
    }

    public long N { get; }
    public long C { get; }
    public long H { get; }
    public long W { get; }
    public long* XStride { get; }
    public long* YStride { get; }

    /// <summary>n*c*h*w (checked not to overflow by <see cref="Validation.CheckGeometry"/>).</summary>
    public long Numel => N * C * H * W;
}

internal static unsafe class Validation
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static SlakException Fail(SlakStatus status, string message) => new(status, message);

    public static void CheckGeometry(string fn, Geometry g)
    {
        long[] size = [g.N, g.C, g.H, g.W];
        string[] names = ["n", "c", "h", "w"];
        for (int d = 0; d < 4; d++)
        {
            if (size[d] < 0 || size[d] > int.MaxValue)
                throw Fail(size[d] < 0 ? SlakStatus.InvalidArgument : SlakStatus.ProblemTooLarge,
                    string.Create(Inv, $"{fn}: size {names[d]} = {size[d]} is out of range [0, {int.MaxValue}]"));
        }
        // Each factor is < 2^31, so n*c (and n*c*h) fit in 64 bits before the int32 limit below is tested.
        long p = 1;
        for (int d = 0; d < 4; d++)
        {
            p *= size[d];
            if (p > int.MaxValue)
                throw Fail(SlakStatus.ProblemTooLarge, string.Create(Inv,
                    $"{fn}: n*c*h*w = {g.N} x {g.C} x {g.H} x {g.W} exceeds {int.MaxValue} elements (the CPU engine's limit)"));
        }
        if (g.XStride == null || g.YStride == null) throw Fail(SlakStatus.NullPointer, $"{fn}: strides");
        CheckStrides(fn, "x", g, g.XStride);
        CheckStrides(fn, "y", g, g.YStride);
    }

    private static void CheckStrides(string fn, string which, Geometry g, long* stride)
    {
        if (g.Numel == 0) return; // nothing is addressed
        long[] size = [g.N, g.C, g.H, g.W];
        long expect = 1;
        for (int d = 3; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expect)
            {
                long s0 = stride[0], s1 = stride[1], s2 = stride[2], s3 = stride[3];
                throw Fail(SlakStatus.UnsupportedLayout, string.Create(Inv,
                    $"{fn}: {which} strides ({s0}, {s1}, {s2}, {s3}) for sizes ({g.N}, " +
                    $"{g.C}, {g.H}, {g.W}) are not packed NCHW (expected stride[{d}] = {expect}); make the tensor " +
                    $"contiguous first"));
            }
            expect *= size[d];
        }
    }

    public static void CheckFilter(string fn, string which, long c, int kh, int kw)
    {
        if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
            throw Fail(SlakStatus.InvalidArgument,
                string.Create(Inv, $"{fn}: {which} filter must have odd extents >= 1, got kh={kh} kw={kw}"));
        long taps = (long)kh * kw;
        if (taps > int.MaxValue || c * taps > int.MaxValue)
            throw Fail(SlakStatus.ProblemTooLarge,
                string.Create(Inv, $"{fn}: {which} filter c*kh*kw = {c} x {kh} x {kw} exceeds {int.MaxValue}"));
    }

    public static Geometry CheckSingle(string fn, SingleParams* p)
    {
        if (p == null) throw Fail(SlakStatus.NullPointer, $"{fn}: params is NULL");
        var g = new Geometry(p->N, p->C, p->H, p->W, p->XStride, p->YStride);
        CheckGeometry(fn, g);
        CheckFilter(fn, "the", g.C, p->Kh, p->Kw);
        return g;
    }

    public static Geometry CheckDecomposed(string fn, DecomposedParams* p)
    {
        if (p == null) throw Fail(SlakStatus.NullPointer, $"{fn}: params is NULL");
        var g = new Geometry(p->N, p->C, p->H, p->W, p->XStride, p->YStride);
        CheckGeometry(fn, g);
        if (p->NumBranches < 1 || p->NumBranches > DecomposedParams.MaxBranches)
            throw Fail(SlakStatus.InvalidArgument, string.Create(Inv,
                $"{fn}: num_branches must be in [1, {DecomposedParams.MaxBranches}], got {p->NumBranches}"));
        for (int b = 0; b < p->NumBranches; b++)
            CheckFilter(fn, string.Create(Inv, $"branch {b}"), g.C, p->Kh[b], p->Kw[b]);
        return g;
    }

    public static void Need(string fn, void* pointer, string name, bool required)
    {
        if (required && pointer == null) throw Fail(SlakStatus.NullPointer, $"{fn}: {name} is NULL");
    }
}
