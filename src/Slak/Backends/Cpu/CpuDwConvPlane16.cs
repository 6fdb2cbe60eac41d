// The decomposed depthwise convolution on 16-pixel maps (4 x 4: slak_nano's stage 2, slak_nano64's stage 3; also
// 2 x 8, 8 x 2, 1 x 16, 16 x 1) without any layout move. In NCHW a 16-pixel plane is one Vector512, and on such a map
// a branch is, per channel, a 16 x 16 matrix M (output pixel p, input pixel q; M[p, q] = the weight times mask of
// the tap joining them, 0 where the tap is outside the kernel):
// - forward: y[n, c] = M x[n, c]: the 16 columns of M stay in registers over a block of images, and each image is
//   16 FMAs of a column with one input pixel broadcast from memory (four partial sums, so the FMA latency is
//   covered within an image); the plane is loaded and stored in place;
// - input gradient: dx[n, c] = sum over branches of M^T dy[b][n, c], the same product with the rows of M as columns;
// - weight gradient: G = sum over images of dy[n, c] x[n, c]^T (16 column accumulators in registers, one
//   output-gradient load and 16 broadcast FMAs per image), then each entry G[p, q] is added to the tap joining p
//   and q: the 16 entries of a column meet 16 different taps, so a column is moved onto the tap table by permutes.
// The small-map path (CpuDwConvSmallMap.cs) executes only the in-bounds taps but moves every plane into pixel-major
// columns and back; on 4 x 4 maps those moves were two thirds of a pass (bench/results/dwconv-phases.md). Here a
// plane costs 16 FMAs per branch however many of its 256 (p, q) pairs lie inside the kernel (slak_nano's 9 x 3 has
// 160 of them, 3 x 3 has 100): more multiplies, no moves. Measured against the small-map path in
// bench/results/dwconv-plane16.md (`dwconv-plane16`).
// Every (p, q) pair's offset q - p lies in the window of (2H-1) x (2W-1) offsets (at most 49 on these maps); a
// branch's weights are first laid out by offset (a 64-float table, zero outside the kernel), and M's columns are
// permutes of that table, built once per call. A thread owns a range of channels and sweeps it in blocks of images
// (Block); each channel's sums run over the images in order, so results do not depend on the thread count, bit for
// bit. SLAK_DWCONV_PLANE16=0 (or Enabled = false) sends these maps back to the small-map path.
using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>16-pixel-map path of <see cref="CpuDwConvDecomposed"/>: forward, input gradient and weight gradient in
/// NCHW, one plane per vector.</summary>
internal static unsafe class CpuDwConvPlane16
{
    /// <summary>Pixels per plane: one Vector512 of floats.</summary>
    private const int P = 16;

    /// <summary>Entries of the by-offset weight table: (2H-1)(2W-1), at most 49, offsets, rounded up to 4
    /// vectors.</summary>
    private const int Codes = 64;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_PLANE16=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_PLANE16") != "0";

    /// <summary>Multiply-adds below which a call runs on the calling thread (a fork/join costs more).</summary>
    private const long MinParallelMacs = 1 << 18;

    /// <summary>True when an H x W map takes this path.</summary>
    internal static bool Applies(int h, int w) => Enabled && Avx512F.IsSupported && h * w == P;

    /// <summary>Index tables of one map shape. Code(p, q) = (qy - py + H - 1) * (2W - 1) + (qx - px + W - 1), the
    /// offset of input pixel q from output pixel p.</summary>
    private sealed class Plan
    {
        public Plan(int h, int w)
        {
            H = h;
            W = w;
            int span = 2 * w - 1;
            var code = new int[P * P];
            for (int p = 0; p < P; p++)
                for (int q = 0; q < P; q++)
                    code[p * P + q] = (q / w - p / w + h - 1) * span + (q % w - p % w + w - 1);
            for (int q = 0; q < P; q++)
            {
                var col = new int[P];
                var row = new int[P];
                for (int p = 0; p < P; p++)
                {
                    col[p] = code[p * P + q];
                    row[p] = code[q * P + p];
                }
                Column[q] = Vector512.Create(col);
                Row[q] = Vector512.Create(row);
            }
            // For the weight gradient: column q of G lands on codes 16j + t from lane Inverse[q, j][t] where Valid.
            for (int q = 0; q < P; q++)
                for (int j = 0; j < Codes / P; j++)
                {
                    var inv = new int[P];
                    var ok = new int[P];
                    for (int p = 0; p < P; p++)
                    {
                        int k = code[p * P + q];
                        if (k / P != j) continue;
                        inv[k % P] = p;
                        ok[k % P] = -1;
                    }
                    Inverse[q * (Codes / P) + j] = Vector512.Create(inv);
                    Valid[q * (Codes / P) + j] = Vector512.Create(ok).AsSingle();
                }
        }

        public int H { get; }
        public int W { get; }

        /// <summary>Column[q][p] = Code(p, q): the forward matrix's column q (lanes: output pixels).</summary>
        public Vector512<int>[] Column { get; } = new Vector512<int>[P];

        /// <summary>Row[p][q] = Code(p, q): the input gradient's column p (lanes: input pixels).</summary>
        public Vector512<int>[] Row { get; } = new Vector512<int>[P];

        public Vector512<int>[] Inverse { get; } = new Vector512<int>[P * (Codes / P)];
        public Vector512<float>[] Valid { get; } = new Vector512<float>[P * (Codes / P)];

        /// <summary>The taps of a Kh x Kw kernel that can meet the map (i*Kw + j) and their offset codes, cached per
        /// kernel size.</summary>
        public (int[] Taps, int[] Codes) TapsOf(int kh, int kw) => _taps.GetOrAdd((kh, kw), k =>
        {
            var taps = new List<int>();
            var codes = new List<int>();
            for (int i = 0; i < k.Item1; i++)
                for (int j = 0; j < k.Item2; j++)
                {
                    int dy = i - k.Item1 / 2, dx = j - k.Item2 / 2;
                    if (Math.Abs(dy) > H - 1 || Math.Abs(dx) > W - 1) continue;
                    taps.Add(i * k.Item2 + j);
                    codes.Add((dy + H - 1) * (2 * W - 1) + dx + W - 1);
                }
            return (taps.ToArray(), codes.ToArray());
        });

        private readonly ConcurrentDictionary<(int, int), (int[], int[])> _taps = new();
    }

    private static readonly ConcurrentDictionary<(int, int), Plan> Plans = new();

    private static Plan PlanFor(int h, int w) => Plans.GetOrAdd((h, w), k => new Plan(k.Item1, k.Item2));

    /// <summary>One branch for one call: its weight and mask pinned (Weight may be null: the weight gradient reads
    /// only the mask; Mask null: dense), taps per channel, and the taps that meet the map with their offset
    /// codes.</summary>
    private sealed class Kernel : IDisposable
    {
        private MemoryHandle _weight, _mask;

        public Kernel(Plan plan, CpuDwConvBranch br, bool readWeight)
        {
            Kk = br.Kh * br.Kw;
            (Taps, Codes) = plan.TapsOf(br.Kh, br.Kw);
            if (readWeight)
            {
                _weight = br.Weight.Pin();
                Weight = (float*)_weight.Pointer;
            }
            if (!br.Mask.IsEmpty)
            {
                _mask = br.Mask.Pin();
                Mask = (float*)_mask.Pointer;
            }
        }

        public float* Weight { get; }
        public float* Mask { get; }
        public int Kk { get; }
        public int[] Taps { get; }
        public int[] Codes { get; }

        public void Dispose()
        {
            _weight.Dispose();
            _mask.Dispose();
        }

        public static Kernel[] For(Plan plan, IReadOnlyList<CpuDwConvBranch> branches, bool readWeight)
        {
            var ks = new Kernel[branches.Count];
            for (int b = 0; b < ks.Length; b++) ks[b] = new Kernel(plan, branches[b], readWeight);
            return ks;
        }

        public static void DisposeAll(Kernel[] ks)
        {
            foreach (var k in ks) k.Dispose();
        }
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum, added in branch order (or, when
    /// no ys[b] is wanted, the product with the branches' matrices summed). Pointers to N*C*H*W tensors.</summary>
    internal static void Forward(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x,
        nint[] ys, nint ysum)
    {
        var plan = PlanFor(h, w);
        var ks = Kernel.For(plan, branches, readWeight: true);
        int nb = ks.Length;
        bool sumOnly = true;
        for (int b = 0; b < ys.Length; b++) sumOnly &= ys[b] == 0;
        // The sum alone is one product with the branches' matrices added (inference): one matrix per channel.
        int mats = sumOnly ? 1 : nb;
        nint table = (nint)Scratch(c * mats * P * P);
        try
        {
            ForChannelRanges(c, (long)n * c * P * P * mats,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                var more = stackalloc Vector512<float>[P];
                for (int ch = lo; ch < hi; ch++)
                {
                    var cols = Matrix(table, ch, 0, mats);
                    Columns(ks[0], ch, plan.Column, cols);
                    for (int b = 1; b < nb; b++)
                    {
                        if (!sumOnly)
                        {
                            Columns(ks[b], ch, plan.Column, Matrix(table, ch, b, mats));
                            continue;
                        }
                        Columns(ks[b], ch, plan.Column, more);
                        for (int k = 0; k < P; k++) cols[k] += more[k];
                    }
                }
                for (int n0 = 0; n0 < n; n0 += Block)
                {
                    int m = Math.Min(Block, n - n0);
                    for (int ch = lo; ch < hi; ch++)
                    {
                        nint at = ((nint)n0 * c + ch) * P;
                        for (int b = 0; b < mats; b++)
                        {
                            float* y = !sumOnly && b < ys.Length && ys[b] != 0 ? (float*)ys[b] + at : null;
                            float* sum = ysum != 0 ? (float*)ysum + at : null;
                            Product(m, (nint)c * P, (float*)x + at, Matrix(table, ch, b, mats), y, sum, b > 0);
                        }
                    }
                }
            });
        }
        finally
        {
            Kernel.DisposeAll(ks);
        }
    }

    /// <summary>dx = sum over branches of the input gradient of branch b for dys[b]; overwrites dx.</summary>
    internal static void BackwardData(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches,
        nint[] dys, nint dx)
    {
        var plan = PlanFor(h, w);
        var ks = Kernel.For(plan, branches, readWeight: true);
        int nb = ks.Length;
        nint table = (nint)Scratch(c * nb * P * P);
        try
        {
            ForChannelRanges(c, (long)n * c * P * P * nb,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                for (int ch = lo; ch < hi; ch++)
                    for (int b = 0; b < nb; b++)
                        Columns(ks[b], ch, plan.Row, Matrix(table, ch, b, nb));
                for (int n0 = 0; n0 < n; n0 += Block)
                {
                    int m = Math.Min(Block, n - n0);
                    for (int ch = lo; ch < hi; ch++)
                    {
                        nint at = ((nint)n0 * c + ch) * P;
                        for (int b = 0; b < nb; b++)
                            Product(m, (nint)c * P, (float*)dys[b] + at, Matrix(table, ch, b, nb), null,
                                (float*)dx + at, b > 0);
                    }
                }
            });
        }
        finally
        {
            Kernel.DisposeAll(ks);
        }
    }

    /// <summary>dws[b] = weight gradient of branch b for dys[b] (Kh*Kw floats per channel; taps that cannot meet
    /// the map are 0; with <paramref name="skipMasked"/> the taps the branch's mask clears are 0 too). Overwrites
    /// every dws[b].</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches,
        nint x, nint[] dys, nint[] dws, bool skipMasked)
    {
        var plan = PlanFor(h, w);
        var ks = Kernel.For(plan, branches, readWeight: false);
        int nb = ks.Length;
        nint table = (nint)Scratch(c * nb * P * P);
        try
        {
            ForChannelRanges(c, (long)n * c * P * P * nb,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                // Per channel and branch, G's 16 columns, summed over the images in order block after block.
                new Span<float>((float*)Matrix(table, lo, 0, nb), (hi - lo) * nb * P * P).Clear();
                for (int n0 = 0; n0 < n; n0 += Block)
                {
                    int m = Math.Min(Block, n - n0);
                    for (int ch = lo; ch < hi; ch++)
                    {
                        nint at = ((nint)n0 * c + ch) * P;
                        for (int b = 0; b < nb; b++)
                            Outer(m, (nint)c * P, (float*)x + at, (float*)dys[b] + at, Matrix(table, ch, b, nb));
                    }
                }
                var codes = stackalloc float[Codes];
                for (int ch = lo; ch < hi; ch++)
                    for (int b = 0; b < nb; b++)
                    {
                        ToCodes(plan, Matrix(table, ch, b, nb), codes);
                        var k = ks[b];
                        float* dw = (float*)dws[b] + (nint)ch * k.Kk;
                        float* mask = skipMasked && k.Mask != null ? k.Mask + (nint)ch * k.Kk : null;
                        new Span<float>(dw, k.Kk).Clear();
                        for (int i = 0; i < k.Taps.Length; i++)
                        {
                            int t = k.Taps[i];
                            if (mask == null || mask[t] != 0f) dw[t] = codes[k.Codes[i]];
                        }
                    }
            });
        }
        finally
        {
            Kernel.DisposeAll(ks);
        }
    }

    /// <summary>Images per block. A thread owns a range of channels and sweeps it block after block: within a block
    /// the planes it touches lie in one run of the range's width per image, which the hardware prefetchers follow.
    /// Going through all images of one channel first (planes C*64 bytes apart, a new 4 KiB page every image or
    /// two) left the kernels waiting on one cache miss after another.</summary>
    private const int Block = 16;

    // The 16 vectors of matrix (ch, b) in a table of matrices [channel][branch].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float>* Matrix(nint table, int ch, int b, int nb) =>
        (Vector512<float>*)table + ((nint)ch * nb + b) * P;

    // body(lo, hi) over channel ranges: inline when the work is small, else a few ranges per thread (also the
    // 16 x 16-map path, CpuDwConvRows16).
    internal static void ForChannelRanges(int c, long macs, Action<int, int> body)
    {
        if (macs < MinParallelMacs || CpuParallel.Threads == 1 || c == 1)
        {
            body(0, c);
            return;
        }
        int chunks = Math.Min(c, CpuParallel.Threads * 2);
        CpuParallel.For(0, chunks, k =>
        {
            int lo = (int)((long)c * k / chunks), hi = (int)((long)c * (k + 1) / chunks);
            if (hi > lo) body(lo, hi);
        });
    }

    // Per calling thread, 64-byte aligned, reused across calls: the matrices of one call.
    [ThreadStatic] private static float[]? t_scratch;

    private static float* Scratch(int len)
    {
        var buffer = t_scratch;
        if (buffer is null || buffer.Length < len + 16)
            t_scratch = buffer = GC.AllocateUninitializedArray<float>(len + 16, pinned: true);
        return CpuDwConvEngine.AlignUp((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }

    // cols[k] = the branch's matrix columns for channel ch, picked from its by-offset weight table with index[k].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Columns(Kernel kernel, int ch, Vector512<int>[] index, Vector512<float>* cols)
    {
        var table = stackalloc float[Codes];
        new Span<float>(table, Codes).Clear();
        float* wt = kernel.Weight + (nint)ch * kernel.Kk;
        float* mask = kernel.Mask == null ? null : kernel.Mask + (nint)ch * kernel.Kk;
        int[] taps = kernel.Taps, codes = kernel.Codes;
        for (int i = 0; i < taps.Length; i++)
            table[codes[i]] = mask == null ? wt[taps[i]] : wt[taps[i]] * mask[taps[i]];
        var t0 = Vector512.Load(table);
        var t1 = Vector512.Load(table + P);
        var t2 = Vector512.Load(table + 2 * P);
        var t3 = Vector512.Load(table + 3 * P);
        var high = Vector512.Create(2 * P);
        for (int k = 0; k < P; k++)
        {
            var idx = index[k];
            var lo = Avx512F.PermuteVar16x32x2(t0, idx, t1);
            var hi = Avx512F.PermuteVar16x32x2(t2, idx, t3);
            cols[k] = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(idx, high).AsSingle(), hi, lo);
        }
    }

    // For each of n planes (stride floats apart): r = sum over k of cols[k] * v[k], v the plane at src. Stores r at
    // dst when not null; at acc (when not null) stores r, or adds r to what is there when accumulate.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Product(int n, nint stride, float* src, Vector512<float>* cols, float* dst, float* acc,
        bool accumulate)
    {
        var c0 = cols[0]; var c1 = cols[1]; var c2 = cols[2]; var c3 = cols[3];
        var c4 = cols[4]; var c5 = cols[5]; var c6 = cols[6]; var c7 = cols[7];
        var c8 = cols[8]; var c9 = cols[9]; var c10 = cols[10]; var c11 = cols[11];
        var c12 = cols[12]; var c13 = cols[13]; var c14 = cols[14]; var c15 = cols[15];
        for (int i = 0; i < n; i++)
        {
            float* v = src + i * stride;
            // Four partial sums of four products each: the chains are short, consecutive images overlap.
            var a = c0 * Vector512.Create(v[0]);
            var b = c1 * Vector512.Create(v[1]);
            var c = c2 * Vector512.Create(v[2]);
            var d = c3 * Vector512.Create(v[3]);
            a = Avx512F.FusedMultiplyAdd(c4, Vector512.Create(v[4]), a);
            b = Avx512F.FusedMultiplyAdd(c5, Vector512.Create(v[5]), b);
            c = Avx512F.FusedMultiplyAdd(c6, Vector512.Create(v[6]), c);
            d = Avx512F.FusedMultiplyAdd(c7, Vector512.Create(v[7]), d);
            a = Avx512F.FusedMultiplyAdd(c8, Vector512.Create(v[8]), a);
            b = Avx512F.FusedMultiplyAdd(c9, Vector512.Create(v[9]), b);
            c = Avx512F.FusedMultiplyAdd(c10, Vector512.Create(v[10]), c);
            d = Avx512F.FusedMultiplyAdd(c11, Vector512.Create(v[11]), d);
            a = Avx512F.FusedMultiplyAdd(c12, Vector512.Create(v[12]), a);
            b = Avx512F.FusedMultiplyAdd(c13, Vector512.Create(v[13]), b);
            c = Avx512F.FusedMultiplyAdd(c14, Vector512.Create(v[14]), c);
            d = Avx512F.FusedMultiplyAdd(c15, Vector512.Create(v[15]), d);
            var r = (a + b) + (c + d);
            nint o = i * stride;
            if (dst != null) r.Store(dst + o);
            if (acc != null) (accumulate ? Vector512.Load(acc + o) + r : r).Store(acc + o);
        }
    }

    // g[q] += sum over the n planes (stride floats apart) of dy * x[q] (q = 0..15), in image order.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outer(int n, nint stride, float* x, float* dy, Vector512<float>* g)
    {
        var g0 = g[0]; var g1 = g[1]; var g2 = g[2]; var g3 = g[3];
        var g4 = g[4]; var g5 = g[5]; var g6 = g[6]; var g7 = g[7];
        var g8 = g[8]; var g9 = g[9]; var g10 = g[10]; var g11 = g[11];
        var g12 = g[12]; var g13 = g[13]; var g14 = g[14]; var g15 = g[15];
        for (int i = 0; i < n; i++)
        {
            float* v = x + i * stride;
            var d = Vector512.Load(dy + i * stride);
            g0 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[0]), g0);
            g1 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[1]), g1);
            g2 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[2]), g2);
            g3 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[3]), g3);
            g4 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[4]), g4);
            g5 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[5]), g5);
            g6 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[6]), g6);
            g7 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[7]), g7);
            g8 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[8]), g8);
            g9 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[9]), g9);
            g10 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[10]), g10);
            g11 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[11]), g11);
            g12 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[12]), g12);
            g13 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[13]), g13);
            g14 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[14]), g14);
            g15 = Avx512F.FusedMultiplyAdd(d, Vector512.Create(v[15]), g15);
        }
        g[0] = g0; g[1] = g1; g[2] = g2; g[3] = g3; g[4] = g4; g[5] = g5; g[6] = g6; g[7] = g7;
        g[8] = g8; g[9] = g9; g[10] = g10; g[11] = g11; g[12] = g12; g[13] = g13; g[14] = g14; g[15] = g15;
    }

    // codes[k] = sum of the entries G[p, q] (g[q][p]) whose offset code is k, columns added in order q = 0..15.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ToCodes(Plan plan, Vector512<float>* g, float* codes)
    {
        const int blocks = Codes / P;
        var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        for (int q = 0; q < P; q++)
        {
            var col = g[q];
            int o = q * blocks;
            s0 += Avx512F.PermuteVar16x32(col, plan.Inverse[o]) & plan.Valid[o];
            s1 += Avx512F.PermuteVar16x32(col, plan.Inverse[o + 1]) & plan.Valid[o + 1];
            s2 += Avx512F.PermuteVar16x32(col, plan.Inverse[o + 2]) & plan.Valid[o + 2];
            s3 += Avx512F.PermuteVar16x32(col, plan.Inverse[o + 3]) & plan.Valid[o + 3];
        }
        s0.Store(codes);
        s1.Store(codes + P);
        s2.Store(codes + 2 * P);
        s3.Store(codes + 3 * P);
    }
}
