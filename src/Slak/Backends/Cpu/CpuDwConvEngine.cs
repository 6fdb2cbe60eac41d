// Drivers of the CPU depthwise convolution: plane geometry (zero-padded scratch copies, output segments of up to
// eight Vector256), the per-plane loops over output rows with the kernel rows clipped to the image, and the
// multi-threaded loops over (image, channel) planes. Every branch of a decomposed operator is computed from one
// padded copy of the input plane, made once per plane while it is hot in cache.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>One branch prepared for one call: its tap list (flipped for the input gradient) and the current weights
/// gathered at those taps (times the mask on the dense path).</summary>
internal sealed class DwPass(int kh, int kw, DwTapList taps, float[] wts)
{
    public int Kh { get; } = kh;
    public int Kw { get; } = kw;
    public DwTapList Taps { get; } = taps;
    public float[] Wts { get; } = wts;

    public static DwPass Gather(int kh, int kw, DwTapList taps, ReadOnlySpan<float> w, ReadOnlySpan<float> mask)
    {
        var flat = taps.Flat;
        var wts = new float[flat.Length];
        if (mask.IsEmpty)
            for (int t = 0; t < wts.Length; t++) wts[t] = w[flat[t]];
        else
            for (int t = 0; t < wts.Length; t++) wts[t] = w[flat[t]] * mask[flat[t]];
        return new DwPass(kh, kw, taps, wts);
    }
}

/// <summary>Plane loops shared by <see cref="CpuDwConv"/> and <see cref="CpuDecomposedDwConv"/>.</summary>
internal static unsafe class CpuDwConvEngine
{
    private const int L = CpuDwConvMicro.Lanes;
    private const int MaxVecs = 8;

    [ThreadStatic] private static float[]? t_scratch;

    /// <summary>Row layout of the scratch planes for an H x W image.</summary>
    internal readonly struct Geometry
    {
        public Geometry(int h, int w)
        {
            H = h;
            W = w;
            int nvec = (w + L - 1) / L;
            Blocks = (nvec + MaxVecs - 1) / MaxVecs;
            BaseVecs = nvec / Blocks;
            ExtraBlocks = nvec % Blocks;
            Wb = nvec * L;
            int maxBlock = (BaseVecs + (ExtraBlocks > 0 ? 1 : 0)) * L;
            // Clipped tap columns read at most one segment width beyond either edge of the image.
            Pad = maxBlock;
            Stride = Pad + Wb + Pad;
        }

        public int H { get; }
        public int W { get; }
        public int Blocks { get; }
        public int BaseVecs { get; }
        public int ExtraBlocks { get; }

        /// <summary>Row stride of output-shaped scratch (W rounded up to whole vectors; the tail is zero).</summary>
        public int Wb { get; }

        /// <summary>Zero columns on each side of an input row in the padded scratch.</summary>
        public int Pad { get; }

        /// <summary>Row stride of the padded input scratch.</summary>
        public int Stride { get; }

        public int PaddedLength => H * Stride;
        public int OutLength => H * Wb;
    }

    /// <summary>A per-thread pinned scratch buffer of at least len floats (contents undefined).</summary>
    internal static float* Scratch(int len)
    {
        var b = t_scratch;
        if (b is null || b.Length < len)
            t_scratch = b = GC.AllocateUninitializedArray<float>(Math.Max(len, 4096), pinned: true);
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(b));
    }

    /// <summary>Copies an H x W plane into padded scratch (row stride Stride, image at column Pad, zeros around).</summary>
    internal static void PadPlane(in Geometry g, float* src, float* dst)
    {
        int right = g.Stride - g.Pad - g.W;
        for (int r = 0; r < g.H; r++)
        {
            float* d = dst + (nint)r * g.Stride;
            new Span<float>(d, g.Pad).Clear();
            new ReadOnlySpan<float>(src + (nint)r * g.W, g.W).CopyTo(new Span<float>(d + g.Pad, g.W));
            new Span<float>(d + g.Pad + g.W, right).Clear();
        }
    }

    /// <summary>Copies an H x W plane into output-shaped scratch (row stride Wb, zero tail).</summary>
    internal static void TailPadPlane(in Geometry g, float* src, float* dst)
    {
        for (int r = 0; r < g.H; r++)
        {
            float* d = dst + (nint)r * g.Wb;
            new ReadOnlySpan<float>(src + (nint)r * g.W, g.W).CopyTo(new Span<float>(d, g.W));
            new Span<float>(d + g.W, g.Wb - g.W).Clear();
        }
    }

    /// <summary>Copies (or adds) output-shaped scratch into a dense H x W plane.</summary>
    internal static void StorePlane(in Geometry g, float* src, float* dst, bool add)
    {
        for (int r = 0; r < g.H; r++)
        {
            var s = new ReadOnlySpan<float>(src + (nint)r * g.Wb, g.W);
            var d = new Span<float>(dst + (nint)r * g.W, g.W);
            if (add) System.Numerics.Tensors.TensorPrimitives.Add(d, s, d);
            else s.CopyTo(d);
        }
    }

    /// <summary>Correlates one padded plane (xp, from PadPlane) with channel c of a pass into output scratch.</summary>
    internal static void ConvPlane(in Geometry g, float* xp, DwPass pass, int c, float* outp, bool accumulate)
    {
        int kh = pass.Kh, kw = pass.Kw, ph = kh / 2, pw = kw / 2;
        var taps = pass.Taps;
        fixed (int* rowStart0 = taps.RowStart)
        fixed (int* cols = taps.Cols)
        fixed (float* wts = pass.Wts)
        {
            int* rowStart = rowStart0 + c * (kh + 1);
            if (rowStart[0] == rowStart[kh])
            {
                // No live tap in this channel: the output is zero.
                if (!accumulate) new Span<float>(outp, g.OutLength).Clear();
                return;
            }
            float* img = xp + g.Pad;
            for (int r = 0; r < g.H; r++)
            {
                int ilo = Math.Max(0, ph - r), ihi = Math.Min(kh - 1, g.H - 1 + ph - r);
                float* xrow = img + (nint)(r - ph) * g.Stride;
                float* orow = outp + (nint)r * g.Wb;
                int x0 = 0;
                for (int b = 0; b < g.Blocks; b++)
                {
                    int nv = g.BaseVecs + (b < g.ExtraBlocks ? 1 : 0);
                    int jlo = Math.Max(0, pw - (x0 + nv * L - 1)), jhi = Math.Min(kw - 1, g.W - 1 + pw - x0);
                    float* xb = xrow + x0 - pw;
                    float* ob = orow + x0;
                    switch (nv)
                    {
                        case 1: CpuDwConvMicro.Forward<DwV1>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 2: CpuDwConvMicro.Forward<DwV2>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 3: CpuDwConvMicro.Forward<DwV3>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 4: CpuDwConvMicro.Forward<DwV4>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 5: CpuDwConvMicro.Forward<DwV5>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 6: CpuDwConvMicro.Forward<DwV6>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        case 7: CpuDwConvMicro.Forward<DwV7>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                        default: CpuDwConvMicro.Forward<DwV8>(ob, xb, g.Stride, rowStart, cols, wts, ilo, ihi, jlo, jhi, accumulate); break;
                    }
                    x0 += nv * L;
                }
            }
        }
    }

    /// <summary>Accumulates the weight gradient of channel c of a pass for one image: acc[t - first tap of c] +=
    /// lane-wise partial sums of x[p + t] * dy[p]. xp from PadPlane, dyp from TailPadPlane.</summary>
    internal static void FilterPlane(in Geometry g, float* xp, float* dyp, DwPass pass, int c, Vector256<float>* acc)
    {
        int kh = pass.Kh, kw = pass.Kw, ph = kh / 2, pw = kw / 2;
        var taps = pass.Taps;
        fixed (int* rowStart0 = taps.RowStart)
        fixed (int* cols = taps.Cols)
        {
            int* rowStart = rowStart0 + c * (kh + 1);
            if (rowStart[0] == rowStart[kh]) return;
            Vector256<float>* accBase = acc - rowStart[0];
            float* img = xp + g.Pad;
            for (int r = 0; r < g.H; r++)
            {
                int ilo = Math.Max(0, ph - r), ihi = Math.Min(kh - 1, g.H - 1 + ph - r);
                float* xrow = img + (nint)(r - ph) * g.Stride;
                float* drow = dyp + (nint)r * g.Wb;
                int x0 = 0;
                for (int b = 0; b < g.Blocks; b++)
                {
                    int nv = g.BaseVecs + (b < g.ExtraBlocks ? 1 : 0);
                    int jlo = Math.Max(0, pw - (x0 + nv * L - 1)), jhi = Math.Min(kw - 1, g.W - 1 + pw - x0);
                    float* xb = xrow + x0 - pw;
                    float* db = drow + x0;
                    switch (nv)
                    {
                        case 1: CpuDwConvMicro.Filter<DwV1>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 2: CpuDwConvMicro.Filter<DwV2>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 3: CpuDwConvMicro.Filter<DwV3>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 4: CpuDwConvMicro.Filter<DwV4>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 5: CpuDwConvMicro.Filter<DwV5>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 6: CpuDwConvMicro.Filter<DwV6>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        case 7: CpuDwConvMicro.Filter<DwV7>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                        default: CpuDwConvMicro.Filter<DwV8>(accBase, xb, g.Stride, db, rowStart, cols, ilo, ihi, jlo, jhi); break;
                    }
                    x0 += nv * L;
                }
            }
        }
    }

    /// <summary>Splits [0, count) into chunks for CpuParallel.For (a few per thread for balance).</summary>
    internal static void ForChunks(int count, Action<int, int> body)
    {
        int chunks = Math.Min(count, Math.Max(1, CpuParallel.Threads * 8));
        CpuParallel.For(0, chunks, k =>
        {
            int lo = (int)((long)count * k / chunks), hi = (int)((long)count * (k + 1) / chunks);
            if (hi > lo) body(lo, hi);
        });
    }
}
