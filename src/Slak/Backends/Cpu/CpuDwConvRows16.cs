// The decomposed depthwise convolution on 16 x 16 maps (slak_nano64's stage 1) without layout moves: the forward and
// the input gradient. In NCHW a row of a 16 x 16 plane is exactly one Vector512, so a plane is 16 vectors:
// - a horizontal tap offset dx is a lane shift of a row with zero fill (one permute against a zero vector);
// - a vertical tap offset is another row.
// The output plane stays in 16 accumulator registers while every tap of a branch is applied. A branch is worked in
// the orientation where its window is tall (Kh' >= Kw'); a wide window (slak_nano64's 3 x 31) runs on the transposed
// plane with the transposed kernel, its result transposed back (CpuDwConvMoves16.Transpose: 64 shuffles each way).
// Per column j of a tall window (horizontal offset dx), two forms:
// - band (window height below 16): the 16 shifted rows are written into a small buffer with zero rows above and
//   below, and each tap of the column is one weight broadcast and 16 FMAs on rows loaded at the tap's offset
//   (16 * Kh' FMAs per column, the in-bounds ones and the few at the map's edge);
// - matrix (height 16 and up: the 31 x 3 window meets every row pair): the vertical pass of column j is the
//   16 x 16 band matrix T[y][r] = w[r - y + Kh'/2][j] times the 16 shifted rows (256 FMAs per column, every one
//   inside the map for a 31-tall window), in blocks of 8 output rows by 4 input rows that hold the 11 weights they
//   meet in registers.
// A horizontal shift of a 16-lane row spends |dx| zero lanes, so a window as long as the map (31) executes about
// twice its in-bounds taps along the row: hence the transposition of wide windows, whose long side then runs down
// the rows instead. The pixel-major path this replaces on 16 x 16 maps (CpuDwConvSmallMap with the line kernels of
// CpuDwConvColumns) executes only in-bounds taps but moves every plane to pixel-major columns and back: those moves
// were 36-43 % of a pass (bench/results/dwconv-phases.md).
// The input gradient is the same correlation of each output gradient with the flipped kernel, the branches summed
// in branch order. The weight gradient stays on the pixel-major path. Tables (weights times mask in the form's
// layout) are built per channel, once per call, by the thread that owns the channel. A thread owns a range of
// channels and sweeps it image after image (the planes two ahead prefetched); every plane is computed alone, so
// results do not depend on the thread count, bit for bit. SLAK_DWCONV_ROWS16=0 (or Enabled = false) sends these
// maps back to the pixel-major path. Measured against it in bench/results/dwconv-rows16.md (`dwconv-rows16`).
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>16 x 16-map path of <see cref="CpuDwConvDecomposed"/>: forward and input gradient on NCHW rows, one row
/// per vector.</summary>
internal static unsafe class CpuDwConvRows16
{
    /// <summary>Rows of a plane, and pixels per row: one Vector512 of floats.</summary>
    private const int R = 16;

    private const int Plane = R * R;

    /// <summary>Windows at least this tall take the matrix form (256 FMAs per column, against 16 per tap).</summary>
    private const int MatrixRows = R;

    /// <summary>Zeros before a column's taps in the matrix form's table: a block reads up to 15 offsets beyond
    /// the window on either side.</summary>
    private const int ColumnPad = R;

    // Floats per column in the matrix form's table: the taps inside ColumnPad zeros on either side.
    private static int ColumnStride(int rows) => rows + 2 * ColumnPad;

    /// <summary>Zero rows above and below the band form's shifted rows: half the tallest band window (15).</summary>
    private const int BandPad = (MatrixRows - 1) / 2;

    /// <summary>Floats of the band form's buffer: 16 rows inside BandPad zero rows on either side.</summary>
    private const int BandRowsLength = (R + 2 * BandPad) * R;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_ROWS16=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_ROWS16") != "0";

    /// <summary>True when an H x W map with these branches takes this path: 16 x 16 maps, odd kernels (centred
    /// windows).</summary>
    internal static bool Applies(int h, int w, IReadOnlyList<CpuDwConvBranch> branches)
    {
        if (!Enabled || !Avx512F.IsSupported || h != R || w != R) return false;
        foreach (var br in branches)
            if (br.Kh % 2 == 0 || br.Kw % 2 == 0) return false;
        return true;
    }

    /// <summary>Index vectors of the row shifts, dx = -15..15 at [dx + 15]: lane l takes lane l + dx of the row, or
    /// lane 16 (the zero vector's first lane) where l + dx is outside the row.</summary>
    private static readonly Vector512<int>[] Shifts = BuildShifts();

    private static Vector512<int>[] BuildShifts()
    {
        var shifts = new Vector512<int>[2 * R - 1];
        var idx = new int[R];
        for (int dx = 1 - R; dx < R; dx++)
        {
            for (int l = 0; l < R; l++) idx[l] = l + dx is >= 0 and < R ? l + dx : R;
            shifts[dx + R - 1] = Vector512.Create(idx);
        }
        return shifts;
    }

    /// <summary>How one branch runs: its window on the map, whether it is worked transposed (wide), its height and
    /// width in that orientation, its form and the floats of its per-channel table.</summary>
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
            Matrix = Rows >= MatrixRows;
            // Whole vectors, so that every table starts 64-byte aligned.
            TableLength = ((Matrix ? Cols * ColumnStride(Rows) : Rows * Cols) + R - 1) / R * R;
        }

        public int Kh { get; }
        public int Kw { get; }
        public CpuDwConvSmallMap.Window Win { get; }
        public bool Wide { get; }
        public int Rows { get; }
        public int Cols { get; }
        public bool Matrix { get; }
        public int TableLength { get; }

        /// <summary>FMAs (of 16 lanes) per plane.</summary>
        public int Fmas => Matrix ? Cols * Plane : Cols * Rows * R;
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum, added in branch order. Pointers
    /// to N*C*16*16 tensors.</summary>
    internal static void Forward(int n, int c, IReadOnlyList<CpuDwConvBranch> branches, nint x, nint[] ys, nint ysum)
    {
        var forms = FormsOf(branches, out int perChannel, out long fmas);
        int nb = forms.Length;
        var pins = CpuDwConvBranch.PinAll(branches);
        nint tables = (nint)Scratch(c * perChannel);
        try
        {
            CpuDwConvPlane16.ForChannelRanges(c, n * c * fmas * R,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                for (int ch = lo; ch < hi; ch++) BuildTables(forms, branches, pins, ch, flipped: false,
                    (float*)tables + (nint)ch * perChannel);
                // Per thread: the transposed input, a transposed result, one plane per branch whose output is not
                // wanted (sum alone) and the band form's shifted rows (zero rows above and below).
                var buf = stackalloc float[(3 + nb) * Plane + BandRowsLength + R];
                float* xt = CpuDwConvEngine.AlignUp(buf), tmp = xt + Plane, rows = tmp + Plane;
                float* own = rows + BandRowsLength;
                new Span<float>(rows, BandRowsLength).Clear();
                var dst = stackalloc nint[nb];
                bool anyWide = false;
                foreach (var f in forms) anyWide |= f.Wide;
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
                        if (anyWide) Transpose(src, null, xt);
                        float* t = (float*)tables + (nint)ch * perChannel;
                        for (int b = 0; b < nb; b++)
                        {
                            var f = forms[b];
                            float* tb = t;
                            t += f.TableLength;
                            float* y = b < ys.Length && ys[b] != 0 ? (float*)ys[b] + at : own + b * Plane;
                            dst[b] = (nint)y;
                            if (b < ys.Length && ys[b] == 0 && ysum == 0) continue;
                            if (f.Wide)
                            {
                                Correlate(f, xt, tb, rows, null, tmp);
                                Transpose(tmp, null, y);
                            }
                            else Correlate(f, src, tb, rows, null, y);
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
            CpuDwConvPlane16.ForChannelRanges(c, n * c * fmas * R,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
            {
                for (int ch = lo; ch < hi; ch++) BuildTables(forms, branches, pins, ch, flipped: true,
                    (float*)tables + (nint)ch * perChannel);
                // Per thread: a transposed output gradient, a transposed result, the running sum and the band
                // form's shifted rows.
                var buf = stackalloc float[3 * Plane + BandRowsLength + R];
                float* gt = CpuDwConvEngine.AlignUp(buf), tmp = gt + Plane, sum = tmp + Plane, rows = sum + Plane;
                new Span<float>(rows, BandRowsLength).Clear();
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
                        for (int b = 0; b < nb; b++)
                        {
                            var f = forms[b];
                            // The first branch starts the sum, the last one writes dx.
                            float* acc = b == 0 ? null : sum, y = b == nb - 1 ? (float*)dx + at : sum;
                            float* g = (float*)dys[b] + at;
                            if (f.Wide)
                            {
                                Transpose(g, null, gt);
                                Correlate(f, gt, t, rows, null, tmp);
                                Transpose(tmp, acc, y);
                            }
                            else Correlate(f, g, t, rows, acc, y);
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

    // Channel ch's tables of every branch, back to back at table: weights times mask in the form's orientation
    // (flipped for the input gradient), as the band matrices of its columns (matrix form) or tap by tap (band form).
    private static void BuildTables(Form[] forms, IReadOnlyList<CpuDwConvBranch> branches, MemoryHandle[] pins,
        int ch, bool flipped, float* table)
    {
        var k = stackalloc float[(2 * R - 1) * (2 * R - 1)];
        for (int b = 0; b < forms.Length; b++)
        {
            var f = forms[b];
            int kk = f.Kh * f.Kw;
            float* wt = (float*)pins[2 * b].Pointer + (nint)ch * kk;
            float* mask = branches[b].Mask.IsEmpty ? null : (float*)pins[2 * b + 1].Pointer + (nint)ch * kk;
            // k[i * Cols + j]: the working orientation's window, tap (i, j).
            for (int i = 0; i < f.Rows; i++)
                for (int j = 0; j < f.Cols; j++)
                {
                    int ii = flipped ? f.Rows - 1 - i : i, jj = flipped ? f.Cols - 1 - j : j;
                    int tap = f.Wide ? (f.Win.I0 + jj) * f.Kw + f.Win.J0 + ii : (f.Win.I0 + ii) * f.Kw + f.Win.J0 + jj;
                    k[i * f.Cols + j] = mask == null ? wt[tap] : wt[tap] * mask[tap];
                }
            var dst = new Span<float>(table, f.TableLength);
            dst.Clear();
            if (f.Matrix)
            {
                // Column j: ColumnPad zeros, its Rows taps top to bottom, zeros to the stride.
                int stride = ColumnStride(f.Rows);
                for (int j = 0; j < f.Cols; j++)
                    for (int i = 0; i < f.Rows; i++) table[j * stride + ColumnPad + i] = k[i * f.Cols + j];
            }
            else new Span<float>(k, f.Rows * f.Cols).CopyTo(dst);
            table += f.TableLength;
        }
    }

    // dst = (init, when not null) + the correlation of the 16 x 16 plane src with one branch in its working
    // orientation (table: its weights in the form's layout; rows: the band form's buffer, BandRowsLength floats,
    // zero outside its middle 16 rows).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Correlate(in Form f, float* src, float* table, float* rows, float* init, float* dst)
    {
        if (f.Matrix) MatrixForm(src, table, f.Rows, f.Cols, init, dst);
        else if (f.Rows == 3) Band3(src, table, f.Cols, init, dst);
        else BandForm(src, table, f.Rows, f.Cols, rows, init, dst);
    }

    // The matrix form on 8 output rows at a time (a0..a7 stay in registers over every column and input row) and 4
    // input rows at a time: the 32 (output, input) row pairs of a block meet 11 taps of the column (offsets
    // r - y = -7..3 around the block's), so a block is 4 row loads and permutes, 11 weight broadcasts and 32 FMAs:
    // about half a load per FMA (a weight broadcast per FMA left the kernel waiting on loads).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MatrixForm(float* src, float* table, int rows, int cols, float* init, float* dst)
    {
        var zero = Vector512<float>.Zero;
        int half = cols / 2, stride = ColumnStride(rows);
        for (int y0 = 0; y0 < R; y0 += 8)
        {
            Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7;
            float* o = dst + y0 * R;
            if (init != null)
            {
                float* g = init + y0 * R;
                a0 = Vector512.Load(g); a1 = Vector512.Load(g + R); a2 = Vector512.Load(g + 2 * R);
                a3 = Vector512.Load(g + 3 * R); a4 = Vector512.Load(g + 4 * R); a5 = Vector512.Load(g + 5 * R);
                a6 = Vector512.Load(g + 6 * R); a7 = Vector512.Load(g + 7 * R);
            }
            else a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
            for (int j = 0; j < cols; j++)
            {
                var idx = Shifts[j - half + R - 1];
                // wq[q] = the column's tap at offset r0 - y0 - 7 + q (q = k - m + 7 for input row r0 + k, output
                // row y0 + m), zero outside the window.
                float* wq = table + j * stride + ColumnPad + rows / 2 - y0 - 7;
                for (int r0 = 0; r0 < R; r0 += 4, wq += 4)
                {
                    float* x = src + r0 * R;
                    var s0 = Avx512F.PermuteVar16x32x2(Vector512.Load(x), idx, zero);
                    var s1 = Avx512F.PermuteVar16x32x2(Vector512.Load(x + R), idx, zero);
                    var s2 = Avx512F.PermuteVar16x32x2(Vector512.Load(x + 2 * R), idx, zero);
                    var s3 = Avx512F.PermuteVar16x32x2(Vector512.Load(x + 3 * R), idx, zero);
                    var w0 = Vector512.Create(wq[0]); var w1 = Vector512.Create(wq[1]);
                    var w2 = Vector512.Create(wq[2]); var w3 = Vector512.Create(wq[3]);
                    var w4 = Vector512.Create(wq[4]); var w5 = Vector512.Create(wq[5]);
                    var w6 = Vector512.Create(wq[6]); var w7 = Vector512.Create(wq[7]);
                    var w8 = Vector512.Create(wq[8]); var w9 = Vector512.Create(wq[9]);
                    var w10 = Vector512.Create(wq[10]);
                    a0 = Avx512F.FusedMultiplyAdd(s0, w7, a0); a1 = Avx512F.FusedMultiplyAdd(s0, w6, a1);
                    a2 = Avx512F.FusedMultiplyAdd(s0, w5, a2); a3 = Avx512F.FusedMultiplyAdd(s0, w4, a3);
                    a4 = Avx512F.FusedMultiplyAdd(s0, w3, a4); a5 = Avx512F.FusedMultiplyAdd(s0, w2, a5);
                    a6 = Avx512F.FusedMultiplyAdd(s0, w1, a6); a7 = Avx512F.FusedMultiplyAdd(s0, w0, a7);
                    a0 = Avx512F.FusedMultiplyAdd(s1, w8, a0); a1 = Avx512F.FusedMultiplyAdd(s1, w7, a1);
                    a2 = Avx512F.FusedMultiplyAdd(s1, w6, a2); a3 = Avx512F.FusedMultiplyAdd(s1, w5, a3);
                    a4 = Avx512F.FusedMultiplyAdd(s1, w4, a4); a5 = Avx512F.FusedMultiplyAdd(s1, w3, a5);
                    a6 = Avx512F.FusedMultiplyAdd(s1, w2, a6); a7 = Avx512F.FusedMultiplyAdd(s1, w1, a7);
                    a0 = Avx512F.FusedMultiplyAdd(s2, w9, a0); a1 = Avx512F.FusedMultiplyAdd(s2, w8, a1);
                    a2 = Avx512F.FusedMultiplyAdd(s2, w7, a2); a3 = Avx512F.FusedMultiplyAdd(s2, w6, a3);
                    a4 = Avx512F.FusedMultiplyAdd(s2, w5, a4); a5 = Avx512F.FusedMultiplyAdd(s2, w4, a5);
                    a6 = Avx512F.FusedMultiplyAdd(s2, w3, a6); a7 = Avx512F.FusedMultiplyAdd(s2, w2, a7);
                    a0 = Avx512F.FusedMultiplyAdd(s3, w10, a0); a1 = Avx512F.FusedMultiplyAdd(s3, w9, a1);
                    a2 = Avx512F.FusedMultiplyAdd(s3, w8, a2); a3 = Avx512F.FusedMultiplyAdd(s3, w7, a3);
                    a4 = Avx512F.FusedMultiplyAdd(s3, w6, a4); a5 = Avx512F.FusedMultiplyAdd(s3, w5, a5);
                    a6 = Avx512F.FusedMultiplyAdd(s3, w4, a6); a7 = Avx512F.FusedMultiplyAdd(s3, w3, a7);
                }
            }
            a0.Store(o); a1.Store(o + R); a2.Store(o + 2 * R); a3.Store(o + 3 * R);
            a4.Store(o + 4 * R); a5.Store(o + 5 * R); a6.Store(o + 6 * R); a7.Store(o + 7 * R);
        }
    }

    // The band form of a 3-tall window (slak's 3 x 3, and 3 x M's short side): each shifted input row is loaded
    // once into a register and meets its three output rows (r + 1, r, r - 1 through taps 0, 1, 2) there: no row
    // buffer, a third of a load per FMA, and no FMA outside the map.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Band3(float* src, float* table, int cols, float* init, float* dst)
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
        if (init != null)
        {
            a0 = Vector512.Load(init); a1 = Vector512.Load(init + R); a2 = Vector512.Load(init + 2 * R);
            a3 = Vector512.Load(init + 3 * R); a4 = Vector512.Load(init + 4 * R); a5 = Vector512.Load(init + 5 * R);
            a6 = Vector512.Load(init + 6 * R); a7 = Vector512.Load(init + 7 * R); a8 = Vector512.Load(init + 8 * R);
            a9 = Vector512.Load(init + 9 * R); a10 = Vector512.Load(init + 10 * R);
            a11 = Vector512.Load(init + 11 * R); a12 = Vector512.Load(init + 12 * R);
            a13 = Vector512.Load(init + 13 * R); a14 = Vector512.Load(init + 14 * R);
            a15 = Vector512.Load(init + 15 * R);
        }
        else
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
            a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = Vector512<float>.Zero;
        }
        var zero = Vector512<float>.Zero;
        int half = cols / 2;
        for (int j = 0; j < cols; j++)
        {
            var idx = Shifts[j - half + R - 1];
            var w0 = Vector512.Create(table[j]);
            var w1 = Vector512.Create(table[cols + j]);
            var w2 = Vector512.Create(table[2 * cols + j]);
            var s = Avx512F.PermuteVar16x32x2(Vector512.Load(src), idx, zero);
            a1 = Avx512F.FusedMultiplyAdd(s, w0, a1); a0 = Avx512F.FusedMultiplyAdd(s, w1, a0);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 1 * R), idx, zero);
            a2 = Fma(s, w0, a2); a1 = Fma(s, w1, a1); a0 = Fma(s, w2, a0);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 2 * R), idx, zero);
            a3 = Fma(s, w0, a3); a2 = Fma(s, w1, a2); a1 = Fma(s, w2, a1);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 3 * R), idx, zero);
            a4 = Fma(s, w0, a4); a3 = Fma(s, w1, a3); a2 = Fma(s, w2, a2);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 4 * R), idx, zero);
            a5 = Fma(s, w0, a5); a4 = Fma(s, w1, a4); a3 = Fma(s, w2, a3);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 5 * R), idx, zero);
            a6 = Fma(s, w0, a6); a5 = Fma(s, w1, a5); a4 = Fma(s, w2, a4);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 6 * R), idx, zero);
            a7 = Fma(s, w0, a7); a6 = Fma(s, w1, a6); a5 = Fma(s, w2, a5);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 7 * R), idx, zero);
            a8 = Fma(s, w0, a8); a7 = Fma(s, w1, a7); a6 = Fma(s, w2, a6);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 8 * R), idx, zero);
            a9 = Fma(s, w0, a9); a8 = Fma(s, w1, a8); a7 = Fma(s, w2, a7);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 9 * R), idx, zero);
            a10 = Fma(s, w0, a10); a9 = Fma(s, w1, a9); a8 = Fma(s, w2, a8);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 10 * R), idx, zero);
            a11 = Fma(s, w0, a11); a10 = Fma(s, w1, a10); a9 = Fma(s, w2, a9);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 11 * R), idx, zero);
            a12 = Fma(s, w0, a12); a11 = Fma(s, w1, a11); a10 = Fma(s, w2, a10);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 12 * R), idx, zero);
            a13 = Fma(s, w0, a13); a12 = Fma(s, w1, a12); a11 = Fma(s, w2, a11);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 13 * R), idx, zero);
            a14 = Fma(s, w0, a14); a13 = Fma(s, w1, a13); a12 = Fma(s, w2, a12);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 14 * R), idx, zero);
            a15 = Fma(s, w0, a15); a14 = Fma(s, w1, a14); a13 = Fma(s, w2, a13);
            s = Avx512F.PermuteVar16x32x2(Vector512.Load(src + 15 * R), idx, zero);
            a15 = Avx512F.FusedMultiplyAdd(s, w1, a15); a14 = Avx512F.FusedMultiplyAdd(s, w2, a14);
        }
        a0.Store(dst); a1.Store(dst + R); a2.Store(dst + 2 * R); a3.Store(dst + 3 * R);
        a4.Store(dst + 4 * R); a5.Store(dst + 5 * R); a6.Store(dst + 6 * R); a7.Store(dst + 7 * R);
        a8.Store(dst + 8 * R); a9.Store(dst + 9 * R); a10.Store(dst + 10 * R); a11.Store(dst + 11 * R);
        a12.Store(dst + 12 * R); a13.Store(dst + 13 * R); a14.Store(dst + 14 * R); a15.Store(dst + 15 * R);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BandForm(float* src, float* table, int taps, int cols, float* rows, float* init, float* dst)
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
        if (init != null)
        {
            a0 = Vector512.Load(init); a1 = Vector512.Load(init + R); a2 = Vector512.Load(init + 2 * R);
            a3 = Vector512.Load(init + 3 * R); a4 = Vector512.Load(init + 4 * R); a5 = Vector512.Load(init + 5 * R);
            a6 = Vector512.Load(init + 6 * R); a7 = Vector512.Load(init + 7 * R); a8 = Vector512.Load(init + 8 * R);
            a9 = Vector512.Load(init + 9 * R); a10 = Vector512.Load(init + 10 * R);
            a11 = Vector512.Load(init + 11 * R); a12 = Vector512.Load(init + 12 * R);
            a13 = Vector512.Load(init + 13 * R); a14 = Vector512.Load(init + 14 * R);
            a15 = Vector512.Load(init + 15 * R);
        }
        else
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
            a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = Vector512<float>.Zero;
        }
        var zero = Vector512<float>.Zero;
        int half = cols / 2;
        // Row k of the buffer is input row k - BandPad: output row y meets row y + i + BandPad - taps / 2 through
        // tap i. The rows outside the middle 16 stay zero (written by no branch).
        float* mid = rows + BandPad * R, top = rows + (BandPad - taps / 2) * R;
        for (int j = 0; j < cols; j++)
        {
            var idx = Shifts[j - half + R - 1];
            for (int r = 0; r < R; r++)
                Avx512F.PermuteVar16x32x2(Vector512.Load(src + r * R), idx, zero).Store(mid + r * R);
            for (int i = 0; i < taps; i++)
            {
                var w = Vector512.Create(table[i * cols + j]);
                float* s = top + i * R;
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(s), w, a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + R), w, a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 2 * R), w, a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 3 * R), w, a3);
                a4 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 4 * R), w, a4);
                a5 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 5 * R), w, a5);
                a6 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 6 * R), w, a6);
                a7 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 7 * R), w, a7);
                a8 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 8 * R), w, a8);
                a9 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 9 * R), w, a9);
                a10 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 10 * R), w, a10);
                a11 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 11 * R), w, a11);
                a12 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 12 * R), w, a12);
                a13 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 13 * R), w, a13);
                a14 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 14 * R), w, a14);
                a15 = Avx512F.FusedMultiplyAdd(Vector512.Load(s + 15 * R), w, a15);
            }
        }
        a0.Store(dst); a1.Store(dst + R); a2.Store(dst + 2 * R); a3.Store(dst + 3 * R);
        a4.Store(dst + 4 * R); a5.Store(dst + 5 * R); a6.Store(dst + 6 * R); a7.Store(dst + 7 * R);
        a8.Store(dst + 8 * R); a9.Store(dst + 9 * R); a10.Store(dst + 10 * R); a11.Store(dst + 11 * R);
        a12.Store(dst + 12 * R); a13.Store(dst + 13 * R); a14.Store(dst + 14 * R); a15.Store(dst + 15 * R);
    }

    // dst = (add, when not null) + the transpose of the plane src.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose(float* src, float* add, float* dst)
    {
        CpuDwConvMoves16.Transpose(
            Vector512.Load(src), Vector512.Load(src + R), Vector512.Load(src + 2 * R), Vector512.Load(src + 3 * R),
            Vector512.Load(src + 4 * R), Vector512.Load(src + 5 * R), Vector512.Load(src + 6 * R),
            Vector512.Load(src + 7 * R), Vector512.Load(src + 8 * R), Vector512.Load(src + 9 * R),
            Vector512.Load(src + 10 * R), Vector512.Load(src + 11 * R), Vector512.Load(src + 12 * R),
            Vector512.Load(src + 13 * R), Vector512.Load(src + 14 * R), Vector512.Load(src + 15 * R),
            out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7,
            out var o8, out var o9, out var o10, out var o11, out var o12, out var o13, out var o14, out var o15);
        if (add != null)
        {
            o0 += Vector512.Load(add); o1 += Vector512.Load(add + R); o2 += Vector512.Load(add + 2 * R);
            o3 += Vector512.Load(add + 3 * R); o4 += Vector512.Load(add + 4 * R); o5 += Vector512.Load(add + 5 * R);
            o6 += Vector512.Load(add + 6 * R); o7 += Vector512.Load(add + 7 * R); o8 += Vector512.Load(add + 8 * R);
            o9 += Vector512.Load(add + 9 * R); o10 += Vector512.Load(add + 10 * R);
            o11 += Vector512.Load(add + 11 * R); o12 += Vector512.Load(add + 12 * R);
            o13 += Vector512.Load(add + 13 * R); o14 += Vector512.Load(add + 14 * R);
            o15 += Vector512.Load(add + 15 * R);
        }
        o0.Store(dst); o1.Store(dst + R); o2.Store(dst + 2 * R); o3.Store(dst + 3 * R);
        o4.Store(dst + 4 * R); o5.Store(dst + 5 * R); o6.Store(dst + 6 * R); o7.Store(dst + 7 * R);
        o8.Store(dst + 8 * R); o9.Store(dst + 9 * R); o10.Store(dst + 10 * R); o11.Store(dst + 11 * R);
        o12.Store(dst + 12 * R); o13.Store(dst + 13 * R); o14.Store(dst + 14 * R); o15.Store(dst + 15 * R);
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

    // a * b + c in one rounding: the unrolled kernels' name for Avx512F.FusedMultiplyAdd, short enough that one
    // shifted row's three FMAs fit a line.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.FusedMultiplyAdd(a, b, c);

    // The 16 cache lines of a plane towards L1. A thread's planes run in C-plane steps between images (its channel
    // range of one image, then of the next), and on slak_nano64's stage 1 at batch 128 (4 MiB per tensor) the
    // passes without these prefetches waited on memory (`dwconv-rows16`: new/old 1.29 without them, 0.9 with the
    // next image's plane of the same channel prefetched, 0.78-0.86 for the input gradient in this order; 0.66 with
    // the operands in cache, batch 8).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* plane)
    {
        for (int k = 0; k < Plane; k += R) Sse.Prefetch0(plane + k);
    }

    // sum = planes[0] + planes[1] + ... in order (16 x 16 each).
    private static void Sum(nint* planes, int count, float* sum)
    {
        for (int k = 0; k < Plane; k += R)
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
        return CpuDwConvEngine.AlignUp((float*)Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal
            .GetArrayDataReference(buffer)));
    }
}
