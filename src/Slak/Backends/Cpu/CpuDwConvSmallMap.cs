// The decomposed depthwise convolution on small maps (H*W <= MaxPixels: slak_nano's stages, slak_nano64's stages 2-4).
// There the plane engine's work per (image, channel) plane -- padding, packing, per-row micro-kernel calls, clipping
// the tap rows -- costs far more than the few in-bounds taps. Here channels are the vector axis instead: each image
// is moved, 16 channels at a time, into a pixel-major column ([pixel][16]: CpuDwConvMoves16.cs, one AVX-512 16x16
// transpose per 16 pixels, on maps of 16k pixels with rows dividing 16; else CpuDwConvPixelMajor.cs, AVX 8x8
// transposes), and the convolution runs on whole pixels of 16 channels (one Vector512; the path needs AVX-512, the
// plane engine runs elsewhere). Two columns go through the kernels together, so that 8 independent accumulators
// cover the FMA latency:
// - forward and input gradient: blocks of up to 4 adjacent output pixels are held in registers while every in-bounds
//   tap of the branch is applied (one weight vector load feeds up to 4 FMAs); blocks run along the axis where the
//   branch's kernel is narrower, so few taps see a block partly outside the map, and only in-bounds taps are issued.
//   The input gradient is the same correlation with the flipped kernel, the branches summed in the output block.
// - weight gradient: blocks of up to 4 adjacent taps (along the kernel's longer axis) are held in registers while
//   every output pixel that sees them is visited (one output-gradient load feeds up to 4 FMAs).
// A branch whose window spans whole lines of a 4-, 8- or 16-pixel-long map (slak_nano's and slak_nano64's M x 3 and
// 3 x M branches on 4 x 4, 8 x 8 and 16 x 16 maps) takes the line kernels of CpuDwConvColumns.cs instead, on the same
// layouts; a map of up to 16 x 16 whose every branch does so takes this path too (MaxLinePixels). On 16 x 16 maps
// the forward and the input gradient go to CpuDwConvRows16.cs first (no layout moves); the weight gradient stays here.
// Only the part of a kernel that can meet the map (at most 2H-1 x 2W-1, centred) is gathered, once per call, into a
// tap-major weight table (weights times mask, zero at dead taps and padded channels). Masked taps are multiplied
// as zeros: 16 channels share a vector, and at density 0.6 a tap is live in at least one of them almost always.
// The forward and input gradient run over images in parallel; the weight gradient sums fixed groups of 16 images in
// parallel and adds the groups' tables in order: each result is independent of the thread count, bit for bit.
// Branches are not merged into one kernel: in training each branch has its own output (its own BatchNorm) and its own
// output gradient, so no two branches share an operand.
// The bound MaxPixels and the measurements are in bench/results/dwconv-smallmap.md (`dwconv-smallmap`).
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Small-map path of <see cref="CpuDwConvDecomposed"/>: forward, input gradient and weight gradient.</summary>
internal static unsafe class CpuDwConvSmallMap
{
    /// <summary>Maps of at most this many pixels take this path: up to 8 x 8, where it beat the plane engine in
    /// `dwconv-smallmap`; at 14 x 14 and 16 x 16 it did not (bench/results/dwconv-smallmap.md).</summary>
    internal const int MaxPixels = 64;

    /// <summary>The bound in force (tests and the benchmark raise it to run the path on larger maps, the sum alone
    /// included).</summary>
    internal static int PixelLimit { get; set; } = MaxPixels;

    /// <summary>Channels per column: one Vector512 of floats.</summary>
    private const int L = 16;

    private const int Half = CpuDwConvPixelMajor.L;

    /// <summary>Images per partial sum of the weight gradient.</summary>
    private const int GroupImages = 16;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_SMALLMAP=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_SMALLMAP") != "0";

    /// <summary>Maps of at most this many pixels take this path for the sum of several branches alone
    /// (inference): above it the plane engine's one pass with the merged kernel beat the three branch passes here
    /// (4 x 4 and 8 x 8 maps in `dwconv-smallmap`).</summary>
    internal const int MaxPixelsSumOnly = 4;

    /// <summary>True when an H x W map takes this path (<paramref name="mergedSum"/>: the call wants only the sum
    /// of several branches).</summary>
    internal static bool Applies(int h, int w, bool mergedSum = false) =>
        Enabled && Vector512.IsHardwareAccelerated && (long)h * w <= PixelLimit
        && (!mergedSum || (long)h * w <= (PixelLimit == MaxPixels ? MaxPixelsSumOnly : PixelLimit));

    /// <summary>Maps of at most this many pixels take this path when every branch takes the line kernels of
    /// CpuDwConvColumns.cs (16 x 16: slak_nano64's stage 1), which beat the plane engine there
    /// (bench/results/dwconv-columns.md); with the general kernels of this file they did not.</summary>
    internal const int MaxLinePixels = 256;

    /// <summary>As <see cref="Applies(int, int, bool)"/> for these branches: also a map of up to
    /// <see cref="MaxLinePixels"/> pixels whose every branch takes the line kernels (not for the sum alone, which
    /// the plane engine's merged pass serves).</summary>
    internal static bool Applies(int h, int w, IReadOnlyList<CpuDwConvBranch> branches, bool mergedSum = false)
    {
        if (Applies(h, w, mergedSum)) return true;
        if (mergedSum || !Enabled || !Vector512.IsHardwareAccelerated || (long)h * w > MaxLinePixels) return false;
        foreach (var br in branches)
        {
            var win = new Window(h, w, br.Kh, br.Kw);
            if (!CpuDwConvColumns.Applies(h, w, win.Kh, win.Kw, out _)) return false;
        }
        return true;
    }

    /// <summary>The part of a Kh x Kw "same" kernel that can meet an H x W map: Kh' x Kw' (at most 2H-1 x 2W-1,
    /// odd, centred) starting at kernel row I0 and column J0.</summary>
    internal readonly struct Window
    {
        public Window(int h, int w, int kh, int kw)
        {
            Kh = Math.Min(kh, 2 * h - 1);
            Kw = Math.Min(kw, 2 * w - 1);
            I0 = (kh - Kh) / 2;
            J0 = (kw - Kw) / 2;
        }

        public int Kh { get; }
        public int Kw { get; }
        public int I0 { get; }
        public int J0 { get; }
        public int Taps => Kh * Kw;
    }

    /// <summary>Per branch: its window and where its table starts (floats) in a table of all branches, laid out
    /// [column of 16 channels][window tap i*Kw'+j][16].</summary>
    internal static (Window[] Windows, int[] Offsets) Layout(int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches)
    {
        int cols = (c + L - 1) / L;
        var wins = new Window[branches.Count];
        var offs = new int[branches.Count + 1];
        for (int b = 0; b < wins.Length; b++)
        {
            wins[b] = new Window(h, w, branches[b].Kh, branches[b].Kw);
            offs[b + 1] = offs[b] + cols * wins[b].Taps * L;
        }
        return (wins, offs);
    }

    /// <summary>The weight tables of every branch (weight times mask at live taps, 0 elsewhere), flipped for the
    /// input gradient, in this thread's aligned table buffer (valid until the next call on this thread).</summary>
    internal static float* GatherWeights(int c, IReadOnlyList<CpuDwConvBranch> branches, Window[] wins, int[] offs,
        bool flipped)
    {
        float* ptr = Pinned(ref t_weights, offs[^1]);
        var table = new Span<float>(ptr, offs[^1]);
        table.Clear();
        for (int b = 0; b < wins.Length; b++)
        {
            var br = branches[b];
            var win = wins[b];
            var dst = table.Slice(offs[b], offs[b + 1] - offs[b]);
            var wt = br.Weight.Span;
            var mask = br.Mask.Span;
            if (br.Taps is { } taps)
            {
                // Only the listed taps are live; the rest of the table stays 0.
                foreach (int f in taps.Flat) Put(br.Kh, br.Kw, win, flipped, f, wt, mask, dst);
                continue;
            }
            for (int ch = 0; ch < c; ch++)
                for (int i = win.I0; i < win.I0 + win.Kh; i++)
                    for (int j = win.J0; j < win.J0 + win.Kw; j++)
                        Put(br.Kh, br.Kw, win, flipped, (ch * br.Kh + i) * br.Kw + j, wt, mask, dst);
        }
        return ptr;
    }

    // Per calling thread, 64-byte aligned (a Vector512 load must not straddle cache lines), reused across calls:
    // the weight tables, and the weight gradient's partial sums.
    [ThreadStatic] private static float[]? t_weights;
    [ThreadStatic] private static float[]? t_partials;

    private static float* Pinned(ref float[]? buffer, int len)
    {
        if (buffer is null || buffer.Length < len + 16)
            buffer = GC.AllocateUninitializedArray<float>(Math.Max(len + 16, 1024), pinned: true);
        return CpuDwConvEngine.AlignUp((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }

    // table[column][window tap][lane] = w[f] * mask[f] for flat weight index f of a (C, kh, kw) weight, if f's tap
    // lies in the window.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(int kh, int kw, in Window win, bool flipped, int f, ReadOnlySpan<float> wt,
        ReadOnlySpan<float> mask, Span<float> table)
    {
        int kk = kh * kw, ch = f / kk, r = f - ch * kk;
        int i = r / kw - win.I0, j = r % kw - win.J0;
        if (i < 0 || i >= win.Kh || j < 0 || j >= win.Kw) return;
        if (flipped)
        {
            i = win.Kh - 1 - i;
            j = win.Kw - 1 - j;
        }
        float v = wt[f];
        if (!mask.IsEmpty) v *= mask[f];
        table[((ch / L) * win.Taps + i * win.Kw + j) * L + ch % L] = v;
    }

    /// <summary>Columns moved and computed together: about 16 KiB per scratch buffer, so an image's few pixels
    /// (1x1, 2x2 maps) are handled many columns per kernel call, and a large map two columns at a time (the kernels'
    /// column pairs).</summary>
    internal static int ChunkColumns(int hw, int cols) => Math.Min(cols, Math.Max(2, 4096 / (hw * L)));

    /// <summary>Layout of a column in scratch: the H x W map inside a zero border of P pixels (P = 0: the pixels
    /// back to back), plus slack rows so that the kernels' unused block lanes read inside the buffer.</summary>
    internal readonly struct Pad
    {
        public Pad(int h, int w, int p, bool slack)
        {
            P = p;
            RowStride = (w + 2 * p) * L;
            Origin = (p * (w + 2 * p) + p) * L;
            ColLen = slack ? ((h + 2 * p + 4) * (w + 2 * p) + 4) * L : h * w * L;
        }

        public int P { get; }
        public int RowStride { get; }
        public int Origin { get; }
        public int ColLen { get; }
    }

    /// <summary>The border the forward and input gradient need: half the narrower side of the widest window, so
    /// that a block's taps that fall outside the map read zeros instead of being tested.</summary>
    internal static Pad InputPad(int h, int w, Window[] wins)
    {
        int p = 0;
        foreach (var win in wins) p = Math.Max(p, Math.Min(win.Kh, win.Kw) / 2);
        return new Pad(h, w, p, slack: true);
    }

    // Columns [cv0, cv0 + count) of one image's (C, H*W) planes into consecutive pixel-major columns at dst (a whole
    // column per 16 x 16 transpose where CpuDwConvMoves16 applies, else two halves of 8 channels).
    internal static void Load(float* image, int c, int h, int w, int cv0, int count, float* dst, in Pad pad)
    {
        int hw = h * w;
        bool whole = CpuDwConvMoves16.Applies(h, w);
        for (int k = 0; k < count; k++)
        {
            int cv = cv0 + k;
            int nch = Math.Min(L, c - cv * L);
            float* planes = image + (nint)cv * L * hw, d = dst + (nint)k * pad.ColLen + pad.Origin;
            if (whole)
            {
                CpuDwConvMoves16.ToColumn(planes, nch, h, w, d, pad.RowStride);
                continue;
            }
            CpuDwConvPixelMajor.ToColumn(planes, Math.Min(Half, nch), hw, w, d, L, pad.RowStride);
            CpuDwConvPixelMajor.ToColumn(planes + (nint)Half * hw, nch - Half, hw, w, d + Half, L, pad.RowStride);
        }
    }

    // The inverse of Load.
    internal static void Store(float* src, int c, int hw, int cv0, int count, float* image)
    {
        // The 16 x 16 transposes need whole blocks of 16 pixels only (the source column has no border).
        bool whole = CpuDwConvMoves16.Applies(hw, 1);
        for (int k = 0; k < count; k++)
        {
            int cv = cv0 + k;
            int nch = Math.Min(L, c - cv * L);
            float* planes = image + (nint)cv * L * hw, s = src + (nint)k * hw * L;
            if (whole)
            {
                CpuDwConvMoves16.FromColumn(s, nch, hw, planes);
                continue;
            }
            CpuDwConvPixelMajor.FromColumn(s, Math.Min(Half, nch), hw, planes, L);
            CpuDwConvPixelMajor.FromColumn(s + Half, nch - Half, hw, planes + (nint)Half * hw, L);
        }
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum. Pointers to N*C*H*W tensors.
    /// Each branch is computed on its own and added to the sum in branch order, so a branch's output and the sum do
    /// not depend on which outputs are requested.</summary>
    internal static void Forward(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x, nint[] ys,
        nint ysum)
    {
        int hw = h * w, cols = (c + L - 1) / L, chunk = ChunkColumns(hw, cols), len = chunk * hw * L;
        var (wins, offs) = Layout(c, h, w, branches);
        var pad = InputPad(h, w, wins);
        int padLen = chunk * pad.ColLen;
        nint tp = (nint)GatherWeights(c, branches, wins, offs, flipped: false);
        CpuDwConvEngine.ForChunks(n, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            float* xt = CpuDwConvEngine.Scratch(padLen + 2 * len + 32);
            float* yt = CpuDwConvEngine.AlignUp(xt + padLen);
            float* st = CpuDwConvEngine.AlignUp(yt + len);
            new Span<float>(xt, padLen).Clear(); // the border; Load writes only the map
            for (int img = lo; img < hi; img++)
                for (int cv0 = 0; cv0 < cols; cv0 += chunk)
                {
                    int nc = Math.Min(chunk, cols - cv0);
                    nint image = (nint)img * c * hw;
                    Load((float*)x + image, c, h, w, cv0, nc, xt, pad);
                    bool summed = false;
                    for (int b = 0; b < wins.Length; b++)
                    {
                        nint own = b < ys.Length ? ys[b] : 0;
                        if (own == 0 && ysum == 0) continue;
                        float* dst = ysum != 0 && !summed ? st : yt;
                        float* wt = (float*)tp + offs[b] + (nint)cv0 * wins[b].Taps * L;
                        Correlate(wins[b], h, w, nc, xt, pad, wt, dst, accumulate: false);
                        if (own != 0) Store(dst, c, hw, cv0, nc, (float*)own + image);
                        if (ysum == 0) continue;
                        if (summed) Add(st, yt, nc * hw * L);
                        summed = true;
                    }
                    if (ysum != 0) Store(st, c, hw, cv0, nc, (float*)ysum + image);
                }
        });
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b].</summary>
    internal static void BackwardData(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint[] dys,
        nint dx)
    {
        int hw = h * w, cols = (c + L - 1) / L, chunk = ChunkColumns(hw, cols), len = chunk * hw * L;
        var (wins, offs) = Layout(c, h, w, branches);
        var pad = InputPad(h, w, wins);
        int padLen = chunk * pad.ColLen;
        nint tp = (nint)GatherWeights(c, branches, wins, offs, flipped: true);
        CpuDwConvEngine.ForChunks(n, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            float* gt = CpuDwConvEngine.Scratch(padLen + len + 16);
            float* dt = CpuDwConvEngine.AlignUp(gt + padLen);
            new Span<float>(gt, padLen).Clear(); // the border; Load writes only the map
            for (int img = lo; img < hi; img++)
                for (int cv0 = 0; cv0 < cols; cv0 += chunk)
                {
                    int nc = Math.Min(chunk, cols - cv0);
                    nint image = (nint)img * c * hw;
                    for (int b = 0; b < wins.Length; b++)
                    {
                        Load((float*)dys[b] + image, c, h, w, cv0, nc, gt, pad);
                        float* wt = (float*)tp + offs[b] + (nint)cv0 * wins[b].Taps * L;
                        Correlate(wins[b], h, w, nc, gt, pad, wt, dt, accumulate: b > 0);
                    }
                    Store(dt, c, hw, cv0, nc, (float*)dx + image);
                }
        });
    }

    /// <summary>dws[b] = weight gradient of branch b; with <paramref name="skipMasked"/> taps that are not live are
    /// exactly 0, otherwise the dense gradient (taps that never meet the map are 0 either way).</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x,
        nint[] dys, nint[] dws, bool skipMasked)
    {
        int hw = h * w, cols = (c + L - 1) / L, chunk = ChunkColumns(hw, cols), len = chunk * hw * L;
        var (wins, offs) = Layout(c, h, w, branches);
        var pad = new Pad(h, w, 0, slack: false);
        // Fixed groups of GroupImages images (not one per thread: the same bits at any thread count), each summed
        // in image order into its own table, the tables added in group order. Splitting by column instead left
        // slak_nano's 2 columns unpaired, one per thread.
        int total = offs[^1], groups = (n + GroupImages - 1) / GroupImages;
        float* pp = Pinned(ref t_partials, groups * total);
        new Span<float>(pp, groups * total).Clear();
        nint partsPtr = (nint)pp;
        CpuParallel.For(0, groups, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (grp) =>
        {
            float* xt = CpuDwConvEngine.Scratch(2 * len + 16);
            float* gt = CpuDwConvEngine.AlignUp(xt + len);
            float* acc = (float*)partsPtr + (nint)grp * total;
            int end = Math.Min(n, (grp + 1) * GroupImages);
            for (int cv0 = 0; cv0 < cols; cv0 += chunk)
            {
                int nc = Math.Min(chunk, cols - cv0);
                for (int img = grp * GroupImages; img < end; img++)
                {
                    nint image = (nint)img * c * hw;
                    Load((float*)x + image, c, h, w, cv0, nc, xt, pad);
                    for (int b = 0; b < wins.Length; b++)
                    {
                        Load((float*)dys[b] + image, c, h, w, cv0, nc, gt, pad);
                        FilterColumns(wins[b], h, w, nc, xt, gt, acc + offs[b] + (nint)cv0 * wins[b].Taps * L);
                    }
                }
            }
        });
        var sum = new Span<float>(pp, total);
        for (int grp = 1; grp < groups; grp++)
            System.Numerics.Tensors.TensorPrimitives.Add(sum, new ReadOnlySpan<float>(pp + (nint)grp * total, total), sum);
        for (int b = 0; b < wins.Length; b++) Scatter(c, branches[b], wins[b], sum[offs[b]..], (float*)dws[b], skipMasked);
    }

    // dw (C, Kh, Kw) = the window taps of the accumulated table, 0 elsewhere; with skipMasked, 0 at dead taps.
    private static void Scatter(int c, in CpuDwConvBranch br, in Window win, ReadOnlySpan<float> acc, float* dw,
        bool skipMasked)
    {
        int kk = br.Kh * br.Kw;
        var all = new Span<float>(dw, c * kk);
        all.Clear();
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < win.Kh; i++)
                for (int j = 0; j < win.Kw; j++)
                    all[ch * kk + (win.I0 + i) * br.Kw + win.J0 + j] = acc[((ch / L) * win.Taps + i * win.Kw + j) * L + ch % L];
        if (!skipMasked) return;
        if (br.Taps is { } taps)
        {
            // Keep only the listed taps: copy them out, clear, put them back.
            var kept = new float[taps.Flat.Length];
            for (int t = 0; t < kept.Length; t++) kept[t] = all[taps.Flat[t]];
            all.Clear();
            for (int t = 0; t < kept.Length; t++) all[taps.Flat[t]] = kept[t];
            return;
        }
        var mask = br.Mask.Span;
        if (mask.IsEmpty) return;
        for (int f = 0; f < all.Length; f++)
            if (mask[f] == 0f) all[f] = 0f;
    }

    private static void Add(float* dst, float* src, int len)
    {
        int k = 0;
        for (; k + L <= len; k += L) (Vector512.Load(dst + k) + Vector512.Load(src + k)).Store(dst + k);
        for (; k < len; k++) dst[k] += src[k];
    }

    /// <summary>out = (or +=) the correlation of in with the window's weight table, "same" padding, for
    /// <paramref name="ncols"/> consecutive columns: in laid out by <paramref name="pad"/> (zero border), out and
    /// the weight tables back to back (H*W pixels x 16 channels; the window's taps x 16 channels).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Correlate(in Window win, int h, int w, int ncols, float* inp, in Pad pad, float* wt,
        float* outp, bool accumulate)
    {
        // A kernel that spans whole lines of the map takes the line kernels (CpuDwConvColumns.cs).
        if (CpuDwConvColumns.Correlate(h, w, win.Kh, win.Kw, ncols, inp + pad.Origin, pad.ColLen, pad.RowStride, wt,
                outp, accumulate))
            return;
        // Axis A (blocks of 4 output pixels) is the axis where the window is narrower; B is the other, and the
        // innermost loop runs over its in-bounds taps (the longer run). Taps along A that reach a block's pixels
        // only in part read the zero border instead of being tested (pad.P >= half the narrower side), and a block
        // past the map's end computes lanes that are never stored (they read slack inside the buffer). Two columns
        // go together (8 independent accumulators cover the FMA latency); an odd last column is paired with itself
        // (the same values computed and stored twice).
        bool alongX = win.Kw <= win.Kh;
        int la = alongX ? w : h, lb = alongX ? h : w;
        int sa = alongX ? L : pad.RowStride, sb = alongX ? pad.RowStride : L;
        int oa1 = alongX ? L : w * L, ob1 = alongX ? w * L : L;
        int ka = alongX ? win.Kw : win.Kh, kb = alongX ? win.Kh : win.Kw;
        int wa = alongX ? L : win.Kw * L, wb = alongX ? win.Kw * L : L;
        int pa = ka / 2, pb = kb / 2, colLen = h * w * L, inLen = pad.ColLen, wcol = win.Taps * L;
        for (int ob = 0; ob < lb; ob++)
        {
            int tb0 = Math.Max(0, pb - ob), tb1 = Math.Min(kb - 1, lb - 1 + pb - ob), ntb = tb1 - tb0 + 1;
            for (int oa = 0; oa < la; oa += 4)
            {
                int np = Math.Min(4, la - oa);
                // Taps along A that reach at least one of the block's np pixels.
                int any0 = Math.Max(0, pa - oa - np + 1), any1 = Math.Min(ka - 1, la - 1 + pa - oa);
                for (int col = 0; col < ncols; col += 2)
                {
                    bool pair = col + 1 < ncols;
                    nint di = pair ? inLen : 0, dw = pair ? wcol : 0, dout = pair ? colLen : 0;
                    float* o = outp + (nint)col * colLen + (nint)ob * ob1 + (nint)oa * oa1;
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
                    if (accumulate)
                    {
                        a0 = Vector512.Load(o);
                        b0 = Vector512.Load(o + dout);
                        if (np > 1) { a1 = Vector512.Load(o + oa1); b1 = Vector512.Load(o + dout + oa1); }
                        if (np > 2) { a2 = Vector512.Load(o + 2 * oa1); b2 = Vector512.Load(o + dout + 2 * oa1); }
                        if (np > 3) { a3 = Vector512.Load(o + 3 * oa1); b3 = Vector512.Load(o + dout + 3 * oa1); }
                    }
                    float* ibase = inp + (nint)col * inLen + pad.Origin + (nint)(ob + tb0 - pb) * sb + (nint)(oa - pa) * sa;
                    float* wbase = wt + (nint)col * wcol + (nint)tb0 * wb;
                    for (int ta = any0; ta <= any1; ta++)
                    {
                        float* ip = ibase + (nint)ta * sa;
                        float* wp = wbase + (nint)ta * wa;
                        for (int k = 0; k < ntb; k++, ip += sb, wp += wb)
                        {
                            var wv = Vector512.Load(wp);
                            var wu = Vector512.Load(wp + dw);
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(ip), wv, a0);
                            b0 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + di), wu, b0);
                            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + sa), wv, a1);
                            b1 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + di + sa), wu, b1);
                            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + 2 * sa), wv, a2);
                            b2 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + di + 2 * sa), wu, b2);
                            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + 3 * sa), wv, a3);
                            b3 = Vector512.FusedMultiplyAdd(Vector512.Load(ip + di + 3 * sa), wu, b3);
                        }
                    }
                    a0.Store(o);
                    b0.Store(o + dout);
                    if (np > 1) { a1.Store(o + oa1); b1.Store(o + dout + oa1); }
                    if (np > 2) { a2.Store(o + 2 * oa1); b2.Store(o + dout + 2 * oa1); }
                    if (np > 3) { a3.Store(o + 3 * oa1); b3.Store(o + dout + 3 * oa1); }
                }
            }
        }
    }

    /// <summary>acc (the window's taps x 16 channels) += for every in-bounds (output pixel, tap) pair
    /// x[pixel + tap - pad] * g[pixel], for <paramref name="ncols"/> consecutive columns (as in
    /// <see cref="Correlate"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FilterColumns(in Window win, int h, int w, int ncols, float* x, float* g, float* acc)
    {
        if (CpuDwConvColumns.Filter(h, w, win.Kh, win.Kw, ncols, x, g, acc)) return;
        // Axis A (blocks of up to 4 taps) is the axis where the window is longer; B is the other, and the innermost
        // loop runs over the output pixels along B, with the block's edge tests hoisted out of it. Columns in pairs
        // as in Correlate; a self-paired last column is summed once (its second copy is not stored).
        bool alongX = win.Kw >= win.Kh;
        int la = alongX ? w : h, lb = alongX ? h : w;
        int sa = alongX ? L : w * L, sb = alongX ? w * L : L;
        int ka = alongX ? win.Kw : win.Kh, kb = alongX ? win.Kh : win.Kw;
        int wa = alongX ? L : win.Kw * L, wb = alongX ? win.Kw * L : L;
        int pa = ka / 2, pb = kb / 2, colLen = h * w * L, wcol = win.Taps * L;
        for (int tb = 0; tb < kb; tb++)
        {
            int ob0 = Math.Max(0, pb - tb), ob1 = Math.Min(lb - 1, lb - 1 + pb - tb), nob = ob1 - ob0 + 1;
            for (int ta0 = 0; ta0 < ka; ta0 += 4)
            {
                int nq = Math.Min(4, ka - ta0);
                // Output pixel oa sees tap ta0 + q iff pa - ta0 - oa <= q <= la - 1 + pa - ta0 - oa.
                int full0 = Math.Max(0, pa - ta0), full1 = nq == 4 ? Math.Min(la - 1, la - 4 + pa - ta0) : -1;
                int any0 = Math.Max(0, pa - ta0 - nq + 1), any1 = Math.Min(la - 1, la - 1 + pa - ta0);
                for (int col = 0; col < ncols; col += 2)
                {
                    bool pair = col + 1 < ncols;
                    nint di = pair ? colLen : 0, dw = pair ? wcol : 0;
                    float* t = acc + (nint)col * wcol + (nint)tb * wb + (nint)ta0 * wa;
                    var a0 = Vector512.Load(t);
                    var b0 = Vector512.Load(t + dw);
                    Vector512<float> a1 = default, a2 = default, a3 = default, b1 = default, b2 = default, b3 = default;
                    if (nq > 1) { a1 = Vector512.Load(t + wa); b1 = Vector512.Load(t + dw + wa); }
                    if (nq > 2) { a2 = Vector512.Load(t + 2 * wa); b2 = Vector512.Load(t + dw + 2 * wa); }
                    if (nq > 3) { a3 = Vector512.Load(t + 3 * wa); b3 = Vector512.Load(t + dw + 3 * wa); }
                    float* gbase = g + (nint)col * colLen + (nint)ob0 * sb;
                    float* xbase = x + (nint)col * colLen + (nint)(ob0 + tb - pb) * sb + (nint)(ta0 - pa) * sa;
                    for (int oa = any0; oa <= any1; oa++)
                    {
                        float* gp = gbase + (nint)oa * sa;
                        float* xp = xbase + (nint)oa * sa;
                        if (oa >= full0 && oa <= full1)
                        {
                            for (int k = 0; k < nob; k++, gp += sb, xp += sb)
                            {
                                var gv = Vector512.Load(gp);
                                var gu = Vector512.Load(gp + di);
                                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp), gv, a0);
                                b0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di), gu, b0);
                                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + sa), gv, a1);
                                b1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + sa), gu, b1);
                                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 2 * sa), gv, a2);
                                b2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + 2 * sa), gu, b2);
                                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 3 * sa), gv, a3);
                                b3 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + 3 * sa), gu, b3);
                            }
                            continue;
                        }
                        int qLo = pa - ta0 - oa, qHi = Math.Min(nq - 1, la - 1 + pa - ta0 - oa);
                        bool v0 = qLo <= 0 && 0 <= qHi, v1 = qLo <= 1 && 1 <= qHi;
                        bool v2 = qLo <= 2 && 2 <= qHi, v3 = qLo <= 3 && 3 <= qHi;
                        for (int k = 0; k < nob; k++, gp += sb, xp += sb)
                        {
                            var gv = Vector512.Load(gp);
                            var gu = Vector512.Load(gp + di);
                            if (v0)
                            {
                                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp), gv, a0);
                                b0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di), gu, b0);
                            }
                            if (v1)
                            {
                                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + sa), gv, a1);
                                b1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + sa), gu, b1);
                            }
                            if (v2)
                            {
                                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 2 * sa), gv, a2);
                                b2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + 2 * sa), gu, b2);
                            }
                            if (v3)
                            {
                                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 3 * sa), gv, a3);
                                b3 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + di + 3 * sa), gu, b3);
                            }
                        }
                    }
                    a0.Store(t);
                    if (nq > 1) a1.Store(t + wa);
                    if (nq > 2) a2.Store(t + 2 * wa);
                    if (nq > 3) a3.Store(t + 3 * wa);
                    if (!pair) continue;
                    b0.Store(t + dw);
                    if (nq > 1) b1.Store(t + dw + wa);
                    if (nq > 2) b2.Store(t + dw + 2 * wa);
                    if (nq > 3) b3.Store(t + dw + 3 * wa);
                }
            }
        }
    }
}
