// Plane-level machinery of the CPU depthwise convolution: the two scratch layouts (columns in the lanes, or 8 images
// in the lanes), zero-padded copies, output segments of up to eight Vector256, and the per-plane loops over output
// rows with the kernel rows clipped to the image and the kernel columns clipped per segment. Every branch of a
// decomposed operator is computed from one padded copy of the input plane, made once while it is hot in cache.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>One branch prepared for one call: its tap list (flipped for the input gradient) and the current weights
/// gathered at those taps (times the mask on the dense path), in a pooled array returned by
/// <see cref="Release"/>.</summary>
internal sealed class CpuDwConvPass(int kh, int kw, CpuDwConvTapList taps, float[] wts)
{
    public int Kh { get; } = kh;
    public int Kw { get; } = kw;
    public CpuDwConvTapList Taps { get; } = taps;
    public float[] Wts { get; private set; } = wts;

    public static CpuDwConvPass Gather(int kh, int kw, CpuDwConvTapList taps, ReadOnlySpan<float> w, ReadOnlySpan<float> mask)
    {
        var flat = taps.Flat;
        var wts = System.Buffers.ArrayPool<float>.Shared.Rent(Math.Max(1, flat.Length));
        if (mask.IsEmpty)
            for (int t = 0; t < flat.Length; t++) wts[t] = w[flat[t]];
        else
            for (int t = 0; t < flat.Length; t++) wts[t] = w[flat[t]] * mask[flat[t]];
        return new CpuDwConvPass(kh, kw, taps, wts);
    }

    /// <summary>Returns the gathered weights to the pool (the weight-gradient passes carry none).</summary>
    public void Release()
    {
        if (Wts.Length > 0) System.Buffers.ArrayPool<float>.Shared.Return(Wts);
        Wts = [];
    }

    public static void ReleaseAll(CpuDwConvPass[] passes)
    {
        foreach (var p in passes) p?.Release();
    }
}

/// <summary>Plane loops of <see cref="CpuDwConvDecomposed"/> (its drivers).</summary>
internal static unsafe class CpuDwConvEngine
{
    private const int L = CpuDwConvMicro.Lanes;
    private const int MaxVecs = 8;

    [ThreadStatic] private static float[]? t_scratch;

    /// <summary>Layout of the scratch planes for an H x W image. Column layout: lanes are 8 consecutive columns,
    /// output rows rounded up to whole vectors. Batch-interleaved layout: each column holds 8 images (lanes), so
    /// every lane is useful and taps are clipped per column; used when a batch fills the lanes.</summary>
    internal readonly struct Geometry
    {
        public Geometry(int h, int w, bool interleaved)
        {
            H = h;
            W = w;
            Interleaved = interleaved;
            Shift = interleaved ? 3 : 0;
            ColsPerVec = interleaved ? 1 : L;
            int nvec = interleaved ? w : (w + L - 1) / L;
            Blocks = (nvec + MaxVecs - 1) / MaxVecs;
            BaseVecs = nvec / Blocks;
            ExtraBlocks = nvec % Blocks;
            Wb = nvec * L;
            // Clipped tap columns read at most one segment width beyond either edge of the image.
            PadCols = (BaseVecs + (ExtraBlocks > 0 ? 1 : 0)) * ColsPerVec;
            Stride = (PadCols << Shift) * 2 + Wb;
        }

        public int H { get; }
        public int W { get; }
        public bool Interleaved { get; }

        /// <summary>log2 of floats per column: 0 (column layout) or 3 (8 images per column).</summary>
        public int Shift { get; }

        public int ColsPerVec { get; }
        public int Blocks { get; }
        public int BaseVecs { get; }
        public int ExtraBlocks { get; }

        /// <summary>Floats per output-shaped row (W rounded up to whole vectors, zero tail; W*8 interleaved).
        /// </summary>
        public int Wb { get; }

        /// <summary>Zero columns on each side of an input row in the padded scratch.</summary>
        public int PadCols { get; }

        /// <summary>Floats per padded input row.</summary>
        public int Stride { get; }

        public int PaddedLength => H * Stride;
        public int OutLength => H * Wb;

        /// <summary>Floats from the start of a padded row to image column 0.</summary>
        public int ImageOffset => PadCols << Shift;

        public int BlockVecs(int b) => BaseVecs + (b < ExtraBlocks ? 1 : 0);
    }

    /// <summary>Batch-interleaved when the batch fills the 8 lanes (SLAK_DWCONV_LAYOUT=columns|batch overrides,
    /// for benchmarks).</summary>
    internal static bool UseInterleaved(int n) => LayoutOverride switch
    {
        "columns" => false,
        "batch" => true,
        _ => n >= L,
    };

    private static readonly string? LayoutOverride = Environment.GetEnvironmentVariable("SLAK_DWCONV_LAYOUT");

    /// <summary>A per-thread pinned scratch buffer of at least len floats (contents undefined), 64-byte aligned: the
    /// start of an array is only 8-byte aligned, and where it fell decided from run to run whether the weight
    /// gradient's accumulators straddled cache lines.</summary>
    internal static float* Scratch(int len)
    {
        var b = t_scratch;
        if (b is null || b.Length < len + 16)
            t_scratch = b = GC.AllocateUninitializedArray<float>(Math.Max(len + 16, 4096), pinned: true);
        return AlignUp((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(b)));
    }

    /// <summary>p rounded up to a multiple of 64 bytes (at most 15 floats further).</summary>
    internal static float* AlignUp(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>Column layout: copies an H x W plane into padded scratch (zeros around the image).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PadPlane(in Geometry g, float* src, float* dst)
    {
        int right = g.Stride - g.PadCols - g.W;
        for (int r = 0; r < g.H; r++)
        {
            float* d = dst + (nint)r * g.Stride;
            new Span<float>(d, g.PadCols).Clear();
            new ReadOnlySpan<float>(src + (nint)r * g.W, g.W).CopyTo(new Span<float>(d + g.PadCols, g.W));
            new Span<float>(d + g.PadCols + g.W, right).Clear();
        }
    }

    /// <summary>Column layout: copies an H x W plane into output-shaped scratch (row stride Wb, zero tail).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TailPadPlane(in Geometry g, float* src, float* dst)
    {
        for (int r = 0; r < g.H; r++)
        {
            float* d = dst + (nint)r * g.Wb;
            new ReadOnlySpan<float>(src + (nint)r * g.W, g.W).CopyTo(new Span<float>(d, g.W));
            new Span<float>(d + g.W, g.Wb - g.W).Clear();
        }
    }

    /// <summary>Column layout: copies (or adds) output-shaped scratch into a dense H x W plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    /// <summary>Interleaved layout: gathers the planes of up to 8 images (planes[k], 0 = missing, then zeros) into
    /// scratch with row stride <paramref name="rowStride"/> and image column 0 at <paramref name="offset"/>; the
    /// rest of each row is zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackPlanes(in Geometry g, nint* planes, float* dst, int rowStride, int offset)
    {
        new Span<float>(dst, g.H * rowStride).Clear();
        if (CpuDwConvTranspose.Applies(planes))
        {
            CpuDwConvTranspose.Pack(g.H, g.W, planes, dst, rowStride, offset);
            return;
        }
        for (int k = 0; k < L; k++)
        {
            float* src = (float*)planes[k];
            if (src == null) continue;
            for (int r = 0; r < g.H; r++)
            {
                float* d = dst + (nint)r * rowStride + offset + k;
                float* s = src + (nint)r * g.W;
                for (int q = 0; q < g.W; q++) d[q * L] = s[q];
            }
        }
    }

    /// <summary>Interleaved layout: scatters (or adds) output-shaped scratch back into up to 8 image planes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void UnpackPlanes(in Geometry g, float* src, nint* planes, bool add)
    {
        if (CpuDwConvTranspose.Applies(planes))
        {
            CpuDwConvTranspose.Unpack(g.H * g.W, src, planes, add);
            return;
        }
        for (int k = 0; k < L; k++)
        {
            float* dst = (float*)planes[k];
            if (dst == null) continue;
            for (int r = 0; r < g.H; r++)
            {
                float* s = src + (nint)r * g.Wb + k;
                float* d = dst + (nint)r * g.W;
                if (add) for (int q = 0; q < g.W; q++) d[q] += s[q * L];
                else for (int q = 0; q < g.W; q++) d[q] = s[q * L];
            }
        }
    }

    /// <summary>For each block of the geometry and kernel row i of channel c: the [start, end) range of the row's
    /// taps whose column can reach the image from that block (segs[(b*kh + i)*2 ..]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Segments(in Geometry g, int* rowStart, int* cols, int kh, int kw, int* segs)
    {
        int pw = kw / 2, x0 = 0;
        for (int b = 0; b < g.Blocks; b++)
        {
            int ext = g.BlockVecs(b) * g.ColsPerVec;
            int jlo = Math.Max(0, pw - (x0 + ext - 1)), jhi = Math.Min(kw - 1, g.W - 1 + pw - x0);
            for (int i = 0; i < kh; i++)
            {
                int t = rowStart[i], e = rowStart[i + 1];
                while (t < e && cols[t] < jlo) t++;
                while (e > t && cols[e - 1] > jhi) e--;
                segs[(b * kh + i) * 2] = t;
                segs[(b * kh + i) * 2 + 1] = e;
            }
            x0 += ext;
        }
    }

    /// <summary>Correlates one padded plane (xp) with channel c of a pass into output scratch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ConvPlane(in Geometry g, float* xp, CpuDwConvPass pass, int c, float* outp, bool accumulate)
    {
        int kh = pass.Kh, kw = pass.Kw, pw = kw / 2;
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
            int segLen = g.Blocks * kh * 2;
            int* segs = stackalloc int[segLen <= 4096 ? segLen : 0];
            int[]? segArr = segLen <= 4096 ? null : new int[segLen];
            fixed (int* segHeap = segArr)
            {
                if (segHeap != null) segs = segHeap;
                Segments(g, rowStart, cols, kh, kw, segs);
                float* img = xp + g.ImageOffset;
                // Segment-outer, row-inner: the input columns one segment reads stay in L1 across output rows.
                int x0 = 0;
                for (int b = 0; b < g.Blocks; b++)
                {
                    int nv = g.BlockVecs(b);
                    int* sg = segs + b * kh * 2;
                    switch (nv)
                    {
                        case 1: ConvBlock<DwV1>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 2: ConvBlock<DwV2>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 3: ConvBlock<DwV3>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 4: ConvBlock<DwV4>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 5: ConvBlock<DwV5>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 6: ConvBlock<DwV6>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        case 7: ConvBlock<DwV7>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                        default: ConvBlock<DwV8>(g, img, outp, x0, sg, cols, wts, kh, pw, accumulate); break;
                    }
                    x0 += nv * g.ColsPerVec;
                }
            }
        }
    }

    /// <summary>All output rows of one segment (columns from x0) of one branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvBlock<TR>(in Geometry g, float* img, float* outp, int x0, int* segs, int* cols, float* wts,
        int kh, int pw, bool accumulate) where TR : struct, IDwVecCount
    {
        int ph = kh / 2;
        int r = 0;
        if (CpuDwConvMicro.UseVector512)
        {
            for (; r + 1 < g.H; r += 2)
            {
                var (ilo0, ihi0) = KernelRows(kh, g.H, r);
                var (ilo1, ihi1) = KernelRows(kh, g.H, r + 1);
                float* xb = img + (nint)(r - ph) * g.Stride + (nint)(x0 - pw) * (1 << g.Shift);
                float* ob = outp + (nint)r * g.Wb + ((nint)x0 << g.Shift);
                CpuDwConvMicro.Forward2Rows<TR>(ob, ob + g.Wb, xb, g.Stride, segs, cols, wts, ilo0, ihi0, ilo1, ihi1,
                    g.Shift, accumulate);
            }
        }
        for (; r < g.H; r++)
        {
            var (ilo, ihi) = KernelRows(kh, g.H, r);
            float* xb = img + (nint)(r - ph) * g.Stride + (nint)(x0 - pw) * (1 << g.Shift);
            float* ob = outp + (nint)r * g.Wb + ((nint)x0 << g.Shift);
            CpuDwConvMicro.Forward<TR>(ob, xb, g.Stride, segs, cols, wts, ilo, ihi, g.Shift, accumulate);
        }
    }

    /// <summary>Accumulates the weight gradient of channel c of a pass for one plane (or 8 interleaved planes):
    /// acc[t - first tap of c] += lane-wise partial sums of x[p + t] * dy[p]. dyp is output-shaped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FilterPlane(in Geometry g, float* xp, float* dyp, CpuDwConvPass pass, int c, Vector256<float>* acc)
    {
        int kh = pass.Kh, kw = pass.Kw, pw = kw / 2;
        var taps = pass.Taps;
        fixed (int* rowStart0 = taps.RowStart)
        fixed (int* cols = taps.Cols)
        {
            int* rowStart = rowStart0 + c * (kh + 1);
            if (rowStart[0] == rowStart[kh]) return;
            Vector256<float>* accBase = acc - rowStart[0];
            int segLen = g.Blocks * kh * 2;
            int* segs = stackalloc int[segLen <= 4096 ? segLen : 0];
            int[]? segArr = segLen <= 4096 ? null : new int[segLen];
            fixed (int* segHeap = segArr)
            {
                if (segHeap != null) segs = segHeap;
                Segments(g, rowStart, cols, kh, kw, segs);
                float* img = xp + g.ImageOffset;
                int x0 = 0;
                for (int b = 0; b < g.Blocks; b++)
                {
                    int nv = g.BlockVecs(b);
                    int* sg = segs + b * kh * 2;
                    switch (nv)
                    {
                        case 1: FilterBlock<DwV1>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 2: FilterBlock<DwV2>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 3: FilterBlock<DwV3>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 4: FilterBlock<DwV4>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 5: FilterBlock<DwV5>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 6: FilterBlock<DwV6>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        case 7: FilterBlock<DwV7>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                        default: FilterBlock<DwV8>(g, img, dyp, x0, sg, cols, accBase, kh, pw); break;
                    }
                    x0 += nv * g.ColsPerVec;
                }
            }
        }
    }

    /// <summary>Weight-gradient contributions of all output rows of one segment (columns from x0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FilterBlock<TR>(in Geometry g, float* img, float* dyp, int x0, int* segs, int* cols,
        Vector256<float>* acc, int kh, int pw) where TR : struct, IDwVecCount
    {
        int ph = kh / 2;
        int r = 0;
        if (CpuDwConvMicro.UseVector512)
        {
            for (; r + 1 < g.H; r += 2)
            {
                var (ilo0, ihi0) = KernelRows(kh, g.H, r);
                var (ilo1, ihi1) = KernelRows(kh, g.H, r + 1);
                float* xb = img + (nint)(r - ph) * g.Stride + (nint)(x0 - pw) * (1 << g.Shift);
                float* db = dyp + (nint)r * g.Wb + ((nint)x0 << g.Shift);
                CpuDwConvMicro.Filter2Rows<TR>(acc, xb, g.Stride, db, db + g.Wb, segs, cols, ilo0, ihi0, ilo1, ihi1,
                    g.Shift);
            }
        }
        for (; r < g.H; r++)
        {
            var (ilo, ihi) = KernelRows(kh, g.H, r);
            float* xb = img + (nint)(r - ph) * g.Stride + (nint)(x0 - pw) * (1 << g.Shift);
            float* db = dyp + (nint)r * g.Wb + ((nint)x0 << g.Shift);
            CpuDwConvMicro.Filter<TR>(acc, xb, g.Stride, db, segs, cols, ilo, ihi, g.Shift);
        }
    }

    /// <summary>The kernel rows [Lo, Hi] of a centred kh-row kernel that keep output row r inside an h-row image.
    /// </summary>
    private static (int Lo, int Hi) KernelRows(int kh, int h, int r) =>
        (Math.Max(0, kh / 2 - r), Math.Min(kh - 1, h - 1 + kh / 2 - r));

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
