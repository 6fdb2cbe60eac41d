// The decomposed depthwise convolution on 8 x 8 maps (slak_nano's stage 1, slak_nano64's stage 2) without layout
// moves: the forward and the input gradient. In NCHW an 8 x 8 plane is 64 floats, four Vector512 of two rows each.
// Per tap at offset (dy, dx), every output vector takes one FMA with the weight broadcast, against the input shifted
// by (dy, dx); per column of the window (one dx):
// - the horizontal shift is one permute per vector against a zero vector, the lanes whose source crosses a row edge
//   taken from the zero vector;
// - the vertical shifts by an even number of rows are other vectors of the shifted plane; by an odd number, the
//   vector straddling two of them (the upper half of one and the lower half of the next: one 128-bit-lane shuffle).
//   These nine vectors (starting at rows -1 .. 7, rows outside the map zero) stay in registers for the windows of
//   the nano presets (3 and 15 tall, unrolled); other heights load them from a small buffer.
// An output vector is skipped for a tap whose rows all fall outside the map, so a 15-tall window (its offsets -7..7
// span the map) costs 36 FMAs per column where the in-bounds pixels would fill 32, not 60. A wide window (3 x 15) is
// worked on the transposed plane with the transposed window (8 permutes each way, in registers), so that its long
// side runs down the rows and no lanes are spent on horizontal shifts past the row. Two sets of accumulators (even
// and odd tap rows) keep eight chains of FMAs in flight. Masked taps are zero weights in the tables (not skipped: a
// per-channel tap list would make the loops' trip counts data-dependent). Tables (weights times mask, flipped for
// the input gradient) are built per channel, once per call, by the thread that owns the channel; a thread sweeps its
// channel range image after image, every plane computed alone, so results do not depend on the thread count, bit
// for bit. The weight gradient stays on the small-map path.
// Off by default: against the small-map path it replaces (CpuDwConvSmallMap: pixel-major moves and line kernels over
// the live taps only) it measured x1.01-1.14 (forward + input gradient) with the operands in cache and x0.74-1.00
// with them from DRAM, at batch 128 and 2 threads (bench/results/dwconv-rows8.md, `dwconv-rows8`): its FMAs run at
// about the old path's rate, but at density 0.6 it executes masked taps and the old path does not.
// SLAK_DWCONV_ROWS8=1 (or Enabled = true) turns it on.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>8 x 8-map path of <see cref="CpuDwConvDecomposed"/>: forward and input gradient on NCHW rows, two rows
/// per vector.</summary>
internal static unsafe class CpuDwConvRows8
{
    /// <summary>Rows of a plane, and pixels per row.</summary>
    private const int R = 8;

    private const int Plane = R * R;

    /// <summary>Floats per vector (two rows).</summary>
    private const int V = 16;

    /// <summary>Vectors starting at rows -1 .. 7 of a column-shifted plane.</summary>
    private const int Straddles = R + 1;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_ROWS8=1 turns the path on; off by default, see
    /// above).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_ROWS8") == "1";

    /// <summary>True when an H x W map with these branches takes this path: 8 x 8 maps, odd kernels (centred
    /// windows).</summary>
    internal static bool Applies(int h, int w, IReadOnlyList<CpuDwConvBranch> branches)
    {
        if (!Enabled || !Avx512F.IsSupported || h != R || w != R) return false;
        foreach (var br in branches)
            if (br.Kh % 2 == 0 || br.Kw % 2 == 0) return false;
        return true;
    }

    /// <summary>Index vectors of the row shifts, dx = -7..7 at [dx + 7]: lane l (row l / 8, column l % 8) takes lane
    /// l + dx of the same row, or lane 16 (the zero vector's first lane) where column l % 8 + dx is outside the
    /// row.</summary>
    private static readonly Vector512<int>[] Shifts = BuildShifts();

    private static Vector512<int>[] BuildShifts()
    {
        var shifts = new Vector512<int>[2 * R - 1];
        var idx = new int[V];
        for (int dx = 1 - R; dx < R; dx++)
        {
            for (int l = 0; l < V; l++) idx[l] = (l % R) + dx is >= 0 and < R ? l + dx : V;
            shifts[dx + R - 1] = Vector512.Create(idx);
        }
        return shifts;
    }

    /// <summary>One branch's window on the map (at most 15 x 15) and the floats of its per-channel table (whole
    /// vectors, so that every table starts 64-byte aligned).</summary>
    private readonly struct Form
    {
        public Form(CpuDwConvBranch br)
        {
            Kh = br.Kh;
            Kw = br.Kw;
            Win = new CpuDwConvSmallMap.Window(R, R, br.Kh, br.Kw);
            Wide = Win.Kw > Win.Kh;
            Rows = Wide ? Win.Kw : Win.Kh;
            Cols = Wide ? Win.Kh : Win.Kw;
            TableLength = (Win.Taps + V - 1) / V * V;
        }

        public int Kh { get; }
        public int Kw { get; }
        public CpuDwConvSmallMap.Window Win { get; }

        /// <summary>Wider than tall: worked on the transposed plane with the transposed window.</summary>
        public bool Wide { get; }

        /// <summary>The window's height and width in the orientation it is worked in.</summary>
        public int Rows { get; }

        public int Cols { get; }

        public int TableLength { get; }

        /// <summary>FMAs (of 16 lanes) per plane: per column, each tap row meets the output vectors whose rows it
        /// can reach.</summary>
        public int Fmas
        {
            get
            {
                int per = 0;
                for (int i = 0; i < Rows; i++)
                    for (int k = 0; k < R / 2; k++)
                        per += (uint)(i - Rows / 2 + 1 + 2 * k) <= R ? 1 : 0;
                return per * Cols;
            }
        }
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum, added in branch order. Pointers
    /// to N*C*8*8 tensors.</summary>
    internal static void Forward(int n, int c, IReadOnlyList<CpuDwConvBranch> branches, nint x, nint[] ys, nint ysum)
    {
        var forms = FormsOf(branches, out int perChannel, out long fmas);
        int nb = forms.Length;
        var pins = CpuDwConvBranch.PinAll(branches);
        nint tables = (nint)Scratch(c * perChannel);
        try
        {
            CpuDwConvPlane16.ForChannelRanges(c, n * c * fmas * V,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                for (int ch = lo; ch < hi; ch++) BuildTables(forms, branches, pins, ch, flipped: false,
                    (float*)tables + (nint)ch * perChannel);
                // Per thread: one plane per branch whose output is not wanted (sum alone) and the straddles.
                var buf = stackalloc float[nb * Plane + Straddles * V + V];
                float* straddles = CpuDwConvEngine.AlignUp(buf), own = straddles + Straddles * V;
                var dst = stackalloc nint[nb];
                for (int img = 0; img < n; img++)
                    for (int ch = lo; ch < hi; ch++)
                    {
                        nint at = ((nint)img * c + ch) * Plane, ahead = Ahead(img, ch, n, c, lo, hi);
                        float* src = (float*)x + at;
                        if (ahead >= 0)
                        {
                            Prefetch((float*)x + ahead);
                            for (int b = 0; b < ys.Length; b++)
                                if (ys[b] != 0) Prefetch((float*)ys[b] + ahead);
                        }
                        float* t = (float*)tables + (nint)ch * perChannel;
                        for (int b = 0; b < nb; b++)
                        {
                            var f = forms[b];
                            float* tb = t;
                            t += f.TableLength;
                            float* y = b < ys.Length && ys[b] != 0 ? (float*)ys[b] + at : own + b * Plane;
                            dst[b] = (nint)y;
                            if (b < ys.Length && ys[b] == 0 && ysum == 0) continue;
                            Correlate(src, tb, f.Rows, f.Cols, f.Wide, straddles, null, y);
                        }
                        if (ysum != 0) Sum(dst, nb, (float*)ysum + at);
                    }
            });
        }
        finally
        {
            foreach (var pin in pins) pin.Dispose();
        }
    }

    /// <summary>dx = sum over branches (in order) of the input gradient of branch b for dys[b]; overwrites
    /// dx.</summary>
    internal static void BackwardData(int n, int c, IReadOnlyList<CpuDwConvBranch> branches, nint[] dys, nint dx)
    {
        var forms = FormsOf(branches, out int perChannel, out long fmas);
        int nb = forms.Length;
        var pins = CpuDwConvBranch.PinAll(branches);
        nint tables = (nint)Scratch(c * perChannel);
        try
        {
            CpuDwConvPlane16.ForChannelRanges(c, n * c * fmas * V,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                for (int ch = lo; ch < hi; ch++) BuildTables(forms, branches, pins, ch, flipped: true,
                    (float*)tables + (nint)ch * perChannel);
                var buf = stackalloc float[Straddles * V + V];
                float* straddles = CpuDwConvEngine.AlignUp(buf);
                for (int img = 0; img < n; img++)
                    for (int ch = lo; ch < hi; ch++)
                    {
                        nint at = ((nint)img * c + ch) * Plane, ahead = Ahead(img, ch, n, c, lo, hi);
                        float* t = (float*)tables + (nint)ch * perChannel;
                        if (ahead >= 0)
                        {
                            for (int b = 0; b < nb; b++) Prefetch((float*)dys[b] + ahead);
                            Prefetch((float*)dx + ahead);
                        }
                        // The first branch writes dx, the others add to it (in branch order).
                        float* y = (float*)dx + at;
                        for (int b = 0; b < nb; b++)
                        {
                            var f = forms[b];
                            Correlate((float*)dys[b] + at, t, f.Rows, f.Cols, f.Wide, straddles, b == 0 ? null : y, y);
                            t += f.TableLength;
                        }
                    }
            });
        }
        finally
        {
            foreach (var pin in pins) pin.Dispose();
        }
    }

    private static Form[] FormsOf(IReadOnlyList<CpuDwConvBranch> branches, out int perChannel, out long fmas)
    {
        var forms = new Form[branches.Count];
        perChannel = 0;
        fmas = 0;
        for (int b = 0; b < forms.Length; b++)
        {
            forms[b] = new Form(branches[b]);
            perChannel += forms[b].TableLength;
            fmas += forms[b].Fmas;
        }
        return forms;
    }

    // Channel ch's tables of every branch, back to back at table: the window's taps in the orientation it is worked
    // in (i * Cols + j) times the mask, flipped (both axes) for the input gradient.
    private static void BuildTables(Form[] forms, IReadOnlyList<CpuDwConvBranch> branches, MemoryHandle[] pins,
        int ch, bool flipped, float* table)
    {
        for (int b = 0; b < forms.Length; b++)
        {
            var f = forms[b];
            var win = f.Win;
            int kk = f.Kh * f.Kw;
            float* wt = (float*)pins[2 * b].Pointer + (nint)ch * kk;
            float* mask = branches[b].Mask.IsEmpty ? null : (float*)pins[2 * b + 1].Pointer + (nint)ch * kk;
            new Span<float>(table, f.TableLength).Clear();
            for (int i = 0; i < f.Rows; i++)
                for (int j = 0; j < f.Cols; j++)
                {
                    int ii = flipped ? f.Rows - 1 - i : i, jj = flipped ? f.Cols - 1 - j : j;
                    int tap = f.Wide ? (win.I0 + jj) * f.Kw + win.J0 + ii : (win.I0 + ii) * f.Kw + win.J0 + jj;
                    table[i * f.Cols + j] = mask == null ? wt[tap] : wt[tap] * mask[tap];
                }
            table += f.TableLength;
        }
    }

    // dst = (init, when not null) + the correlation of the 8 x 8 plane src with the rows x cols window of taps in
    // table (row-major, centred); transposed: worked on the transposed plane and the result transposed back, both in
    // registers. dst may be init. The nano presets' heights (3, 15) keep the straddles in registers: on this machine
    // kind (AMD EPYC) vectors stored and loaded again at once wait for the stores, and with the buffer for every
    // height the path measured new/old 2.0-2.4 (`dwconv-rows8`), against 1.2-1.3 with registers for those two.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate(float* src, float* table, int rows, int cols, bool transposed, float* straddles,
        float* init, float* dst)
    {
        if (rows == 3)
        {
            Correlate3(src, table, cols, transposed, init, dst);
            return;
        }
        if (rows == 15)
        {
            Correlate15(src, table, cols, transposed, init, dst);
            return;
        }
        var x0 = Vector512.Load(src);
        var x1 = Vector512.Load(src + V);
        var x2 = Vector512.Load(src + 2 * V);
        var x3 = Vector512.Load(src + 3 * V);
        if (transposed) Transpose(x0, x1, x2, x3, out x0, out x1, out x2, out x3);
        Vector512<float> a0, a1, a2, a3;
        if (init != null && !transposed)
        {
            a0 = Vector512.Load(init); a1 = Vector512.Load(init + V);
            a2 = Vector512.Load(init + 2 * V); a3 = Vector512.Load(init + 3 * V);
        }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        var zero = Vector512<float>.Zero;
        int halfW = cols / 2, halfH = rows / 2;
        for (int j = 0; j < cols; j++)
        {
            var idx = Shifts[j - halfW + R - 1];
            var h0 = Avx512F.PermuteVar16x32x2(x0, idx, zero);
            var h1 = Avx512F.PermuteVar16x32x2(x1, idx, zero);
            var h2 = Avx512F.PermuteVar16x32x2(x2, idx, zero);
            var h3 = Avx512F.PermuteVar16x32x2(x3, idx, zero);
            // straddles + (s + 1) * V: rows s and s + 1 of the shifted plane, s = -1 .. 7 (0x4E: the second half
            // of the first operand, then the first half of the second).
            Avx512F.Shuffle4x128(zero, h0, 0x4E).Store(straddles);
            h0.Store(straddles + V);
            Avx512F.Shuffle4x128(h0, h1, 0x4E).Store(straddles + 2 * V);
            h1.Store(straddles + 3 * V);
            Avx512F.Shuffle4x128(h1, h2, 0x4E).Store(straddles + 4 * V);
            h2.Store(straddles + 5 * V);
            Avx512F.Shuffle4x128(h2, h3, 0x4E).Store(straddles + 6 * V);
            h3.Store(straddles + 7 * V);
            Avx512F.Shuffle4x128(h3, zero, 0x4E).Store(straddles + 8 * V);
            float* w = table + j;
            for (int i = 0; i < rows; i++, w += cols)
            {
                // Tap row i is vertical offset dy = i - halfH: output vector k (rows 2k, 2k + 1) reads the straddle
                // starting at row 2k + dy, index s + 2k; outside 0 .. 8 its rows are all outside the map.
                int s = i - halfH + 1;
                var wt = Vector512.Create(*w);
                if ((uint)s <= R) a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(straddles + s * V), wt, a0);
                if ((uint)(s + 2) <= R) a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(straddles + (s + 2) * V), wt, a1);
                if ((uint)(s + 4) <= R) a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(straddles + (s + 4) * V), wt, a2);
                if ((uint)(s + 6) <= R) a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(straddles + (s + 6) * V), wt, a3);
            }
        }
        Finish(a0, a1, a2, a3, transposed, init, dst);
    }

    // Correlate for a 15-tall window (the 8 x 8 stages' 15 x 3, and 3 x 15 transposed: offsets -7..7 span the
    // map): the nine straddles in registers, each tap row unrolled against the output vectors it reaches.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate15(float* src, float* table, int cols, bool transposed, float* init, float* dst)
    {
        var x0 = Vector512.Load(src);
        var x1 = Vector512.Load(src + V);
        var x2 = Vector512.Load(src + 2 * V);
        var x3 = Vector512.Load(src + 3 * V);
        if (transposed) Transpose(x0, x1, x2, x3, out x0, out x1, out x2, out x3);
        Vector512<float> a0, a1, a2, a3;
        if (init != null && !transposed)
        {
            a0 = Vector512.Load(init); a1 = Vector512.Load(init + V);
            a2 = Vector512.Load(init + 2 * V); a3 = Vector512.Load(init + 3 * V);
        }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        // Odd tap rows accumulate apart (eight chains of FMAs in flight, not four), added in at the end.
        Vector512<float> b0, b1, b2, b3;
        b0 = b1 = b2 = b3 = Vector512<float>.Zero;
        var zero = Vector512<float>.Zero;
        int halfW = cols / 2;
        for (int j = 0; j < cols; j++)
        {
            var idx = Shifts[j - halfW + R - 1];
            // sS: rows S - 1 and S of the shifted plane, S = 0 .. 8 (as the straddle buffer of Correlate).
            var s1 = Avx512F.PermuteVar16x32x2(x0, idx, zero);
            var s3 = Avx512F.PermuteVar16x32x2(x1, idx, zero);
            var s5 = Avx512F.PermuteVar16x32x2(x2, idx, zero);
            var s7 = Avx512F.PermuteVar16x32x2(x3, idx, zero);
            var s0 = Avx512F.Shuffle4x128(zero, s1, 0x4E);
            var s2 = Avx512F.Shuffle4x128(s1, s3, 0x4E);
            var s4 = Avx512F.Shuffle4x128(s3, s5, 0x4E);
            var s6 = Avx512F.Shuffle4x128(s5, s7, 0x4E);
            var s8 = Avx512F.Shuffle4x128(s7, zero, 0x4E);
            // Tap row i (offset i - 7) meets output vector k through straddle i - 6 + 2k where that is 0 .. 8; even
            // rows into a, odd into b.
            Vector512<float> w;
            w = Vector512.Create(table[0 * cols + j]);
            a3 = Avx512F.FusedMultiplyAdd(s0, w, a3);
            w = Vector512.Create(table[1 * cols + j]);
            b3 = Avx512F.FusedMultiplyAdd(s1, w, b3);
            w = Vector512.Create(table[2 * cols + j]);
            a2 = Avx512F.FusedMultiplyAdd(s0, w, a2); a3 = Avx512F.FusedMultiplyAdd(s2, w, a3);
            w = Vector512.Create(table[3 * cols + j]);
            b2 = Avx512F.FusedMultiplyAdd(s1, w, b2); b3 = Avx512F.FusedMultiplyAdd(s3, w, b3);
            w = Vector512.Create(table[4 * cols + j]);
            a1 = Avx512F.FusedMultiplyAdd(s0, w, a1); a2 = Avx512F.FusedMultiplyAdd(s2, w, a2);
            a3 = Avx512F.FusedMultiplyAdd(s4, w, a3);
            w = Vector512.Create(table[5 * cols + j]);
            b1 = Avx512F.FusedMultiplyAdd(s1, w, b1); b2 = Avx512F.FusedMultiplyAdd(s3, w, b2);
            b3 = Avx512F.FusedMultiplyAdd(s5, w, b3);
            w = Vector512.Create(table[6 * cols + j]);
            a0 = Avx512F.FusedMultiplyAdd(s0, w, a0); a1 = Avx512F.FusedMultiplyAdd(s2, w, a1);
            a2 = Avx512F.FusedMultiplyAdd(s4, w, a2); a3 = Avx512F.FusedMultiplyAdd(s6, w, a3);
            w = Vector512.Create(table[7 * cols + j]);
            b0 = Avx512F.FusedMultiplyAdd(s1, w, b0); b1 = Avx512F.FusedMultiplyAdd(s3, w, b1);
            b2 = Avx512F.FusedMultiplyAdd(s5, w, b2); b3 = Avx512F.FusedMultiplyAdd(s7, w, b3);
            w = Vector512.Create(table[8 * cols + j]);
            a0 = Avx512F.FusedMultiplyAdd(s2, w, a0); a1 = Avx512F.FusedMultiplyAdd(s4, w, a1);
            a2 = Avx512F.FusedMultiplyAdd(s6, w, a2); a3 = Avx512F.FusedMultiplyAdd(s8, w, a3);
            w = Vector512.Create(table[9 * cols + j]);
            b0 = Avx512F.FusedMultiplyAdd(s3, w, b0); b1 = Avx512F.FusedMultiplyAdd(s5, w, b1);
            b2 = Avx512F.FusedMultiplyAdd(s7, w, b2);
            w = Vector512.Create(table[10 * cols + j]);
            a0 = Avx512F.FusedMultiplyAdd(s4, w, a0); a1 = Avx512F.FusedMultiplyAdd(s6, w, a1);
            a2 = Avx512F.FusedMultiplyAdd(s8, w, a2);
            w = Vector512.Create(table[11 * cols + j]);
            b0 = Avx512F.FusedMultiplyAdd(s5, w, b0); b1 = Avx512F.FusedMultiplyAdd(s7, w, b1);
            w = Vector512.Create(table[12 * cols + j]);
            a0 = Avx512F.FusedMultiplyAdd(s6, w, a0); a1 = Avx512F.FusedMultiplyAdd(s8, w, a1);
            w = Vector512.Create(table[13 * cols + j]);
            b0 = Avx512F.FusedMultiplyAdd(s7, w, b0);
            w = Vector512.Create(table[14 * cols + j]);
            a0 = Avx512F.FusedMultiplyAdd(s8, w, a0);
        }
        Finish(a0 + b0, a1 + b1, a2 + b2, a3 + b3, transposed, init, dst);
    }

    // Correlate for a 3-tall window (slak's 3 x 3 and 3 x M): its offsets dy = -1, 0, 1 meet the straddles and the
    // shifted vectors themselves, all nine kept in registers (no buffer, no stores).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate3(float* src, float* table, int cols, bool transposed, float* init, float* dst)
    {
        var x0 = Vector512.Load(src);
        var x1 = Vector512.Load(src + V);
        var x2 = Vector512.Load(src + 2 * V);
        var x3 = Vector512.Load(src + 3 * V);
        if (transposed) Transpose(x0, x1, x2, x3, out x0, out x1, out x2, out x3);
        Vector512<float> a0, a1, a2, a3;
        if (init != null && !transposed)
        {
            a0 = Vector512.Load(init); a1 = Vector512.Load(init + V);
            a2 = Vector512.Load(init + 2 * V); a3 = Vector512.Load(init + 3 * V);
        }
        else a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        // The middle tap row accumulates apart (eight chains of FMAs in flight, not four), added in at the end.
        Vector512<float> b0, b1, b2, b3;
        b0 = b1 = b2 = b3 = Vector512<float>.Zero;
        var zero = Vector512<float>.Zero;
        int halfW = cols / 2;
        for (int j = 0; j < cols; j++)
        {
            var idx = Shifts[j - halfW + R - 1];
            var h0 = Avx512F.PermuteVar16x32x2(x0, idx, zero);
            var h1 = Avx512F.PermuteVar16x32x2(x1, idx, zero);
            var h2 = Avx512F.PermuteVar16x32x2(x2, idx, zero);
            var h3 = Avx512F.PermuteVar16x32x2(x3, idx, zero);
            // sK: rows 2K + 1 and 2K + 2 of the shifted plane (s_ for K = -1: rows -1 and 0).
            var s_ = Avx512F.Shuffle4x128(zero, h0, 0x4E);
            var s0 = Avx512F.Shuffle4x128(h0, h1, 0x4E);
            var s1 = Avx512F.Shuffle4x128(h1, h2, 0x4E);
            var s2 = Avx512F.Shuffle4x128(h2, h3, 0x4E);
            var s3 = Avx512F.Shuffle4x128(h3, zero, 0x4E);
            var up = Vector512.Create(table[j]);
            var mid = Vector512.Create(table[cols + j]);
            var down = Vector512.Create(table[2 * cols + j]);
            // Output rows 2k, 2k + 1 take rows 2k - 1.. through the top tap, 2k.. through the middle one and
            // 2k + 1.. through the bottom one.
            a0 = Avx512F.FusedMultiplyAdd(s_, up, a0); a1 = Avx512F.FusedMultiplyAdd(s0, up, a1);
            a2 = Avx512F.FusedMultiplyAdd(s1, up, a2); a3 = Avx512F.FusedMultiplyAdd(s2, up, a3);
            b0 = Avx512F.FusedMultiplyAdd(h0, mid, b0); b1 = Avx512F.FusedMultiplyAdd(h1, mid, b1);
            b2 = Avx512F.FusedMultiplyAdd(h2, mid, b2); b3 = Avx512F.FusedMultiplyAdd(h3, mid, b3);
            a0 = Avx512F.FusedMultiplyAdd(s0, down, a0); a1 = Avx512F.FusedMultiplyAdd(s1, down, a1);
            a2 = Avx512F.FusedMultiplyAdd(s2, down, a2); a3 = Avx512F.FusedMultiplyAdd(s3, down, a3);
        }
        Finish(a0 + b0, a1 + b1, a2 + b2, a3 + b3, transposed, init, dst);
    }

    // Transposition of an 8 x 8 plane in two rounds of two-source permutes: first the 4 x 4 blocks of rows 0-3 and
    // 4-7 (column-major within a block), then each output vector (two columns) from the blocks above and below.
    private static readonly Vector512<int> BlockLeft = BlockIndex(0), BlockRight = BlockIndex(R / 2);
    private static readonly Vector512<int> ColumnsEven = ColumnIndex(0), ColumnsOdd = ColumnIndex(1);

    // Lane c * 4 + r: element (r, c + c0) of rows 0-3, held in [v0, v1] at lane r * 8 + c + c0.
    private static Vector512<int> BlockIndex(int c0)
    {
        var idx = new int[V];
        for (int c = 0; c < 4; c++)
            for (int r = 0; r < 4; r++) idx[c * 4 + r] = r * R + c + c0;
        return Vector512.Create(idx);
    }

    // Lane l: element (l % 8, 2m + l / 8) of a block pair (upper block lanes 0-15, lower block 16-31).
    private static Vector512<int> ColumnIndex(int m)
    {
        var idx = new int[V];
        for (int l = 0; l < V; l++)
        {
            int c = 2 * m + l / R, r = l % R;
            idx[l] = r < 4 ? c * 4 + r : V + c * 4 + r - 4;
        }
        return Vector512.Create(idx);
    }

    // t = the transpose of the 8 x 8 plane v (two rows per vector).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        out Vector512<float> t0, out Vector512<float> t1, out Vector512<float> t2, out Vector512<float> t3)
    {
        var upLeft = Avx512F.PermuteVar16x32x2(v0, BlockLeft, v1);
        var upRight = Avx512F.PermuteVar16x32x2(v0, BlockRight, v1);
        var downLeft = Avx512F.PermuteVar16x32x2(v2, BlockLeft, v3);
        var downRight = Avx512F.PermuteVar16x32x2(v2, BlockRight, v3);
        t0 = Avx512F.PermuteVar16x32x2(upLeft, ColumnsEven, downLeft);
        t1 = Avx512F.PermuteVar16x32x2(upLeft, ColumnsOdd, downLeft);
        t2 = Avx512F.PermuteVar16x32x2(upRight, ColumnsEven, downRight);
        t3 = Avx512F.PermuteVar16x32x2(upRight, ColumnsOdd, downRight);
    }

    // dst = the accumulators a, transposed back (then added to init, when not null) for a transposed correlation
    // (whose accumulators started at zero); else a as they are (init already in them).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        bool transposed, float* init, float* dst)
    {
        if (transposed)
        {
            Transpose(a0, a1, a2, a3, out a0, out a1, out a2, out a3);
            if (init != null)
            {
                a0 += Vector512.Load(init); a1 += Vector512.Load(init + V);
                a2 += Vector512.Load(init + 2 * V); a3 += Vector512.Load(init + 3 * V);
            }
        }
        a0.Store(dst); a1.Store(dst + V); a2.Store(dst + 2 * V); a3.Store(dst + 3 * V);
    }

    /// <summary>Planes ahead of the current one that a thread prefetches.</summary>
    private const int Lead = 2;

    // Where the thread's plane Lead planes after (img, ch) starts (floats), or -1 past the end: a thread sweeps
    // channels lo..hi-1 of image after image.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Ahead(int img, int ch, int n, int c, int lo, int hi)
    {
        if (ch + Lead < hi) return ((nint)img * c + ch + Lead) * Plane;
        int next = lo + (ch + Lead - hi);
        return img + 1 < n && next < hi ? ((nint)(img + 1) * c + next) * Plane : -1;
    }

    // The 4 cache lines of a plane towards L1 (a thread's planes are C planes apart between images).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* plane)
    {
        for (int k = 0; k < Plane; k += V) Sse.Prefetch0(plane + k);
    }

    // sum = planes[0] + planes[1] + ... in order (8 x 8 each).
    private static void Sum(nint* planes, int count, float* sum)
    {
        for (int k = 0; k < Plane; k += V)
        {
            var s = Vector512.Load((float*)planes[0] + k);
            for (int b = 1; b < count; b++) s += Vector512.Load((float*)planes[b] + k);
            s.Store(sum + k);
        }
    }

    // Per calling thread, 64-byte aligned, reused across calls: the tables of one call.
    [ThreadStatic] private static float[]? t_tables;

    private static float* Scratch(int len)
    {
        var buffer = t_tables;
        if (buffer is null || buffer.Length < len + 16)
            t_tables = buffer = GC.AllocateUninitializedArray<float>(len + 16, pinned: true);
        return CpuDwConvEngine.AlignUp((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }
}
