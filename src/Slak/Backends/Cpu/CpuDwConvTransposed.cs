// Wide kernels on small maps, run on the transposed plane. The plane loops clip kernel ROWS exactly per output row
// but kernel COLUMNS only per output segment (up to 8 vectors), so a 5 x 13 kernel on a 7-wide map runs all 13
// columns for every output column although each output reaches only 7 of them; as 13 x 5 on the transposed plane
// its off-map rows are skipped instead. In the batch-interleaved layout every pixel is one whole vector (8 images),
// so transposing a plane is just moving vectors. Each pass takes the orientation with fewer vector multiply-adds
// (a 10 % margin pays for the transposes); SLaK-T at batch 8: stage 4's 5x13 (2639 -> 1715 per plane), stage 3's
// 5x47 (-23 %).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Orientation choice and vector transposes of interleaved planes.</summary>
internal static unsafe class CpuDwConvTransposed
{
    /// <summary>The transposed geometry (W x H) of an interleaved one.</summary>
    internal static CpuDwConvEngine.Geometry Of(in CpuDwConvEngine.Geometry g) => new(g.W, g.H, g.Interleaved);

    /// <summary>Vector multiply-adds the plane loops issue for a dense kh x kw kernel on geometry g (rows clipped
    /// per output row, columns per segment, as CpuDwConvEngine does).</summary>
    internal static long Cost(in CpuDwConvEngine.Geometry g, int kh, int kw)
    {
        int ph = kh / 2, pw = kw / 2;
        long rows = 0;
        for (int r = 0; r < g.H; r++) rows += Math.Min(kh - 1, g.H - 1 + ph - r) - Math.Max(0, ph - r) + 1;
        long perRow = 0;
        int x0 = 0;
        for (int b = 0; b < g.Blocks; b++)
        {
            int nv = g.BlockVecs(b), ext = nv * g.ColsPerVec;
            int jlo = Math.Max(0, pw - (x0 + ext - 1)), jhi = Math.Min(kw - 1, g.W - 1 + pw - x0);
            perRow += (long)Math.Max(0, jhi - jlo + 1) * nv;
            x0 += ext;
        }
        return rows * perRow;
    }

    /// <summary>The passes as they will run on geometry g: each replaced by its transposed form where that saves at
    /// least 10 % of the multiply-adds (interleaved layout only). Passes created here are listed in
    /// <paramref name="created"/> for release.</summary>
    internal static DwPass[] Orient(in CpuDwConvEngine.Geometry g, DwPass[] passes, out DwPass[] created)
    {
        var run = (DwPass[])passes.Clone();
        var made = new List<DwPass>();
        if (g.Interleaved && DisableOverride != "1")
        {
            var gt = Of(g);
            for (int b = 0; b < run.Length; b++)
            {
                var p = run[b];
                if (p.Kh == p.Kw || Cost(gt, p.Kw, p.Kh) * 10 > Cost(g, p.Kh, p.Kw) * 9) continue;
                run[b] = p.AsTransposed();
                made.Add(run[b]);
            }
        }
        created = [.. made];
        return run;
    }

    /// <summary>SLAK_DWCONV_NO_TRANSPOSE=1 keeps every pass in its own orientation (side-by-side benchmarks).</summary>
    private static readonly string? DisableOverride = Environment.GetEnvironmentVariable("SLAK_DWCONV_NO_TRANSPOSE");

    /// <summary>Padded interleaved plane xp (geometry g) -> padded transposed plane xpt (geometry gt = Of(g)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PadTransposed(in CpuDwConvEngine.Geometry g, float* xp, in CpuDwConvEngine.Geometry gt,
        float* xpt)
    {
        int right = gt.Stride - gt.ImageOffset - gt.W * 8;
        for (int q = 0; q < g.W; q++)
        {
            float* d = xpt + (nint)q * gt.Stride;
            new Span<float>(d, gt.ImageOffset).Clear();
            new Span<float>(d + gt.ImageOffset + gt.W * 8, right).Clear();
            float* s = xp + g.ImageOffset + q * 8;
            d += gt.ImageOffset;
            for (int r = 0; r < g.H; r++) Vector256.Load(s + (nint)r * g.Stride).Store(d + r * 8);
        }
    }

    /// <summary>Output-shaped interleaved plane src (geometry a) -> dst (geometry b, the transpose of a), written or
    /// added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Out(in CpuDwConvEngine.Geometry a, float* src, in CpuDwConvEngine.Geometry b, float* dst,
        bool add)
    {
        for (int r = 0; r < a.H; r++)
        {
            float* s = src + (nint)r * a.Wb;
            for (int q = 0; q < a.W; q++)
            {
                float* d = dst + (nint)q * b.Wb + r * 8;
                var v = Vector256.Load(s + q * 8);
                if (add) v += Vector256.Load(d);
                v.Store(d);
            }
        }
    }
}
